//! The `learned` analyzer's hot path: hashed n-gram features and the linear student, mirroring
//! `cryptosent.analysis.learned.features` and `.student` bit for bit (a test compares both on
//! every labelled text). Lower-casing stays in Python (`str.lower()`), which hands the lowered
//! text in beside the original, so no Unicode table here can differ from Python's.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pub const BUCKETS: u32 = 1 << 18;
const DENSE: usize = 12;
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

/// Tokens, has-a-capitalised-word, number of '!', has-a-'?'.
pub fn tokens(original: &str, lowered: &str) -> (Vec<String>, bool, usize, bool) {
    let caps = crate::split_py_pub(original).iter().any(|w| {
        w.is_ascii() && w.len() >= 3 && w.bytes().all(|b| b.is_ascii_alphabetic())
            && w.bytes().all(|b| b.is_ascii_uppercase())
    });
    // squash runs of 3+ identical characters to 2, then curly apostrophes to straight ones
    let mut low: Vec<char> = Vec::with_capacity(lowered.len());
    let mut prev: Option<char> = None;
    let mut run = 0;
    for c in lowered.chars() {
        run = if Some(c) == prev { run + 1 } else { 1 };
        prev = Some(c);
        if run <= 2 {
            low.push(if c == '\u{2019}' { '\'' } else { c });
        }
    }
    let n = low.len();
    let bangs = low.iter().filter(|&&c| c == '!').count();
    let question = low.contains(&'?');
    let mut out: Vec<String> = Vec::with_capacity(32);
    let mut i = 0;
    while i < n {
        let ch = low[i];
        let cp = ch as u32;
        if is_dropped(cp) {
            i += 1;
            continue;
        }
        if is_symbol(cp) {
            out.push(ch.to_string());
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
        let word: String = low[start..i].iter().collect();
        let bare = word.strip_prefix('$').unwrap_or(&word);
        if word.starts_with('@') {
            out.push("<user>".into());
        } else if (word.starts_with("http") || word.starts_with("www"))
            && i < n
            && matches!(low[i], ':' | '.' | '/')
        {
            while i < n && !is_space(low[i]) {
                i += 1;
            }
            out.push("<url>".into());
        } else if bare.as_bytes().first().is_some_and(|b| b.is_ascii_digit()) {
            while i + 1 < n && matches!(low[i], '.' | ',') && low[i + 1].is_ascii_digit() {
                i += 1;
                while i < n && word_char(low[i]) {
                    i += 1;
                }
            }
            let word: String = low[start..i].iter().collect();
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
            out.push(if word.starts_with('$') { format!("${shape}") } else { shape });
        } else if !word.is_empty() {
            out.push(word);
        }
        if i == start {
            i += 1;
        }
    }
    (out, caps, bangs, question)
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
fn for_each_feature(toks: &[String], caps: bool, bangs: usize, question: bool, mut sink: impl FnMut(u32, Source)) {
    let mut negated = 0u32;
    let mut offsets: Vec<usize> = Vec::with_capacity(32);
    for (k, tok) in toks.iter().enumerate() {
        let bytes = tok.as_bytes();
        sink(fnv_extend(fnv_extend(FNV_OFFSET, b"w|"), bytes), Source::Word(k as u32));
        if k > 0 {
            let h = fnv_extend(fnv_extend(FNV_OFFSET, b"b|"), toks[k - 1].as_bytes());
            sink(fnv_extend(fnv_extend(h, b" "), bytes), Source::Bigram(k as u32));
        }
        if negated > 0 {
            sink(fnv_extend(fnv_extend(FNV_OFFSET, b"n|"), bytes), Source::Negated(k as u32));
            negated -= 1;
        }
        if NEGATORS.contains(&tok.as_str()) || tok.ends_with("n't") {
            negated = NEGATION_SPAN;
        }
        let first = tok.chars().next().unwrap_or('<');
        if first != '<' && !is_symbol(first as u32) && tok.chars().nth(1).is_some() {
            // grams of "<tok>": position 0 is '<', position chars+1 is '>', the rest tok's chars
            offsets.clear();
            offsets.extend(tok.char_indices().map(|(i, _)| i));
            offsets.push(bytes.len());
            let chars = offsets.len() - 1; // characters of tok
            let total = chars + 2;
            let prefix = fnv_extend(FNV_OFFSET, b"c|");
            for size in [3usize, 4] {
                if total >= size {
                    for s in 0..=(total - size) {
                        let end = s + size; // exclusive, in padded positions
                        let mut h = if s == 0 { fnv_extend(prefix, b"<") } else { prefix };
                        let from = if s == 0 { 0 } else { s - 1 };
                        let to = if end == total { chars } else { end - 1 };
                        h = fnv_extend(h, &bytes[offsets[from]..offsets[to]]);
                        if end == total {
                            h = fnv_extend(h, b">");
                        }
                        sink(h, Source::Other);
                    }
                }
            }
        }
    }
    if bangs > 0 { sink(fnv_extend(FNV_OFFSET, b"p|!"), Source::Other); }
    if bangs > 1 { sink(fnv_extend(FNV_OFFSET, b"p|!!"), Source::Other); }
    if question { sink(fnv_extend(FNV_OFFSET, b"p|?"), Source::Other); }
    if caps { sink(fnv_extend(FNV_OFFSET, b"p|caps"), Source::Other); }
}

/// Distinct feature indices (sorted), each with where its first hit came from.
fn indexed(toks: &[String], caps: bool, bangs: usize, question: bool) -> Vec<(u32, Source)> {
    let mut all: Vec<(u32, u32, Source)> = Vec::with_capacity(256);
    let mut seq = 0u32;
    for_each_feature(toks, caps, bangs, question, |h, src| {
        all.push((h % BUCKETS, seq, src));
        seq += 1;
    });
    all.sort_unstable_by_key(|&(index, order, _)| ((index as u64) << 32) | order as u64);
    all.dedup_by_key(|&mut (index, _, _)| index);
    all.into_iter().map(|(index, _, src)| (index, src)).collect()
}

fn feature_text(toks: &[String], src: Source) -> Option<String> {
    match src {
        Source::Word(k) => Some(toks[k as usize].clone()),
        Source::Bigram(k) => Some(format!("{} {}", toks[k as usize - 1], toks[k as usize])),
        Source::Negated(k) => Some(format!("not {}", toks[k as usize])),
        Source::Other => None,
    }
}

#[pyfunction]
pub fn student_features(texts: Vec<(String, String)>) -> Vec<Vec<u32>> {
    texts
        .iter()
        .map(|(original, lowered)| {
            let (toks, caps, bangs, question) = tokens(original, lowered);
            indexed(&toks, caps, bangs, question).into_iter().map(|(i, _)| i).collect()
        })
        .collect()
}

#[pyclass(frozen, module = "cryptosent_vader_core")]
pub struct Student {
    hashed: Vec<f32>,
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
        if hashed.len() != BUCKETS as usize * 3 || dense.len() != DENSE * 3 || bias.len() != 3 {
            return Err(PyValueError::new_err("student weights have the wrong shape"));
        }
        Ok(Student { hashed, dense, bias: [bias[0], bias[1], bias[2]], temperature })
    }

    /// (neg, neu, pos, explanation) per (text, lowered text, 12 dense features); without
    /// `explain` the explanation is left empty (the processor derives it only when shown).
    #[pyo3(signature = (items, explain = true))]
    fn judge_many(
        &self,
        py: Python<'_>,
        items: Vec<(String, String, Vec<f64>)>,
        explain: bool,
    ) -> PyResult<Vec<(f64, f64, f64, Vec<String>)>> {
        py.detach(|| {
            items
                .iter()
                .map(|(original, lowered, dense)| self.judge(original, lowered, dense, explain))
                .collect()
        })
    }
}

impl Student {
    fn judge(
        &self,
        original: &str,
        lowered: &str,
        dense: &[f64],
        explain: bool,
    ) -> PyResult<(f64, f64, f64, Vec<String>)> {
        if dense.len() != DENSE {
            return Err(PyValueError::new_err("expected 12 dense features"));
        }
        let (toks, caps, bangs, question) = tokens(original, lowered);
        let features = indexed(&toks, caps, bangs, question);
        let scale = if features.is_empty() { 0.0 } else { 1.0 / (features.len() as f64).sqrt() };
        let mut logits = [self.bias[0] as f64, self.bias[1] as f64, self.bias[2] as f64];
        for c in 0..3 {
            let mut sum = 0.0f64;
            for (index, _) in &features {
                sum += self.hashed[*index as usize * 3 + c] as f64;
            }
            logits[c] += sum * scale;
        }
        for (i, &value) in dense.iter().enumerate() {
            if value != 0.0 {
                for c in 0..3 {
                    logits[c] += value * self.dense[i * 3 + c] as f64;
                }
            }
        }
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = logits.iter().map(|z| ((z - top) / self.temperature).exp()).collect();
        let total: f64 = exps.iter().sum();
        let (neg, neu, pos) = (round4(exps[0] / total), round4(exps[1] / total), round4(exps[2] / total));
        let chosen = if pos >= neu && pos >= neg { 2 } else if neg >= neu { 0 } else { 1 };
        if !explain {
            return Ok((neg, neu, pos, Vec::new()));
        }
        let mut ranked: Vec<(f64, Source)> = Vec::new();
        for (index, src) in &features {
            if !matches!(src, Source::Other) {
                let row = &self.hashed[*index as usize * 3..*index as usize * 3 + 3];
                let mean = (row[0] as f64 + row[1] as f64 + row[2] as f64) / 3.0;
                let lift = row[chosen] as f64 - mean;
                if lift > 0.0 {
                    ranked.push((-lift, *src));
                }
            }
        }
        // largest lift first; ties by the shown text, as the Python path sorts
        ranked.sort_by(|a, b| {
            a.0.partial_cmp(&b.0).unwrap().then_with(|| feature_text(&toks, a.1).cmp(&feature_text(&toks, b.1)))
        });
        let explanation = ranked.iter().take(EXPLAIN).filter_map(|(_, src)| feature_text(&toks, *src)).collect();
        Ok((neg, neu, pos, explanation))
    }
}
