//! The `learned` analyzer's hot path: hashed n-gram features and the linear student, mirroring
//! `cryptosent.analysis.learned.features` and `.student` bit for bit (a test compares both on
//! every labelled text). Lower-casing stays in Python (`str.lower()`), which hands the lowered
//! text in beside the original, so no Unicode table here can differ from Python's.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pub const BUCKETS: u32 = 1 << 18;
const EXPLAIN: usize = 3;
const NEGATION_SPAN: u32 = 3;
const NEGATORS: &[&str] = &[
    "not", "no", "never", "dont", "don't", "cant", "can't", "wont", "won't", "isnt", "isn't",
    "aint", "ain't", "cannot", "nobody", "nothing", "nor", "neither", "without", "didnt",
    "didn't", "doesnt", "doesn't", "wasnt", "wasn't", "arent", "aren't", "shouldnt",
    "shouldn't", "wouldnt", "wouldn't", "havent", "haven't", "hasnt", "hasn't", "nope", "nah",
];

const FNV_OFFSET: u32 = 0x811C9DC5;

#[inline]
fn is_space(c: char) -> bool {
    matches!(c as u32, 0x20 | 0x09..=0x0D | 0x85 | 0xA0 | 0x1680 | 0x2028 | 0x2029 | 0x202F
        | 0x205F | 0x3000 | 0x2000..=0x200A)
}

#[inline]
fn is_dropped(cp: u32) -> bool {
    matches!(cp, 0xFE0E | 0xFE0F | 0x200D | 0x200B | 0x200C | 0x1F3FB..=0x1F3FF)
}

#[inline]
fn is_symbol(cp: u32) -> bool {
    matches!(cp, 0x2190..=0x2BFF | 0x1F000..=0x1FAFF | 0xA9 | 0xAE | 0x203C | 0x2049 | 0x2122
        | 0x2139 | 0x3030 | 0x303D)
}

#[inline]
fn is_separator(c: char) -> bool {
    let cp = c as u32;
    is_space(c)
        || c.is_ascii_punctuation()
        || matches!(cp, 0x2010..=0x205E | 0x3001..=0x303F | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20
            | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65 | 0xAB | 0xBB | 0xBF | 0xA1 | 0xB7)
}

#[inline]
fn word_char(c: char) -> bool {
    let cp = c as u32;
    !(is_separator(c) || is_symbol(cp) || is_dropped(cp))
}

fn number_shape(word: &str, sign: Option<char>, percent: bool) -> String {
    let suffix = word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ',');
    if percent {
        return match sign {
            Some('+') => "<+pct>".into(),
            Some('-') => "<-pct>".into(),
            _ => "<pct>".into(),
        };
    }
    let n = suffix.chars().count();
    if n > 0 && n <= 2 {
        return format!("<num>{suffix}");
    }
    if n == 0 { "<num>".into() } else { word.into() }
}

/// Reused buffers of one batch: nothing is allocated per text once they have grown.
pub struct Scratch {
    low: Vec<char>,
    word: String,
    /// every token's text, back to back; `toks` holds (start, end) byte ranges into it
    text: String,
    toks: Vec<(u32, u32)>,
    offsets: Vec<usize>,
    /// `stamp[index] == epoch` when the feature index was already seen in this text
    stamp: Vec<u16>,
    epoch: u16,
    /// distinct feature indices of the current text in first-seen order, with their source
    features: Vec<(u32, Source)>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            low: Vec::with_capacity(256),
            word: String::with_capacity(64),
            text: String::with_capacity(512),
            toks: Vec::with_capacity(64),
            offsets: Vec::with_capacity(32),
            stamp: vec![0; BUCKETS as usize],
            epoch: 0,
            features: Vec::with_capacity(512),
        }
    }

    fn tok(&self, k: usize) -> &str {
        let (a, b) = self.toks[k];
        &self.text[a as usize..b as usize]
    }

    fn push_tok(&mut self, tok: &str) {
        let a = self.text.len() as u32;
        self.text.push_str(tok);
        self.toks.push((a, self.text.len() as u32));
    }
}

/// Python's `any(len(w) >= 3 and w.isalpha() and w.isupper() for w in text.split() if w.isascii())`.
fn has_caps_word(original: &str) -> bool {
    let mut len = 0usize;
    let mut all_upper = true;
    for c in original.chars().chain(std::iter::once(' ')) {
        let space = if c.is_ascii() { matches!(c, '\t'..='\r' | '\x1c'..=' ') } else { crate::is_py_space_pub(c) };
        if space {
            if len >= 3 && all_upper {
                return true;
            }
            len = 0;
            all_upper = true;
        } else {
            len += 1;
            if !c.is_ascii_uppercase() {
                all_upper = false;
            }
        }
    }
    false
}

/// Tokens (into `scratch`), has-a-capitalised-word, number of '!', has-a-'?'.
pub fn tokens(original: &str, lowered: &str, scratch: &mut Scratch) -> (bool, usize, bool) {
    let caps = has_caps_word(original);
    // squash runs of 3+ identical characters to 2, then curly apostrophes to straight ones
    let mut low = std::mem::take(&mut scratch.low);
    low.clear();
    let mut prev: Option<char> = None;
    let mut run = 0;
    for c in lowered.chars() {
        run = if Some(c) == prev { run + 1 } else { 1 };
        prev = Some(c);
        if run <= 2 {
            low.push(if c == '\u{2019}' { '\'' } else { c });
        }
    }
    scratch.text.clear();
    scratch.toks.clear();
    let n = low.len();
    let bangs = low.iter().filter(|&&c| c == '!').count();
    let question = low.contains(&'?');
    let mut i = 0;
    let mut buf = [0u8; 4];
    while i < n {
        let ch = low[i];
        let cp = ch as u32;
        if is_dropped(cp) {
            i += 1;
            continue;
        }
        if is_symbol(cp) {
            scratch.push_tok(ch.encode_utf8(&mut buf));
            i += 1;
            continue;
        }
        if is_separator(ch) && !((ch == '$' || ch == '@') && i + 1 < n && word_char(low[i + 1])) {
            i += 1;
            continue;
        }
        let start = i;
        if ch == '$' || ch == '@' {
            i += 1;
        }
        while i < n
            && (word_char(low[i])
                || (low[i] == '\'' && i + 1 < n && word_char(low[i + 1]) && i > start))
        {
            i += 1;
        }
        let mut word = std::mem::take(&mut scratch.word);
        word.clear();
        word.extend(&low[start..i]);
        let bare = word.strip_prefix('$').unwrap_or(&word);
        if word.starts_with('@') {
            scratch.push_tok("<user>");
        } else if (word.starts_with("http") || word.starts_with("www"))
            && i < n
            && matches!(low[i], ':' | '.' | '/')
        {
            while i < n && !is_space(low[i]) {
                i += 1;
            }
            scratch.push_tok("<url>");
        } else if bare.as_bytes().first().is_some_and(|b| b.is_ascii_digit()) {
            while i + 1 < n && matches!(low[i], '.' | ',') && low[i + 1].is_ascii_digit() {
                i += 1;
                while i < n && word_char(low[i]) {
                    i += 1;
                }
            }
            word.clear();
            word.extend(&low[start..i]);
            let bare = word.strip_prefix('$').unwrap_or(&word);
            let sign = if start >= 1 {
                match low[start - 1] {
                    '+' => Some('+'),
                    '-' | '\u{2212}' => Some('-'),
                    _ => None,
                }
            } else {
                None
            };
            let percent = i < n && low[i] == '%';
            let shape = number_shape(bare, sign, percent);
            if word.starts_with('$') {
                let a = scratch.text.len() as u32;
                scratch.text.push('$');
                scratch.text.push_str(&shape);
                scratch.toks.push((a, scratch.text.len() as u32));
            } else {
                scratch.push_tok(&shape);
            }
        } else if !word.is_empty() {
            scratch.push_tok(&word);
        }
        scratch.word = word;
        if i == start {
            i += 1;
        }
    }
    scratch.low = low;
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

#[inline]
fn fnv_extend(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}


/// Calls `sink` with the hash of every feature string and where it came from, in the order
/// Python's `feature_strings` yields the strings (hashes are computed without building them).
/// `text` + `toks` are the tokens (byte ranges into `text`).
fn for_each_feature(
    text: &str,
    toks: &[(u32, u32)],
    offsets: &mut Vec<usize>,
    caps: bool,
    bangs: usize,
    question: bool,
    mut sink: impl FnMut(u32, Source),
) {
    let tok_at = |k: usize| &text[toks[k].0 as usize..toks[k].1 as usize];
    let w_prefix = fnv_extend(FNV_OFFSET, b"w|");
    let b_prefix = fnv_extend(FNV_OFFSET, b"b|");
    let n_prefix = fnv_extend(FNV_OFFSET, b"n|");
    let c_prefix = fnv_extend(FNV_OFFSET, b"c|");
    let c_open = fnv_extend(c_prefix, b"<");
    let mut negated = 0u32;
    for k in 0..toks.len() {
        let tok = tok_at(k);
        let bytes = tok.as_bytes();
        sink(fnv_extend(w_prefix, bytes), Source::Word(k as u32));
        if k > 0 {
            let h = fnv_extend(b_prefix, tok_at(k - 1).as_bytes());
            sink(fnv_extend(fnv_extend(h, b" "), bytes), Source::Bigram(k as u32));
        }
        if negated > 0 {
            sink(fnv_extend(n_prefix, bytes), Source::Negated(k as u32));
            negated -= 1;
        }
        if tok.ends_with("n't") || NEGATORS.contains(&tok) {
            negated = NEGATION_SPAN;
        }
        let mut chars_iter = tok.chars();
        let first = chars_iter.next().unwrap_or('<');
        if first != '<' && !is_symbol(first as u32) && chars_iter.next().is_some() {
            // grams of "<tok>": position 0 is '<', position chars+1 is '>', the rest tok's chars
            offsets.clear();
            if tok.is_ascii() {
                offsets.extend(0..bytes.len());
            } else {
                offsets.extend(tok.char_indices().map(|(i, _)| i));
            }
            offsets.push(bytes.len());
            let chars = offsets.len() - 1; // characters of tok
            let total = chars + 2;
            for size in [3usize, 4] {
                if total >= size {
                    for s in 0..=(total - size) {
                        let end = s + size; // exclusive, in padded positions
                        let from = if s == 0 { 0 } else { s - 1 };
                        let to = if end == total { chars } else { end - 1 };
                        let start = if s == 0 { c_open } else { c_prefix };
                        let mut h = fnv_extend(start, &bytes[offsets[from]..offsets[to]]);
                        if end == total {
                            h = fnv_extend(h, b">");
                        }
                        sink(h, Source::Other);
                    }
                }
            }
        }
    }
    if bangs > 0 {
        sink(fnv_extend(FNV_OFFSET, b"p|!"), Source::Other);
    }
    if bangs > 1 {
        sink(fnv_extend(FNV_OFFSET, b"p|!!"), Source::Other);
    }
    if question {
        sink(fnv_extend(FNV_OFFSET, b"p|?"), Source::Other);
    }
    if caps {
        sink(fnv_extend(FNV_OFFSET, b"p|caps"), Source::Other);
    }
}

/// The distinct feature indices of one text, in first-seen order with the source of the first
/// hit, into `scratch.features` (dedup by an epoch stamp per bucket: no sort, no hashing).
fn indexed(original: &str, lowered: &str, scratch: &mut Scratch) {
    let (caps, bangs, question) = tokens(original, lowered, scratch);
    scratch.epoch = scratch.epoch.wrapping_add(1);
    if scratch.epoch == 0 {
        scratch.stamp.iter_mut().for_each(|s| *s = 0);
        scratch.epoch = 1;
    }
    scratch.features.clear();
    let epoch = scratch.epoch;
    let stamp = &mut scratch.stamp;
    let features = &mut scratch.features;
    for_each_feature(&scratch.text, &scratch.toks, &mut scratch.offsets, caps, bangs, question, |h, src| {
        let index = h % BUCKETS;
        let seen = &mut stamp[index as usize];
        if *seen != epoch {
            *seen = epoch;
            features.push((index, src));
        }
    });
}

fn feature_text(scratch: &Scratch, src: Source) -> Option<String> {
    match src {
        Source::Word(k) => Some(scratch.tok(k as usize).to_string()),
        Source::Bigram(k) => {
            Some(format!("{} {}", scratch.tok(k as usize - 1), scratch.tok(k as usize)))
        }
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

fn round4(x: f64) -> f64 {
    crate::py_round_pub(x, 4)
}

#[pymethods]
impl Student {
    #[new]
    fn new(hashed: Vec<f32>, dense: Vec<f32>, bias: Vec<f32>, temperature: f64) -> PyResult<Self> {
        if hashed.len() != BUCKETS as usize * 3 || dense.len() % 3 != 0 || bias.len() != 3 {
            return Err(PyValueError::new_err("student weights have the wrong shape"));
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
        Ok(Student { hashed: fixed, dense, bias: [bias[0], bias[1], bias[2]], temperature })
    }

    /// (neg, neu, pos, explanation) per (text, lowered text, dense features); without
    /// `explain` the explanation is left empty (the processor derives it only when shown).
    #[pyo3(signature = (items, explain = true))]
    fn judge_many(
        &self,
        py: Python<'_>,
        items: Vec<(String, String, Vec<f64>)>,
        explain: bool,
    ) -> PyResult<Vec<(f64, f64, f64, Vec<String>)>> {
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
    ) -> PyResult<(f64, f64, f64, Vec<String>)> {
        if dense.len() * 3 != self.dense.len() {
            return Err(PyValueError::new_err(format!(
                "expected {} dense features, got {}",
                self.dense.len() / 3,
                dense.len()
            )));
        }
        indexed(original, lowered, scratch);
        let features = &scratch.features;
        let scale = if features.is_empty() { 0.0 } else { 1.0 / (features.len() as f64).sqrt() };
        let mut sums = [0i64; 3];
        for (index, _) in features {
            let row = &self.hashed[*index as usize];
            sums[0] += row[0] as i64;
            sums[1] += row[1] as i64;
            sums[2] += row[2] as i64;
        }
        let mut logits = [self.bias[0] as f64, self.bias[1] as f64, self.bias[2] as f64];
        for c in 0..3 {
            logits[c] += sums[c] as f64 / FIXED * scale;
        }
        for (i, &value) in dense.iter().enumerate() {
            if value != 0.0 {
                for c in 0..3 {
                    logits[c] += value * self.dense[i * 3 + c] as f64;
                }
            }
        }
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exps = logits.map(|z| ((z - top) / self.temperature).exp());
        let total: f64 = exps.iter().sum();
        let (neg, neu, pos) =
            (round4(exps[0] / total), round4(exps[1] / total), round4(exps[2] / total));
        let chosen = if pos >= neu && pos >= neg { 2 } else if neg >= neu { 0 } else { 1 };
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
        let explanation = ranked.into_iter().take(EXPLAIN).map(|(_, text)| text).collect();
        Ok((neg, neu, pos, explanation))
    }
}
