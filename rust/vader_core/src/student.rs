//! The `learned` analyzer's hot path: hashed n-gram features and the linear student, mirroring
//! `cryptosent.analysis.learned.features` and `.student` bit for bit (a test compares both on
//! every labelled text). Lower-casing stays in Python (`str.lower()`), which hands the lowered
//! text in beside the original, so no Unicode table here can differ from Python's.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

pub const BUCKETS: u32 = 1 << 18;
const EXPLAIN: usize = 3;
const NEGATION_SPAN: u32 = 3;
const FNV_OFFSET: u32 = 0x811C9DC5;
const FNV_PRIME: u32 = 0x01000193;

/// FNV-1a of `bytes` continued from the state `h` (a const fn: every fixed prefix is folded at
/// compile time).
#[inline]
const fn fnv_extend(mut h: u32, bytes: &[u8]) -> u32 {
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u32).wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

#[inline]
fn fnv_step(h: u32, byte: u8) -> u32 {
    (h ^ byte as u32).wrapping_mul(FNV_PRIME)
}

const W_PREFIX: u32 = fnv_extend(FNV_OFFSET, b"w|");
const B_PREFIX: u32 = fnv_extend(FNV_OFFSET, b"b|");
const N_PREFIX: u32 = fnv_extend(FNV_OFFSET, b"n|");
const C_PREFIX: u32 = fnv_extend(FNV_OFFSET, b"c|");
const P_BANG: u32 = fnv_extend(FNV_OFFSET, b"p|!");
const P_BANGS: u32 = fnv_extend(FNV_OFFSET, b"p|!!");
const P_QUESTION: u32 = fnv_extend(FNV_OFFSET, b"p|?");
const P_CAPS: u32 = fnv_extend(FNV_OFFSET, b"p|caps");

/// The state after "c|" and one more byte, for every byte: a character gram's first step is a
/// table look-up.
const C_FIRST: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = fnv_extend(C_PREFIX, &[b as u8]);
        b += 1;
    }
    table
};

#[inline]
const fn is_space(c: char) -> bool {
    matches!(c as u32, 0x20 | 0x09..=0x0D | 0x85 | 0xA0 | 0x1680 | 0x2028 | 0x2029 | 0x202F
        | 0x205F | 0x3000 | 0x2000..=0x200A)
}

#[inline]
const fn is_dropped(cp: u32) -> bool {
    matches!(
        cp,
        0xFE0E | 0xFE0F | 0x200D | 0x200B | 0x200C | 0x1F3FB..=0x1F3FF
    )
}

#[inline]
const fn is_symbol(cp: u32) -> bool {
    matches!(cp, 0x2190..=0x2BFF | 0x1F000..=0x1FAFF | 0xA9 | 0xAE | 0x203C | 0x2049 | 0x2122
        | 0x2139 | 0x3030 | 0x303D)
}

#[inline]
const fn is_separator(c: char) -> bool {
    let cp = c as u32;
    is_space(c)
        || c.is_ascii_punctuation()
        || matches!(cp, 0x2010..=0x205E | 0x3001..=0x303F | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20
            | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65 | 0xAB | 0xBB | 0xBF | 0xA1 | 0xB7)
}

/// Character classes of the tokenizer, as bits (a character can be in several: U+203C is a
/// separator and a symbol; the tokenizer tests dropped, then symbol, then separator).
const SPACE: u8 = 1;
const SEPARATOR: u8 = 2;
const SYMBOL: u8 = 4;
const DROPPED: u8 = 8;
/// Not a word character: `word_char(c)` is `class & NOT_WORD == 0`.
const NOT_WORD: u8 = SEPARATOR | SYMBOL | DROPPED;

const fn slow_class(c: char) -> u8 {
    let cp = c as u32;
    let mut class = 0;
    if is_space(c) {
        class |= SPACE;
    }
    if is_separator(c) {
        class |= SEPARATOR;
    }
    if is_symbol(cp) {
        class |= SYMBOL;
    }
    if is_dropped(cp) {
        class |= DROPPED;
    }
    class
}

/// The classes of the ASCII characters, computed once at compile time.
const ASCII_CLASS: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = slow_class(b as u8 as char);
        b += 1;
    }
    table
};

#[inline]
fn class_of(c: char) -> u8 {
    match ASCII_CLASS.get(c as usize) {
        Some(&class) => class,
        None => slow_class(c),
    }
}

fn is_negator(tok: &str) -> bool {
    matches!(
        tok,
        "not"
            | "no"
            | "never"
            | "dont"
            | "don't"
            | "cant"
            | "can't"
            | "wont"
            | "won't"
            | "isnt"
            | "isn't"
            | "aint"
            | "ain't"
            | "cannot"
            | "nobody"
            | "nothing"
            | "nor"
            | "neither"
            | "without"
            | "didnt"
            | "didn't"
            | "doesnt"
            | "doesn't"
            | "wasnt"
            | "wasn't"
            | "arent"
            | "aren't"
            | "shouldnt"
            | "shouldn't"
            | "wouldnt"
            | "wouldn't"
            | "havent"
            | "haven't"
            | "hasnt"
            | "hasn't"
            | "nope"
            | "nah"
    )
}

/// The shape of a number token: the word itself, or a made-up token (`<num>` or a `<pct>`
/// form) followed by a suffix of at most two characters.
enum NumberShape {
    Word,
    Made(&'static str, [Option<char>; 2]),
}

/// The shape of `word` (a number token without its '$').
fn number_shape(word: &str, sign: Option<char>, percent: bool) -> NumberShape {
    if percent {
        let made = match sign {
            Some('+') => "<+pct>",
            Some('-') => "<-pct>",
            _ => "<pct>",
        };
        return NumberShape::Made(made, [None, None]);
    }
    let mut suffix = word
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ',')
        .chars();
    match (suffix.next(), suffix.next(), suffix.next()) {
        (first, second, None) => NumberShape::Made("<num>", [first, second]),
        _ => NumberShape::Word,
    }
}

/// One character of the squashed, lowered text: the character, its class and its byte offset
/// in `Scratch::text`.
#[derive(Clone, Copy)]
struct Char {
    c: char,
    class: u8,
    at: u32,
}

/// Reused buffers of one batch: nothing is allocated per text once they have grown.
pub struct Scratch {
    chars: Vec<Char>,
    /// the squashed lowered text, then the tokens made up by the tokenizer (`<url>`, shapes);
    /// `toks` holds every token as a (start, end) byte range into it
    text: String,
    toks: Vec<(u32, u32)>,
    /// "<" + token + ">" and its character offsets, for the character grams
    padded: Vec<u8>,
    offsets: Vec<usize>,
    /// a token's 4-gram hashes, held back until its 3-grams are out (Python's order)
    fours: Vec<u32>,
    /// a bit per bucket: the indices seen in the current text (see `collect_features`)
    seen: Vec<u64>,
    /// distinct feature indices of the current text in first-seen order, with their source
    features: Vec<(u32, Source)>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            chars: Vec::with_capacity(256),
            text: String::with_capacity(512),
            toks: Vec::with_capacity(64),
            padded: Vec::with_capacity(64),
            offsets: Vec::with_capacity(64),
            fours: Vec::with_capacity(64),
            seen: vec![0; (BUCKETS / 64) as usize],
            features: Vec::with_capacity(512),
        }
    }

    fn tok(&self, k: usize) -> &str {
        let (a, b) = self.toks[k];
        &self.text[a as usize..b as usize]
    }

    /// Appends `tok` to `text` and makes it the next token.
    fn push_made_tok(&mut self, tok: &str) {
        let a = self.text.len() as u32;
        self.text.push_str(tok);
        self.toks.push((a, self.text.len() as u32));
    }
}

/// What `has_caps_word` needs of an ASCII byte: Python's `str.split()` whitespace, a capital.
const SPLIT_SPACE: u8 = 1;
const CAPITAL: u8 = 2;
const CAPS_KIND: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = match b as u8 {
            b'\t'..=b'\r' | 0x1c..=b' ' => SPLIT_SPACE,
            b'A'..=b'Z' => CAPITAL,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Python's `any(len(w) >= 3 and w.isalpha() and w.isupper() for w in text.split() if w.isascii())`:
/// a run of 3+ ASCII capitals between whitespace. Works on the bytes, with arithmetic instead
/// of branches (word boundaries come too often to predict); only a non-ASCII character is
/// decoded, to tell Unicode whitespace from a character that spoils the word.
fn has_caps_word(original: &str) -> bool {
    // capitals of the current word so far, or at least SPOILED once it has anything else
    const SPOILED: u32 = 1 << 31;
    let caps_word = |capitals: u32| capitals.wrapping_sub(3) < SPOILED - 3;
    let bytes = original.as_bytes();
    let mut capitals = 0u32;
    let mut found = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let kind = if b.is_ascii() {
            i += 1;
            CAPS_KIND[b as usize]
        } else {
            let c = original[i..].chars().next().unwrap_or(' ');
            i += c.len_utf8();
            if crate::is_py_space_pub(c) {
                SPLIT_SPACE
            } else {
                0
            }
        };
        let space = (kind & SPLIT_SPACE) as u32;
        let capital = (kind & CAPITAL != 0) as u32;
        found |= space & caps_word(capitals) as u32;
        let grown = capitals.saturating_add(1) | (SPOILED * (1 - capital));
        capitals = grown * (1 - space);
    }
    found != 0 || caps_word(capitals)
}

fn is_web_word(word: &str) -> bool {
    word.starts_with("http") || word.starts_with("www")
}

/// Tokens (into `scratch`), has-a-capitalised-word, number of '!', has-a-'?'.
fn tokens(original: &str, lowered: &str, scratch: &mut Scratch) -> (bool, usize, bool) {
    let caps = has_caps_word(original);
    // squash runs of 3+ identical characters to 2, then curly apostrophes to straight ones
    let mut chars = std::mem::take(&mut scratch.chars);
    chars.clear();
    scratch.text.clear();
    scratch.toks.clear();
    let mut bangs = 0;
    let mut question = false;
    let mut prev: Option<char> = None;
    let mut run = 0;
    let mut at = 0;
    for c in lowered.chars() {
        run = if Some(c) == prev { run + 1 } else { 1 };
        prev = Some(c);
        if run <= 2 {
            let c = if c == '\u{2019}' { '\'' } else { c };
            bangs += (c == '!') as usize;
            question |= c == '?';
            chars.push(Char {
                c,
                class: class_of(c),
                at,
            });
            at += c.len_utf8() as u32;
        }
    }
    if at as usize == lowered.len() {
        // nothing squashed or replaced (the usual case): the text as it came
        scratch.text.push_str(lowered);
    } else {
        scratch.text.extend(chars.iter().map(|ch| ch.c));
    }
    let n = chars.len();
    // a space after the last character: `chars[n].at` is the end, and scans stop there
    chars.push(Char {
        c: ' ',
        class: SPACE | SEPARATOR,
        at: scratch.text.len() as u32,
    });
    let at = |i: usize| chars[i].at;
    let word_char = |i: usize| chars[i].class & NOT_WORD == 0;
    let word_end = |i: usize| {
        i + chars[i..]
            .iter()
            .take_while(|c| c.class & NOT_WORD == 0)
            .count()
    };
    let mut i = 0;
    while i < n {
        let Char {
            c: ch,
            class,
            at: start_at,
        } = chars[i];
        if class & DROPPED != 0 {
            i += 1;
            continue;
        }
        if class & SYMBOL != 0 {
            scratch.toks.push((start_at, at(i + 1)));
            i += 1;
            continue;
        }
        let tagged = ch == '$' || ch == '@';
        if class & SEPARATOR != 0 && !(tagged && i + 1 < n && word_char(i + 1)) {
            i += 1;
            continue;
        }
        let start = i;
        if tagged {
            i += 1;
        }
        // word characters, and apostrophes inside the word
        i = word_end(i);
        while i > start && chars[i].c == '\'' && i + 1 < n && word_char(i + 1) {
            i = word_end(i + 1);
        }
        let dollar = ch == '$';
        let bare_first = if dollar {
            chars.get(start + 1)
        } else {
            chars.get(start)
        };
        if ch == '@' {
            scratch.push_made_tok("<user>");
        } else if i < n
            && matches!(chars[i].c, ':' | '.' | '/')
            && is_web_word(&scratch.text[start_at as usize..at(i) as usize])
        {
            while i < n && chars[i].class & SPACE == 0 {
                i += 1;
            }
            scratch.push_made_tok("<url>");
        } else if i > start + dollar as usize && bare_first.is_some_and(|b| b.c.is_ascii_digit()) {
            while i + 1 < n && matches!(chars[i].c, '.' | ',') && chars[i + 1].c.is_ascii_digit() {
                i = word_end(i + 1);
            }
            let sign = match start.checked_sub(1).map(|b| chars[b].c) {
                Some('+') => Some('+'),
                Some('-' | '\u{2212}') => Some('-'),
                _ => None,
            };
            let percent = i < n && chars[i].c == '%';
            let bare = (start_at + dollar as u32) as usize..at(i) as usize;
            match number_shape(&scratch.text[bare], sign, percent) {
                // "$" + the word is the text from the '$' on
                NumberShape::Word => scratch.toks.push((start_at, at(i))),
                NumberShape::Made(made, suffix) => {
                    let text = &mut scratch.text;
                    let first = text.len() as u32;
                    if dollar {
                        text.push('$');
                    }
                    text.push_str(made);
                    text.extend(suffix.into_iter().flatten());
                    scratch.toks.push((first, text.len() as u32));
                }
            }
        } else if i > start {
            scratch.toks.push((start_at, at(i)));
        }
        if i == start {
            i += 1;
        }
    }
    scratch.chars = chars;
    (caps, bangs, question)
}

/// Which feature a hash came from: enough to write it out again for an explanation.
#[derive(Clone, Copy)]
enum Source {
    Word(u32),
    Bigram(u32),
    Negated(u32),
    Other,
}

/// The distinct feature indices of the tokens in `scratch` (and of `caps`, `bangs`, `question`)
/// into `scratch.features`, in first-seen order with where the first hit came from: the order
/// Python's `feature_strings` yields the strings (hashes are computed without building the
/// strings). `touch` sees each new index as it is found (the scorer asks for its weights early).
/// Repeats are told by `scratch.seen`, a bit per bucket (32 KiB: it stays in L1 cache), all
/// clear between texts: the words this text set are cleared again at the end.
fn collect_features(
    scratch: &mut Scratch,
    caps: bool,
    bangs: usize,
    question: bool,
    touch: impl Fn(u32),
) {
    let Scratch {
        text,
        toks,
        padded,
        offsets,
        fours,
        seen,
        features,
        ..
    } = scratch;
    features.clear();
    let mut push = |h: u32, src: Source| {
        let index = h % BUCKETS;
        let (word, bit) = ((index >> 6) as usize, 1u64 << (index & 63));
        if seen[word] & bit == 0 {
            seen[word] |= bit;
            touch(index);
            features.push((index, src));
        }
    };
    let mut negated = 0u32;
    // the state after "b|" + previous token + " "
    let mut bigram_start = B_PREFIX;
    for (k, &(a, b)) in toks.iter().enumerate() {
        let tok = &text[a as usize..b as usize];
        let bytes = tok.as_bytes();
        // three independent chains in one pass: w|tok, b|prev tok, and b|tok for the next
        let (mut word, mut bigram, mut next) = (W_PREFIX, bigram_start, B_PREFIX);
        for &byte in bytes {
            word = fnv_step(word, byte);
            bigram = fnv_step(bigram, byte);
            next = fnv_step(next, byte);
        }
        push(word, Source::Word(k as u32));
        if k > 0 {
            push(bigram, Source::Bigram(k as u32));
        }
        bigram_start = fnv_step(next, b' ');
        if negated > 0 {
            push(fnv_extend(N_PREFIX, bytes), Source::Negated(k as u32));
            negated -= 1;
        }
        if tok.ends_with("n't") || is_negator(tok) {
            negated = NEGATION_SPAN;
        }
        let mut chars_iter = tok.chars();
        let first = chars_iter.next().unwrap_or('<');
        if first == '<' || is_symbol(first as u32) || chars_iter.next().is_none() {
            continue;
        }
        // the 3- and 4-grams of "<tok>"; a 4-gram is its 3-gram's state and one more character
        padded.clear();
        padded.push(b'<');
        padded.extend_from_slice(bytes);
        padded.push(b'>');
        fours.clear();
        if tok.is_ascii() {
            let total = padded.len();
            for s in 0..total - 2 {
                let three = fnv_step(
                    fnv_step(C_FIRST[padded[s] as usize], padded[s + 1]),
                    padded[s + 2],
                );
                push(three, Source::Other);
                if s + 3 < total {
                    fours.push(fnv_step(three, padded[s + 3]));
                }
            }
        } else {
            // offsets of the padded characters, and the end
            offsets.clear();
            offsets.push(0);
            offsets.extend(tok.char_indices().map(|(i, _)| i + 1));
            offsets.push(padded.len() - 1);
            offsets.push(padded.len());
            let total = offsets.len() - 1; // characters of "<tok>"
            for s in 0..total - 2 {
                let first = C_FIRST[padded[offsets[s]] as usize];
                let three = fnv_extend(first, &padded[offsets[s] + 1..offsets[s + 3]]);
                push(three, Source::Other);
                if s + 3 < total {
                    fours.push(fnv_extend(three, &padded[offsets[s + 3]..offsets[s + 4]]));
                }
            }
        }
        for &four in fours.iter() {
            push(four, Source::Other);
        }
    }
    if bangs > 0 {
        push(P_BANG, Source::Other);
    }
    if bangs > 1 {
        push(P_BANGS, Source::Other);
    }
    if question {
        push(P_QUESTION, Source::Other);
    }
    if caps {
        push(P_CAPS, Source::Other);
    }
    for &(index, _) in features.iter() {
        seen[(index >> 6) as usize] = 0;
    }
}

/// The distinct feature indices of one text, in first-seen order with the source of the first
/// hit, into `scratch.features`.
fn indexed(original: &str, lowered: &str, scratch: &mut Scratch) {
    let (caps, bangs, question) = tokens(original, lowered, scratch);
    collect_features(scratch, caps, bangs, question, |_| {});
}

fn feature_text(scratch: &Scratch, src: Source) -> Option<String> {
    match src {
        Source::Word(k) => Some(scratch.tok(k as usize).to_string()),
        Source::Bigram(k) => Some(format!(
            "{} {}",
            scratch.tok(k as usize - 1),
            scratch.tok(k as usize)
        )),
        Source::Negated(k) => Some(format!("not {}", scratch.tok(k as usize))),
        Source::Other => None,
    }
}

#[pyfunction]
pub fn student_features(texts: Vec<(String, String)>) -> Vec<Vec<u32>> {
    let mut scratch = Scratch::new();
    texts
        .iter()
        .map(|(original, lowered)| {
            indexed(original, lowered, &mut scratch);
            let mut out: Vec<u32> = scratch.features.iter().map(|(i, _)| *i).collect();
            out.sort_unstable();
            out
        })
        .collect()
}

/// Weights are multiples of 2^-24 (float16 values): their sums in i64 are exact, so the order
/// features are added in cannot change a result (the Python path uses `math.fsum`).
const FIXED: f64 = 16_777_216.0; // 2^24

#[pyclass(frozen, module = "cryptosent_vader_core")]
pub struct Student {
    /// per bucket, the three class weights times 2^24 (exact integers; 12 bytes a row keeps the
    /// table at 3 MiB, so more of it stays in cache)
    hashed: Vec<[i32; 3]>,
    /// dense (lexicon) features x 3 classes; their number is set by the weights
    dense: Vec<f32>,
    bias: [f32; 3],
    temperature: f64,
}

/// (neg, neu, pos, explanation) of one text.
pub(crate) type Judged = (f64, f64, f64, Vec<String>);

fn round4(x: f64) -> f64 {
    crate::py_round_pub(x, 4)
}

#[pymethods]
impl Student {
    #[new]
    fn new(hashed: Vec<f32>, dense: Vec<f32>, bias: Vec<f32>, temperature: f64) -> PyResult<Self> {
        if hashed.len() != BUCKETS as usize * 3
            || !dense.chunks_exact(3).remainder().is_empty()
            || bias.len() != 3
        {
            return Err(PyValueError::new_err(
                "student weights have the wrong shape",
            ));
        }
        let mut fixed = Vec::with_capacity(BUCKETS as usize);
        for row in hashed.chunks_exact(3) {
            let mut out = [0i32; 3];
            for c in 0..3 {
                let scaled = row[c] as f64 * FIXED;
                if !scaled.is_finite() || scaled.fract() != 0.0 || scaled.abs() >= 2f64.powi(31) {
                    return Err(PyValueError::new_err(
                        "student weights must be float16 values (multiples of 2^-24) below 128",
                    ));
                }
                out[c] = scaled as i32;
            }
            fixed.push(out);
        }
        Ok(Student {
            hashed: fixed,
            dense,
            bias: [bias[0], bias[1], bias[2]],
            temperature,
        })
    }

    /// (neg, neu, pos, explanation) per (text, lowered text, dense features); without
    /// `explain` the explanation is left empty (the processor derives it only when shown).
    #[pyo3(signature = (items, explain = true))]
    fn judge_many(
        &self,
        py: Python<'_>,
        items: Vec<(PyBackedStr, PyBackedStr, Vec<f64>)>,
        explain: bool,
    ) -> PyResult<Vec<Judged>> {
        py.detach(|| {
            let mut scratch = Scratch::new();
            items
                .iter()
                .map(|(original, lowered, dense)| {
                    self.judge(original, lowered, dense, explain, &mut scratch)
                })
                .collect()
        })
    }
}

impl Student {
    /// Asks for the weight row of `index` ahead of its use: the table (3 MiB) is mostly outside
    /// the core's L2 cache, and the load is done by the time the rows are summed.
    #[inline]
    fn prefetch_row(&self, index: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let row = self.hashed[index as usize].as_ptr().cast();
            // SAFETY: a prefetch is only a hint: it reads nothing and cannot fault, and SSE is
            // part of every x86_64 target
            unsafe { _mm_prefetch::<_MM_HINT_T0>(row) };
        }
    }

    /// How many dense (lexicon) features the weights expect.
    pub(crate) fn dense_len(&self) -> usize {
        self.dense.len() / 3
    }

    pub(crate) fn judge(
        &self,
        original: &str,
        lowered: &str,
        dense: &[f64],
        explain: bool,
        scratch: &mut Scratch,
    ) -> PyResult<Judged> {
        if dense.len() * 3 != self.dense.len() {
            return Err(PyValueError::new_err(format!(
                "expected {} dense features, got {}",
                self.dense.len() / 3,
                dense.len()
            )));
        }
        let (caps, bangs, question) = tokens(original, lowered, scratch);
        collect_features(scratch, caps, bangs, question, |index| {
            self.prefetch_row(index)
        });
        let features = &scratch.features;
        let scale = if features.is_empty() {
            0.0
        } else {
            1.0 / (features.len() as f64).sqrt()
        };
        let mut sums = [0i64; 3];
        for (index, _) in features {
            let row = &self.hashed[*index as usize];
            sums[0] += row[0] as i64;
            sums[1] += row[1] as i64;
            sums[2] += row[2] as i64;
        }
        let mut logits = [
            self.bias[0] as f64,
            self.bias[1] as f64,
            self.bias[2] as f64,
        ];
        for c in 0..3 {
            logits[c] += sums[c] as f64 / FIXED * scale;
        }
        for (&value, weights) in dense.iter().zip(self.dense.chunks_exact(3)) {
            if value != 0.0 {
                for (logit, &weight) in logits.iter_mut().zip(weights) {
                    *logit += value * weight as f64;
                }
            }
        }
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exps = logits.map(|z| ((z - top) / self.temperature).exp());
        let total: f64 = exps.iter().sum();
        let (neg, neu, pos) = (
            round4(exps[0] / total),
            round4(exps[1] / total),
            round4(exps[2] / total),
        );
        let chosen = if pos >= neu && pos >= neg {
            2
        } else if neg >= neu {
            0
        } else {
            1
        };
        if !explain {
            return Ok((neg, neu, pos, Vec::new()));
        }
        let mut ranked: Vec<(f64, String)> = Vec::new();
        for (index, src) in features {
            if !matches!(src, Source::Other) {
                let row = &self.hashed[*index as usize];
                let w = |c: usize| row[c] as f64 / FIXED;
                let lift = w(chosen) - (w(0) + w(1) + w(2)) / 3.0;
                if lift > 0.0 {
                    if let Some(text) = feature_text(scratch, *src) {
                        ranked.push((-lift, text));
                    }
                }
            }
        }
        // largest lift first; ties by the shown text, as the Python path sorts
        ranked.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
        let explanation = ranked
            .into_iter()
            .take(EXPLAIN)
            .map(|(_, text)| text)
            .collect();
        Ok((neg, neu, pos, explanation))
    }
}
