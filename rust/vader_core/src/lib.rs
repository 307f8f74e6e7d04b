//! Compiled core of cryptosent's sentiment analyzers: VADER's rule engine, bit-exact with
//! vaderSentiment 3.3.2, and the crypto analyzer's emoji-sequence and phrase tokenisation.
//!
//! Python stays the source of truth for everything that depends on Unicode tables: the engine
//! is handed its lexicons, word lists and emoji tables by `cryptosent.analysis.sentiment`, and
//! a token with a non-ASCII character gets its lower-cased forms and `isupper()` from a Python
//! callback (once per distinct token, then cached). ASCII tokens, whitespace splitting (Python's
//! `str.split()` set, exported for an exhaustive test), punctuation stripping, emoji
//! substitution, the rules and the rounding run here. A text that is not valid UTF-8 (a lone
//! surrogate) is handed to the pure-Python fallback.

use std::sync::Mutex;

mod batch;
mod campaigns;
mod coins;
mod copy;
mod decode;
mod student;

use foldhash::fast::RandomState;
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple, PyType};

type Map<K, V> = std::collections::HashMap<K, V, RandomState>;
type Set<K> = std::collections::HashSet<K, RandomState>;

// vaderSentiment's empirically derived constants, unchanged.
const C_INCR: f64 = 0.733;
const N_SCALAR: f64 = -0.74;
/// Tokens kept before the cache is emptied (as the pure-Python engine does).
const CACHE_LIMIT: usize = 200_000;

// Words the rules compare against, as bits of `Info::flags`.
const NO: u16 = 1;
const NEVER: u16 = 1 << 1;
const SO_THIS: u16 = 1 << 2;
const WITHOUT: u16 = 1 << 3;
const DOUBT: u16 = 1 << 4;
const LEAST: u16 = 1 << 5;
const AT_VERY: u16 = 1 << 6;
const KIND: u16 = 1 << 7;
const OF: u16 = 1 << 8;
const OR_NOR: u16 = 1 << 9;
const BUT: u16 = 1 << 10;

fn word_flags(low: &str) -> u16 {
    match low {
        "no" => NO,
        "never" => NEVER,
        "so" | "this" => SO_THIS,
        "without" => WITHOUT,
        "doubt" => DOUBT,
        "least" => LEAST,
        "at" | "very" => AT_VERY,
        "kind" => KIND,
        "of" => OF,
        "or" | "nor" => OR_NOR,
        "but" => BUT,
        _ => 0,
    }
}

/// Python's `str.isspace()` (what `str.split()` splits on) for Python 3.11: bidirectional
/// classes WS, B, S and category Zs. Checked against Python for every code point in the tests.
#[inline]
fn is_py_space(c: char) -> bool {
    match c as u32 {
        0x09..=0x0D | 0x1C..=0x20 => true,
        0..=0x7F => false,
        0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000 => true,
        _ => false,
    }
}

#[inline]
fn is_punct(c: char) -> bool {
    // Exactly Python's string.punctuation.
    c.is_ascii_punctuation()
}

/// `str.split()`: runs of non-whitespace. A multi-byte character can be whitespace only when
/// it starts with 0xC2, 0xE1, 0xE2 or 0xE3 (U+0085, U+00A0, U+1680, U+2000..U+205F, U+3000:
/// `is_py_space`). Sixteen bytes at a time with SSE2 (every x86_64 has it) while none of them
/// is such a lead byte: a mask of the ASCII whitespace, and a word starts or ends where the mask
/// changes. Other blocks, and the tail, are read byte by byte, and only characters with those
/// lead bytes are decoded.
fn split_py(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut words = Vec::with_capacity(16);
    let mut start: Option<usize> = None;
    let mut i = 0;
    /// Bytes from `i` up to `until` (or just past it: a character is read whole), one at a
    /// time.
    fn bytewise<'t>(
        text: &'t str,
        words: &mut Vec<&'t str>,
        i: &mut usize,
        until: usize,
        start: &mut Option<usize>,
    ) {
        let bytes = text.as_bytes();
        while *i < until {
            let space = match bytes[*i] {
                b'\t'..=b'\r' | 0x1C..=b' ' => 1,
                0xC2 | 0xE1..=0xE3 => {
                    // a lead byte: the text is valid UTF-8, so its character is whole here
                    let c = text[*i..].chars().next().unwrap_or(' ');
                    if is_py_space(c) {
                        c.len_utf8()
                    } else {
                        0
                    }
                }
                _ => 0,
            };
            if space > 0 {
                if let Some(from) = start.take() {
                    words.push(&text[from..*i]);
                }
                *i += space;
            } else {
                start.get_or_insert(*i);
                *i += 1;
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8, _mm_sub_epi8,
        };
        while i + 16 <= bytes.len() {
            // SAFETY: SSE2 is part of every x86_64 target; the load reads bytes[i..i + 16]
            let (lead, space) = unsafe {
                let v = _mm_loadu_si128(bytes.as_ptr().add(i).cast::<__m128i>());
                // b in lo..=hi (unsigned): (b - lo) wrapped is at most hi - lo
                let within = |lo: u8, hi: u8| {
                    let x = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
                    _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8((hi - lo) as i8)), x)
                };
                let space = _mm_or_si128(within(b'\t', b'\r'), within(0x1C, b' '));
                // lead bytes of the multi-byte whitespace: any other byte of 0x80 and up is
                // part of a word
                let lead = _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(0xC2_u8 as i8)),
                    within(0xE1, 0xE3),
                );
                (
                    _mm_movemask_epi8(lead) as u32,
                    _mm_movemask_epi8(space) as u32,
                )
            };
            if lead != 0 {
                let until = i + 16;
                bytewise(text, &mut words, &mut i, until, &mut start);
                continue;
            }
            // bit p set: byte i + p is whitespace; bit 0 compares with the byte before
            let before = start.is_none() as u32;
            let mut changes = (space ^ ((space << 1) | before)) & 0xFFFF;
            while changes != 0 {
                let p = changes.trailing_zeros() as usize;
                if space & (1 << p) == 0 {
                    start = Some(i + p);
                } else if let Some(from) = start.take() {
                    words.push(&text[from..i + p]);
                }
                changes &= changes - 1;
            }
            i += 16;
        }
    }
    bytewise(text, &mut words, &mut i, bytes.len(), &mut start);
    if let Some(from) = start {
        words.push(&text[from..]);
    }
    words
}

/// The length of the run of ASCII characters `text` starts with.
pub(crate) fn ascii_run(text: &str) -> usize {
    text.bytes()
        .position(|b| !b.is_ascii())
        .unwrap_or(text.len())
}

fn ascii_lower(word: &str) -> String {
    word.to_ascii_lowercase()
}

fn ascii_isupper(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes.iter().any(u8::is_ascii_uppercase) && !bytes.iter().any(u8::is_ascii_lowercase)
}

/// An ASCII `word` equals the already lower-cased `part` after `str.lower()`.
fn ascii_lower_eq(word: &str, part: &str) -> bool {
    word.len() == part.len()
        && word
            .bytes()
            .zip(part.bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == b)
}

/// Python's `round(x, ndigits)`: the double nearest to the decimal that is correctly rounded
/// (half to even) from the exact binary value of `x`.
fn py_round_impl(x: f64, ndigits: i32) -> f64 {
    let scale = 10f64.powi(ndigits);
    let y = x * scale;
    // The product is within 2^-53 relative of the exact one: away from a tie, its nearest
    // integer is the exact product's, and m / 10^n is then Python's correctly rounded result.
    if y.abs() < 1e9 {
        let frac = (y - y.trunc()).abs();
        if (frac - 0.5).abs() > 1e-6 {
            return y.round() / scale;
        }
    }
    // Near a tie: Rust's formatting rounds the exact value half to even, as Python's dtoa does.
    format!("{:.*}", ndigits.max(0) as usize, x)
        .parse()
        .unwrap_or(x)
}

/// Everything the rules ask about one whitespace-separated token.
struct Info {
    low: Box<str>,
    lex: Option<f64>,
    boost: Option<f64>,
    scored: bool,
    upper: bool,
    emph: bool,
    neg: bool,
    idiom: bool,
    flags: u16,
    /// Index into `Crypto::phrase_lists` when the token can start a crypto phrase.
    phrase: Option<u32>,
    /// `raw.lower()` and `raw.rstrip(punctuation).lower()` of a non-ASCII crypto token.
    unicode_lowers: Option<Box<(Box<str>, Box<str>)>>,
}

/// The crypto analyzer's tokenisation data.
struct Crypto {
    tokens: Set<Box<str>>,
    emoji_text: Map<Box<str>, Box<str>>,
    emoji_starts: Set<char>,
    phrase_index: Map<Box<str>, u32>,
    phrase_lists: Vec<Vec<Vec<Box<str>>>>,
}

#[pyclass(frozen, module = "cryptosent_vader_core")]
struct Engine {
    lexicon: Map<Box<str>, f64>,
    boosters: Map<Box<str>, f64>,
    negate: Set<Box<str>>,
    idiom_words: Set<Box<str>>,
    special_cases: Map<Box<str>, f64>,
    caps_neutral: Set<Box<str>>,
    /// vader: single code point emoji -> " " + description.
    emoji_table: Map<char, Box<str>>,
    /// No emoji key is ASCII, so an ASCII text needs no substitution.
    emoji_ascii_free: bool,
    crypto: Option<Crypto>,
    /// Python callable: non-ASCII raw token -> (low, low.lower(), isupper[, lead, raw_lower,
    /// tail_lower]) with Python's own Unicode semantics.
    unicode_facts: Py<PyAny>,
    /// Python callable scoring a text the pure-Python way (texts with lone surrogates).
    fallback: Py<PyAny>,
    scores_type: Py<PyType>,
    empty: Py<PyAny>,
    neutral: Py<PyAny>,
    cache: Mutex<Map<Box<str>, Info>>,
}

/// The crypto analyzer's tables as Python hands them over: crypto tokens, emoji sequence ->
/// text, and phrase first word -> phrases (as word lists, longest first).
type CryptoTables = (
    Vec<String>,
    Vec<(String, String)>,
    Vec<(String, Vec<Vec<String>>)>,
);

enum Outcome {
    Empty,
    Neutral,
    Scores([f64; 4]),
}

fn to_map(items: Vec<(String, f64)>) -> Map<Box<str>, f64> {
    items
        .into_iter()
        .map(|(k, v)| (k.into_boxed_str(), v))
        .collect()
}

fn to_set(items: Vec<String>) -> Set<Box<str>> {
    items.into_iter().map(String::into_boxed_str).collect()
}

impl Engine {
    fn make_info(
        &self,
        low: String,
        neg_low: &str,
        upper: bool,
        lead: Option<&str>,
        unicode_lowers: Option<Box<(Box<str>, Box<str>)>>,
    ) -> Info {
        let lex = self.lexicon.get(low.as_str()).copied();
        let boost = self.boosters.get(low.as_str()).copied();
        let phrase = match (&self.crypto, lead) {
            (Some(crypto), Some(lead)) => crypto.phrase_index.get(lead).copied(),
            _ => None,
        };
        Info {
            // Boosters are scored 0 before the lexicon is consulted, even when they are in it.
            scored: lex.is_some() && boost.is_none(),
            emph: upper && !self.caps_neutral.contains(low.as_str()),
            neg: self.negate.contains(neg_low) || neg_low.contains("n't"),
            idiom: self.idiom_words.contains(low.as_str()),
            flags: word_flags(&low),
            low: low.into_boxed_str(),
            lex,
            boost,
            upper,
            phrase,
            unicode_lowers,
        }
    }

    /// Token facts computed here: the token is ASCII, so are all its forms.
    fn ascii_info(&self, raw: &str) -> Info {
        let stripped = raw.trim_matches(is_punct);
        let mut word = if stripped.len() <= 2 { raw } else { stripped };
        let mut lead = None;
        if let Some(crypto) = &self.crypto {
            // Crypto terms are always stripped ("gm,", "🚀!!").
            if crypto.tokens.contains(ascii_lower(stripped).as_str()) {
                word = stripped;
            }
            if !raw.ends_with(is_punct) {
                lead = Some(ascii_lower(raw.trim_start_matches(is_punct)));
            }
        }
        let low = ascii_lower(word);
        let neg_low = low.clone();
        self.make_info(low, &neg_low, ascii_isupper(word), lead.as_deref(), None)
    }

    /// Token facts from Python's own `str.lower()` / `str.isupper()`.
    fn unicode_info(&self, py: Python<'_>, raw: &str) -> PyResult<Info> {
        let facts = self.unicode_facts.bind(py).call1((raw,))?;
        let facts = facts.cast::<PyTuple>()?;
        let low: String = facts.get_item(0)?.extract()?;
        let neg_low: String = facts.get_item(1)?.extract()?;
        let upper: bool = facts.get_item(2)?.extract()?;
        if self.crypto.is_none() {
            return Ok(self.make_info(low, &neg_low, upper, None, None));
        }
        let lead: Option<String> = facts.get_item(3)?.extract()?;
        let raw_lower: String = facts.get_item(4)?.extract()?;
        let tail_lower: String = facts.get_item(5)?.extract()?;
        let lowers = Box::new((raw_lower.into_boxed_str(), tail_lower.into_boxed_str()));
        Ok(self.make_info(low, &neg_low, upper, lead.as_deref(), Some(lowers)))
    }

    /// Makes sure every word is in the cache; Python is only called (with the GIL the caller
    /// holds) for non-ASCII words not in it, and without the lock held. Without `python`, such
    /// words are left out and the answer is false.
    fn ensure_cached<S: AsRef<str>>(&self, words: &[S], python: bool) -> PyResult<bool> {
        let mut pending: Vec<&str> = Vec::new();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            // Emptied only before a text, so that a text's own tokens are never evicted.
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            for word in words {
                let word = word.as_ref();
                if !cache.contains_key(word) {
                    if word.is_ascii() {
                        let info = self.ascii_info(word);
                        cache.insert(word.into(), info);
                    } else {
                        pending.push(word);
                    }
                }
            }
        }
        if !pending.is_empty() {
            if !python {
                return Ok(false);
            }
            pending.sort_unstable();
            pending.dedup();
            let infos = Python::attach(|py| {
                pending
                    .iter()
                    .map(|word| self.unicode_info(py, word))
                    .collect::<PyResult<Vec<Info>>>()
            })?;
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for (word, info) in pending.into_iter().zip(infos) {
                cache.insert(word.into(), info);
            }
        }
        Ok(true)
    }

    /// The emoji-substituted text the rules see (tokens and '!'/'?' counts).
    fn substitute<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        if text.is_ascii() && (self.emoji_ascii_free || self.crypto.is_some()) {
            return text.into();
        }
        match &self.crypto {
            None => {
                // Copy the text between emoji in runs; only non-ASCII characters are looked up.
                let mut out = String::new();
                let mut copied = 0;
                let mut index = 0;
                while index < text.len() {
                    if self.emoji_ascii_free {
                        // no ASCII character is an emoji: skip a run of them at once
                        index += ascii_run(&text[index..]);
                    }
                    let Some(c) = text[index..].chars().next() else {
                        break;
                    };
                    if let Some(description) = self.emoji_table.get(&c) {
                        if out.is_empty() {
                            out.reserve(text.len() + 64);
                        }
                        out.push_str(&text[copied..index]);
                        out.push_str(description);
                        copied = index + c.len_utf8();
                    }
                    index += c.len_utf8();
                }
                if copied == 0 {
                    return text.into();
                }
                out.push_str(&text[copied..]);
                out.into()
            }
            Some(crypto) => crypto_substitute(crypto, text).into(),
        }
    }

    /// The outcome of one text (the GIL held: Python is called for a non-ASCII token not in
    /// the cache yet).
    fn score_text(&self, text: &str) -> PyResult<Outcome> {
        Ok(self
            .try_score_text(text, true)?
            .expect("scoring that may call Python always decides"))
    }

    /// `score_text`, or None, before any Python call, when `python` is false and the text has a
    /// non-ASCII token not in the cache yet: a caller that let the GIL go scores it later, with
    /// the GIL, instead of waiting for it in the middle of the batch.
    pub(crate) fn try_score_text(&self, text: &str, python: bool) -> PyResult<Option<Outcome>> {
        let text = self.substitute(text);
        let words = split_py(&text);
        if words.is_empty() {
            return Ok(Some(Outcome::Empty));
        }
        let bytes = text.as_bytes();
        let exclamations = bytes.iter().filter(|&&b| b == b'!').count();
        let questions = bytes.iter().filter(|&&b| b == b'?').count();
        // Another thread may empty the cache while Python is called back: then look again.
        loop {
            let merged = {
                let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                let mut infos: Vec<&Info> = Vec::with_capacity(words.len());
                for word in &words {
                    match cache.get(*word) {
                        Some(info) => infos.push(info),
                        None => break,
                    }
                }
                match (infos.len() == words.len()).then_some(infos) {
                    None => None,
                    Some(infos) => {
                        match self
                            .crypto
                            .as_ref()
                            .and_then(|c| merge_phrases(c, &infos, &words))
                        {
                            None => {
                                return Ok(Some(self.apply_rules(&infos, exclamations, questions)))
                            }
                            Some(merged) => Some(merged),
                        }
                    }
                }
            };
            match merged {
                None => {
                    if !self.ensure_cached(&words, python)? {
                        return Ok(None);
                    }
                }
                Some(merged) => {
                    if !self.ensure_cached(&merged, python)? {
                        return Ok(None);
                    }
                    if let Some(outcome) = self.score_words(&merged, exclamations, questions) {
                        return Ok(Some(outcome));
                    }
                }
            }
        }
    }

    /// VADER's rules over cached tokens; None if a token went missing from the cache.
    fn score_words<S: AsRef<str>>(
        &self,
        words: &[S],
        exclamations: usize,
        questions: usize,
    ) -> Option<Outcome> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut infos: Vec<&Info> = Vec::with_capacity(words.len());
        for word in words {
            infos.push(cache.get(word.as_ref())?);
        }
        Some(self.apply_rules(&infos, exclamations, questions))
    }

    fn apply_rules(&self, t: &[&Info], exclamations: usize, questions: usize) -> Outcome {
        let n = t.len();
        if !t.iter().any(|info| info.scored) {
            return Outcome::Neutral;
        }
        let uppers = t.iter().filter(|info| info.upper).count();
        let cap_diff = 0 < uppers && uppers < n;
        let mut values: Vec<f64> = Vec::with_capacity(8);
        let mut positions: Vec<usize> = Vec::with_capacity(8);
        let mut idiom_pairs: Option<bool> = None;
        let boosted = |valence: f64, k: usize, damp: f64| -> f64 {
            // _scalar_inc_dec(), then the damping for two or three words back.
            let mut scalar = 0.0;
            if let Some(boost) = t[k].boost {
                scalar = boost;
                if valence < 0.0 {
                    scalar = -scalar;
                }
                if t[k].emph && cap_diff {
                    scalar = if valence > 0.0 {
                        scalar + C_INCR
                    } else {
                        scalar - C_INCR
                    };
                }
                if damp != 1.0 && scalar != 0.0 {
                    scalar *= damp;
                }
            }
            valence + scalar
        };
        for i in 0..n {
            let info = t[i];
            if !info.scored {
                continue;
            }
            positions.push(i);
            if info.flags & KIND != 0 && i + 1 < n && t[i + 1].flags & OF != 0 {
                values.push(0.0);
                continue;
            }
            let lex = info.lex.unwrap_or(0.0);
            let mut valence = lex;
            // "no" as a negation of the next lexicon word rather than a word of its own.
            if i > 0 {
                let w1 = t[i - 1].flags;
                if info.flags & NO != 0 && i != n - 1 && t[i + 1].lex.is_some() {
                    valence = 0.0;
                }
                if w1 & NO != 0
                    || (i > 1
                        && (t[i - 2].flags & NO != 0
                            || (i > 2 && t[i - 3].flags & NO != 0 && w1 & OR_NOR != 0)))
                {
                    valence = lex * N_SCALAR;
                }
            } else if info.flags & NO != 0 && n > 1 && t[1].lex.is_some() {
                valence = 0.0;
            }
            if info.emph && cap_diff {
                valence = if valence > 0.0 {
                    valence + C_INCR
                } else {
                    valence - C_INCR
                };
            }

            // The three preceding words: boosters, negations, idioms.
            if i > 0 && t[i - 1].lex.is_none() {
                valence = boosted(valence, i - 1, 1.0);
                if t[i - 1].neg {
                    valence *= N_SCALAR;
                }
            }
            if i > 1 && t[i - 2].lex.is_none() {
                valence = boosted(valence, i - 2, 0.95);
                let (w2, w1) = (t[i - 2].flags, t[i - 1].flags);
                if w2 & NEVER != 0 && w1 & SO_THIS != 0 {
                    valence *= 1.25;
                } else if w2 & WITHOUT != 0 && w1 & DOUBT != 0 {
                } else if t[i - 2].neg {
                    valence *= N_SCALAR;
                }
            }
            if i > 2 && t[i - 3].lex.is_none() {
                valence = boosted(valence, i - 3, 0.9);
                let (w3, w2, w1) = (t[i - 3].flags, t[i - 2].flags, t[i - 1].flags);
                // vaderSentiment's operator precedence: (never and so/this) or w1 is so/this.
                if (w3 & NEVER != 0 && w2 & SO_THIS != 0) || w1 & SO_THIS != 0 {
                    valence *= 1.25;
                } else if w3 & WITHOUT != 0 && (w2 & DOUBT != 0 || w1 & DOUBT != 0) {
                } else if t[i - 3].neg {
                    valence *= N_SCALAR;
                }
                // Every idiom and multi-word booster has two adjacent idiom words.
                let pairs = *idiom_pairs
                    .get_or_insert_with(|| t.windows(2).any(|w| w[0].idiom && w[1].idiom));
                if pairs {
                    valence = self.special_idioms(valence, t, i);
                }
            }

            // "least" negates, except in "at least" and "very least".
            if i > 0 && t[i - 1].flags & LEAST != 0 && t[i - 1].lex.is_none() {
                if i > 1 {
                    if t[i - 2].flags & AT_VERY == 0 {
                        valence *= N_SCALAR;
                    }
                } else {
                    valence *= N_SCALAR;
                }
            }
            values.push(valence);
        }
        if let Some(bi) = t.iter().position(|info| info.flags & BUT != 0) {
            but_check(&mut values, &positions, bi);
        }
        Outcome::Scores(score_valence(&values, n, exclamations, questions))
    }

    fn special_idioms(&self, mut valence: f64, t: &[&Info], i: usize) -> f64 {
        let w = |k: usize| -> &str { &t[k].low };
        let onezero = format!("{} {}", w(i - 1), w(i));
        let twoonezero = format!("{} {} {}", w(i - 2), w(i - 1), w(i));
        let twoone = format!("{} {}", w(i - 2), w(i - 1));
        let threetwoone = format!("{} {} {}", w(i - 3), w(i - 2), w(i - 1));
        let threetwo = format!("{} {}", w(i - 3), w(i - 2));
        for seq in [&onezero, &twoonezero, &twoone, &threetwoone, &threetwo] {
            if let Some(&value) = self.special_cases.get(seq.as_str()) {
                valence = value;
                break;
            }
        }
        let n = t.len();
        if n - 1 > i {
            let zeroone = format!("{} {}", w(i), w(i + 1));
            if let Some(&value) = self.special_cases.get(zeroone.as_str()) {
                valence = value;
            }
        }
        if n - 1 > i + 1 {
            let zeroonetwo = format!("{} {} {}", w(i), w(i + 1), w(i + 2));
            if let Some(&value) = self.special_cases.get(zeroonetwo.as_str()) {
                valence = value;
            }
        }
        for n_gram in [&threetwoone, &threetwo, &twoone] {
            if let Some(&boost) = self.boosters.get(n_gram.as_str()) {
                valence += boost;
            }
        }
        valence
    }

    fn to_python(&self, py: Python<'_>, outcome: Outcome) -> PyResult<Py<PyAny>> {
        match outcome {
            Outcome::Empty => Ok(self.empty.clone_ref(py)),
            Outcome::Neutral => Ok(self.neutral.clone_ref(py)),
            Outcome::Scores(values) => new_scores(py, self.scores_type.bind(py), values),
        }
    }

    fn scores_one(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let string = text.cast::<PyString>()?;
        match string.to_str() {
            Ok(utf8) => {
                let outcome = self.score_text(utf8)?;
                self.to_python(py, outcome)
            }
            // Lone surrogates have no UTF-8 form: score them the pure-Python way.
            Err(_) => Ok(self.fallback.bind(py).call1((text,))?.unbind()),
        }
    }
}

/// vaderSentiment's "but" rule, list.index() quirk included: each value is looked up again by
/// equality, so with repeated values the first equal one is rescaled (possibly twice).
fn but_check(values: &mut [f64], positions: &[usize], bi: usize) {
    for k in 0..values.len() {
        let sentiment = values[k];
        let si = values.iter().position(|&v| v == sentiment).unwrap_or(k);
        if positions[si] < bi {
            values[si] = sentiment * 0.5;
        } else if positions[si] > bi {
            values[si] = sentiment * 1.5;
        }
    }
}

/// `score_valence()` with `_punctuation_emphasis()`: `values` are the scored words' sentiments;
/// the other `n - len(values)` words are zeros, which change no sum.
fn score_valence(values: &[f64], n: usize, exclamations: usize, questions: usize) -> [f64; 4] {
    let mut sum_s = 0.0f64;
    for &v in values {
        sum_s += v;
    }
    let ep_count = exclamations.min(4) as f64;
    let qm_amplifier = if questions > 1 {
        if questions <= 3 {
            questions as f64 * 0.18
        } else {
            0.96
        }
    } else {
        0.0
    };
    let punct_emph_amplifier = ep_count * 0.292 + qm_amplifier;
    if sum_s > 0.0 {
        sum_s += punct_emph_amplifier;
    } else if sum_s < 0.0 {
        sum_s -= punct_emph_amplifier;
    }
    let compound = (sum_s / ((sum_s * sum_s) + 15.0).sqrt()).clamp(-1.0, 1.0);

    let mut pos_sum = 0.0f64;
    let mut neg_sum = 0.0f64;
    let mut neu_count = n as i64;
    for &score in values {
        if score > 0.0 {
            pos_sum += score + 1.0;
            neu_count -= 1;
        } else if score < 0.0 {
            neg_sum += score - 1.0;
            neu_count -= 1;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += punct_emph_amplifier;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= punct_emph_amplifier;
    }
    let total = pos_sum + neg_sum.abs() + neu_count as f64;
    [
        py_round_impl(compound, 4),
        py_round_impl((pos_sum / total).abs(), 3),
        py_round_impl((neu_count as f64 / total).abs(), 3),
        py_round_impl((neg_sum / total).abs(), 3),
    ]
}

#[inline]
fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

#[inline]
fn is_emoji_tail(c: char) -> bool {
    // [\u20e3\U000e0020-\U000e007f]: keycap and tag characters.
    c == '\u{20E3}' || ('\u{E0020}'..='\u{E007F}').contains(&c)
}

#[inline]
fn is_emoji_modifier(c: char) -> bool {
    // Variation selectors and skin tones, dropped before emoji are read.
    c == '\u{FE0E}' || c == '\u{FE0F}' || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

/// The crypto analyzer's emoji pass, the same as its regular expression
/// `[RI]{2} | start [tail]* (ZWJ [^\s\x00-\x7f] [tail]*)*` with each match replaced by
/// " description " (a flag by " "). Every character a match holds is non-ASCII, and ASCII
/// characters are kept as they are: runs of ASCII are copied whole, and each run of other
/// characters is read on its own (`substitute_run`).
fn crypto_substitute(crypto: &Crypto, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut chars: Vec<char> = Vec::new();
    let mut sequence = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let ascii = ascii_run(rest);
        out.push_str(&rest[..ascii]);
        rest = &rest[ascii..];
        let other = rest
            .bytes()
            .position(|b| b.is_ascii())
            .unwrap_or(rest.len());
        chars.clear();
        chars.extend(rest[..other].chars().filter(|&c| !is_emoji_modifier(c)));
        substitute_run(crypto, &chars, &mut sequence, &mut out);
        rest = &rest[other..];
    }
    out
}

/// `crypto_substitute` of a run of non-ASCII characters (modifiers dropped), into `out`.
fn substitute_run(crypto: &Crypto, chars: &[char], sequence: &mut String, out: &mut String) {
    let n = chars.len();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if is_regional_indicator(c) && i + 1 < n && is_regional_indicator(chars[i + 1]) {
            out.push(' ');
            i += 2;
            continue;
        }
        if !crypto.emoji_starts.contains(&c) {
            out.push(c);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < n && is_emoji_tail(chars[j]) {
            j += 1;
        }
        while j + 1 < n && chars[j] == '\u{200D}' && !is_py_space(chars[j + 1]) {
            j += 2;
            while j < n && is_emoji_tail(chars[j]) {
                j += 1;
            }
        }
        if is_regional_indicator(c) {
            // A flag names a country, which says nothing about mood.
            out.push(' ');
        } else {
            sequence.clear();
            sequence.extend(&chars[i..j]);
            out.push(' ');
            match crypto.emoji_text.get(sequence.as_str()) {
                Some(description) => out.push_str(description),
                None => {
                    // An unknown ZWJ sequence reads as its parts.
                    for (k, part) in sequence.split('\u{200D}').enumerate() {
                        if k > 0 {
                            out.push(' ');
                        }
                        match crypto.emoji_text.get(part) {
                            Some(description) => out.push_str(description),
                            None => out.push_str(part),
                        }
                    }
                }
            }
            out.push(' ');
        }
        i = j;
    }
}

/// Merges crypto phrases ("to the moon" -> "to_the_moon"); None if nothing was merged.
fn merge_phrases(crypto: &Crypto, infos: &[&Info], words: &[&str]) -> Option<Vec<String>> {
    if !infos.iter().any(|info| info.phrase.is_some()) {
        return None;
    }
    let raw_lower_eq = |k: usize, part: &str| -> bool {
        match &infos[k].unicode_lowers {
            Some(lowers) => &*lowers.0 == part,
            None => ascii_lower_eq(words[k], part),
        }
    };
    let tail_lower_eq = |k: usize, part: &str| -> bool {
        match &infos[k].unicode_lowers {
            Some(lowers) => &*lowers.1 == part,
            None => ascii_lower_eq(words[k].trim_end_matches(is_punct), part),
        }
    };
    let n = words.len();
    let mut merged = Vec::with_capacity(n);
    let mut any_merged = false;
    let mut i = 0;
    while i < n {
        let mut step = 1;
        let mut word = words[i].to_owned();
        if let Some(list) = infos[i].phrase {
            for parts in &crypto.phrase_lists[list as usize] {
                let k = parts.len();
                if i + k <= n
                    && (1..k - 1).all(|j| raw_lower_eq(i + j, &parts[j]))
                    && tail_lower_eq(i + k - 1, &parts[k - 1])
                {
                    word = words[i..i + k].join("_");
                    step = k;
                    any_merged = true;
                    break;
                }
            }
        }
        merged.push(word);
        i += step;
    }
    any_merged.then_some(merged)
}

fn new_scores(
    py: Python<'_>,
    scores_type: &Bound<'_, PyType>,
    values: [f64; 4],
) -> PyResult<Py<PyAny>> {
    // What tuple.__new__(Scores, values) does, without a Python-level call.
    unsafe {
        let tp = scores_type.as_ptr() as *mut ffi::PyTypeObject;
        let alloc = (*tp).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
        let obj = alloc(tp, 4);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let obj = Bound::from_owned_ptr(py, obj);
        for (k, value) in values.into_iter().enumerate() {
            let float = ffi::PyFloat_FromDouble(value);
            if float.is_null() {
                return Err(PyErr::fetch(py));
            }
            ffi::PyTuple_SET_ITEM(obj.as_ptr(), k as ffi::Py_ssize_t, float);
        }
        // Four floats can be part of no reference cycle: keep the garbage collector from
        // walking (and counting) the millions of Scores a batch run keeps alive.
        ffi::PyObject_GC_UnTrack(obj.as_ptr().cast());
        Ok(obj.unbind())
    }
}

#[pymethods]
impl Engine {
    /// Build an engine. Tables come from cryptosent.analysis (vader.py / sentiment.py).
    #[new]
    #[pyo3(signature = (
        lexicon, boosters, negate, idiom_words, special_cases, caps_neutral, emoji_table,
        unicode_facts, fallback, scores_type, empty, neutral, crypto=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        lexicon: Vec<(String, f64)>,
        boosters: Vec<(String, f64)>,
        negate: Vec<String>,
        idiom_words: Vec<String>,
        special_cases: Vec<(String, f64)>,
        caps_neutral: Vec<String>,
        emoji_table: Vec<(String, String)>,
        unicode_facts: Py<PyAny>,
        fallback: Py<PyAny>,
        scores_type: Py<PyType>,
        empty: Py<PyAny>,
        neutral: Py<PyAny>,
        crypto: Option<CryptoTables>,
    ) -> PyResult<Self> {
        let mut table = Map::default();
        for (key, description) in emoji_table {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => {
                    table.insert(c, description.into_boxed_str());
                }
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "emoji key {key:?} is not one code point"
                    )))
                }
            }
        }
        let crypto = crypto.map(|(tokens, emoji_text, phrases)| {
            let mut phrase_index = Map::default();
            let mut phrase_lists = Vec::new();
            for (first, lists) in phrases {
                phrase_index.insert(first.into_boxed_str(), phrase_lists.len() as u32);
                phrase_lists.push(
                    lists
                        .into_iter()
                        .map(|parts| parts.into_iter().map(String::into_boxed_str).collect())
                        .collect(),
                );
            }
            let emoji_text: Map<Box<str>, Box<str>> = emoji_text
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect();
            let emoji_starts = emoji_text
                .keys()
                .filter_map(|key| key.chars().next())
                .filter(|c| !c.is_ascii())
                .collect();
            Crypto {
                tokens: to_set(tokens),
                emoji_text,
                emoji_starts,
                phrase_index,
                phrase_lists,
            }
        });
        Ok(Engine {
            lexicon: to_map(lexicon),
            boosters: to_map(boosters),
            negate: to_set(negate),
            idiom_words: to_set(idiom_words),
            special_cases: to_map(special_cases),
            caps_neutral: to_set(caps_neutral),
            emoji_ascii_free: table.keys().all(|c| !c.is_ascii()),
            emoji_table: table,
            crypto,
            unicode_facts,
            fallback,
            scores_type,
            empty,
            neutral,
            cache: Mutex::new(Map::default()),
        })
    }

    /// Score one text: a Scores(compound, pos, neu, neg).
    fn scores(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.scores_one(py, text)
    }

    /// Score many texts in order: a list of Scores.
    fn scores_many<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        if let Ok(list) = texts.cast::<PyList>() {
            for text in list.iter() {
                out.append(self.scores_one(py, &text)?)?;
            }
        } else {
            for text in texts.try_iter()? {
                out.append(self.scores_one(py, &text?)?)?;
            }
        }
        Ok(out)
    }

    /// The whitespace-separated tokens the engine sees in `text` after emoji substitution.
    fn tokens(&self, text: &str) -> Vec<String> {
        split_py(&self.substitute(text))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// How many distinct tokens are cached.
    fn cache_size(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Python's round(x, ndigits) as the engine computes it (exported for the tests).
#[pyfunction]
fn py_round(x: f64, ndigits: i32) -> f64 {
    py_round_impl(x, ndigits)
}

/// Every code point the engine splits on, as one string (exported for the tests).
#[pyfunction]
fn whitespace() -> String {
    (0u32..=0x10FFFF)
        .filter_map(char::from_u32)
        .filter(|&c| is_py_space(c))
        .collect()
}

/// How many line feeds and carriage returns `data` holds, counted without the GIL (the lake's
/// check that a batch of messages joined by line feeds holds no line break of its own).
#[pyfunction]
fn line_breaks(py: Python<'_>, data: &[u8]) -> usize {
    py.detach(|| memchr::memchr2_iter(b'\n', b'\r', data).count())
}

/// `str.split()` for the student's features.
pub(crate) fn is_py_space_pub(c: char) -> bool {
    is_py_space(c)
}

/// Python's `round(x, ndigits)` for the student's probabilities.
pub(crate) fn py_round_pub(x: f64, ndigits: i32) -> f64 {
    py_round_impl(x, ndigits)
}

#[pymodule]
fn cryptosent_vader_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<student::Student>()?;
    m.add_function(wrap_pyfunction!(batch::score_columns, m)?)?;
    m.add_function(wrap_pyfunction!(decode::decode_tweets, m)?)?;
    m.add_function(wrap_pyfunction!(copy::copy_rows, m)?)?;
    m.add_class::<coins::CoinQuick>()?;
    m.add_class::<campaigns::CampaignSigner>()?;
    m.add_function(wrap_pyfunction!(campaigns::similar_rows, m)?)?;
    m.add_function(wrap_pyfunction!(campaigns::band_groups, m)?)?;
    m.add_class::<campaigns::BandBuckets>()?;
    m.add_function(wrap_pyfunction!(campaigns::link_batch, m)?)?;
    m.add_class::<campaigns::PairCounts>()?;
    m.add_function(wrap_pyfunction!(campaigns::cluster_books, m)?)?;
    m.add_function(wrap_pyfunction!(campaigns::text_facts, m)?)?;
    m.add_class::<campaigns::StringTable>()?;
    m.add("BATCH_FLOAT_COLUMNS", batch::FLOAT_COLUMNS)?;
    m.add_function(wrap_pyfunction!(student::student_features, m)?)?;
    m.add("STUDENT_BUCKETS", student::BUCKETS)?;
    m.add_function(wrap_pyfunction!(py_round, m)?)?;
    m.add_function(wrap_pyfunction!(whitespace, m)?)?;
    m.add_function(wrap_pyfunction!(line_breaks, m)?)?;
    m.add("CACHE_LIMIT", CACHE_LIMIT)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_py_splits_as_str_split_across_blocks_of_sixteen_bytes() {
        // ASCII and multi-byte whitespace and non-whitespace sharing their lead bytes, in texts
        // of every length up to 300 bytes, so that every piece meets every block boundary
        let pieces = [
            "a", "Bc", "word", " ", "  ", "\t", "\n", "\u{1c}", "\u{1f}", "é", "🚀", "\u{85}",
            "\u{a0}", "\u{a9}", "\u{1680}", "\u{1234}", "\u{2000}", "\u{200a}", "\u{200b}",
            "\u{2028}", "\u{205f}", "\u{2010}", "\u{3000}", "\u{3001}", "\u{7f}", "!",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let target = (state >> 33) as usize % 300;
            while text.len() < target {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
            }
            let expected: Vec<&str> = text.split(is_py_space).filter(|w| !w.is_empty()).collect();
            assert_eq!(split_py(&text), expected, "{text:?}");
        }
    }
}
