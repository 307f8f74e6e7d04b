//! The processor's per-batch scoring in one call: VADER, the crypto lexicon, the student and the
//! labels of every text, returned as Arrow-ready column buffers. Mirrors, number for number,
//! `cryptosent.processor.transform.score_tweets` (the pure-Python path, which a test compares
//! with this one on 50,000 generated posts): VADER for every text, then for each post the
//! learned analyzer may score, the crypto lexicon, the 15 dense features
//! (`learned.student.dense_features`), the student's probabilities and `scores_from_probs`.

use std::collections::hash_map::Entry;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString};

use crate::student::{Scratch, Student};
use crate::{Engine, Outcome};

/// Float columns, in this order, each `n` little-endian f64 back to back.
pub const FLOAT_COLUMNS: usize = 9; // compound pos neu neg confidence vader_{compound,pos,neu,neg}
/// Label codes: `CLASSES` order, then `unscored`.
const NEGATIVE: u8 = 0;
const NEUTRAL: u8 = 1;
const POSITIVE: u8 = 2;
const UNSCORED: u8 = 3;

fn values(outcome: Outcome) -> [f64; 4] {
    match outcome {
        Outcome::Empty => [0.0, 0.0, 0.0, 0.0],
        Outcome::Neutral => [0.0, 0.0, 1.0, 0.0],
        Outcome::Scores(values) => values,
    }
}

/// `sentiment.label` as a code.
fn label(compound: f64) -> u8 {
    if compound >= 0.05 {
        POSITIVE
    } else if compound <= -0.05 {
        NEGATIVE
    } else {
        NEUTRAL
    }
}

type CharMap<V> = std::collections::HashMap<char, V, foldhash::fast::RandomState>;
type TextMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A text's index and where it starts and ends in the batch's texts back to back.
type Span = (usize, usize, usize);
/// (the first text's index, a later identical text's index): the later row is a copy.
type Repeat = (usize, usize);
/// `score_columns`' result: the float columns, the labels, VADER's labels, the fallback texts.
type ScoreColumns<'py> = (
    Bound<'py, PyByteArray>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Vec<usize>,
);

/// What lower-casing needs of Python for a batch, asked before the GIL is let go: Python's
/// own `lower()` of each non-ASCII character of the texts (Python maps each character on its
/// own), and of each whole text with a capital sigma (whose form depends on its neighbours).
/// No Unicode table here can differ from Python's.
#[derive(Default)]
struct Lowering {
    chars: CharMap<Box<str>>,
    whole: std::collections::HashMap<usize, String>,
}

impl Lowering {
    fn learn(&mut self, i: usize, string: &Bound<'_, PyString>, text: &str) -> PyResult<()> {
        if text.is_ascii() {
            return Ok(());
        }
        if text.contains('\u{3A3}') {
            let whole = string.call_method0("lower")?;
            self.whole
                .insert(i, whole.cast::<PyString>()?.to_str()?.to_owned());
            return Ok(());
        }
        for c in text.chars().filter(|c| !c.is_ascii()) {
            if let Entry::Vacant(new) = self.chars.entry(c) {
                let one = PyString::new(string.py(), c.encode_utf8(&mut [0; 4]));
                let lower = one.call_method0("lower")?;
                new.insert(lower.cast::<PyString>()?.to_str()?.into());
            }
        }
        Ok(())
    }

    /// Python's `str.lower()` of text `i` into `out` (`learn` saw it).
    fn lower(&self, i: usize, text: &str, out: &mut String) {
        out.clear();
        if let Some(whole) = self.whole.get(&i) {
            out.push_str(whole);
        } else if text.is_ascii() {
            out.push_str(text);
            out.make_ascii_lowercase();
        } else {
            // runs of ASCII lowered in place; only the other characters are looked up
            let mut rest = text;
            while !rest.is_empty() {
                let ascii = crate::ascii_run(rest);
                let from = out.len();
                out.push_str(&rest[..ascii]);
                out[from..].make_ascii_lowercase();
                rest = &rest[ascii..];
                if let Some(c) = rest.chars().next() {
                    match self.chars.get(&c) {
                        Some(lower) => out.push_str(lower),
                        None => out.push(c),
                    }
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
    }
}

/// `learned.student.dense_features` (compound, pos, neu, neg order in `v` and `c`), into `out`.
fn dense_features(v: &[f64; 4], c: &[f64; 4], text: &str, keep: usize, out: &mut Vec<f64>) {
    out.clear();
    out.extend([v[0], v[1], v[3], c[0], c[1], c[3]]);
    for s in [v, c] {
        out.push((s[0] <= -0.05) as u8 as f64);
        out.push((-0.05 < s[0] && s[0] < 0.05) as u8 as f64);
        out.push((s[0] >= 0.05) as u8 as f64);
    }
    let cryptoish = ((v[0] - c[0]).abs() > 1e-9 || text.contains('$')) as u8 as f64;
    out.push(v[0] * (1.0 - cryptoish));
    out.push(c[0] * cryptoish);
    out.push(cryptoish);
    out.truncate(keep);
}

/// `learned.judgement.scores_from_probs`: (compound, pos, neu, neg) and the label code.
fn scores_from_probs(neg: f64, neu: f64, pos: f64) -> ([f64; 4], u8) {
    let polarity = pos - neg;
    let (code, compound) = if pos >= neu && pos >= neg {
        (POSITIVE, if 0.05 > polarity { 0.05 } else { polarity })
    } else if neg >= neu {
        (NEGATIVE, if -0.05 < polarity { -0.05 } else { polarity })
    } else {
        let low = if -0.0499 > polarity {
            -0.0499
        } else {
            polarity
        };
        (NEUTRAL, if 0.0499 < low { 0.0499 } else { low })
    };
    let r = |x: f64| crate::py_round_pub(x, 4);
    ([r(compound), r(pos), r(neu), r(neg)], code)
}

/// The columns being filled, and what scoring a text reuses from the one before.
struct Row<'a> {
    floats: &'a mut [f64],
    labels: &'a mut [u8],
    vader_labels: &'a mut [u8],
    n: usize,
    keep: usize,
    scratch: Scratch,
    dense: Vec<f64>,
    lowered: String,
}

impl Row<'_> {
    /// Text `to`'s row as text `from`'s (the same text with the same flag, scored already).
    fn copy(&mut self, from: usize, to: usize) {
        for k in 0..FLOAT_COLUMNS {
            self.floats[k * self.n + to] = self.floats[k * self.n + from];
        }
        self.labels[to] = self.labels[from];
        self.vader_labels[to] = self.vader_labels[from];
    }

    /// Score text `i` into the columns; false, with nothing written, when an engine would have
    /// to ask Python and `python` is false.
    #[allow(clippy::too_many_arguments)]
    fn score(
        &mut self,
        i: usize,
        text: &str,
        scorable: bool,
        lowering: &Lowering,
        vader: &Engine,
        crypto: &Engine,
        student: &Student,
        python: bool,
    ) -> PyResult<bool> {
        let n = self.n;
        let Some(v) = vader.try_score_text(text, python)? else {
            return Ok(false);
        };
        let c = if scorable {
            match crypto.try_score_text(text, python)? {
                Some(c) => Some(values(c)),
                None => return Ok(false),
            }
        } else {
            None
        };
        let v = values(v);
        for (k, value) in v.iter().enumerate() {
            self.floats[(5 + k) * n + i] = *value;
        }
        self.vader_labels[i] = label(v[0]);
        let (scores, code, confidence) = match c {
            Some(c) => {
                dense_features(&v, &c, text, self.keep, &mut self.dense);
                lowering.lower(i, text, &mut self.lowered);
                let (neg, neu, pos, _) =
                    student.judge(text, &self.lowered, &self.dense, false, &mut self.scratch)?;
                let (scores, code) = scores_from_probs(neg, neu, pos);
                let top = if neg > neu { neg } else { neu };
                (scores, code, if pos > top { pos } else { top })
            }
            None => ([0.0, 0.0, 1.0, 0.0], UNSCORED, 0.0),
        };
        for (k, value) in scores.iter().enumerate() {
            self.floats[k * n + i] = *value;
        }
        self.floats[4 * n + i] = confidence;
        self.labels[i] = code;
        Ok(true)
    }
}

/// Score a batch: `texts` (a list of str) with `scorable` (one byte per text: may the learned
/// analyzer score it). Returns (floats, labels, vader_labels, fallback): `floats` holds the
/// `FLOAT_COLUMNS` columns, the labels one code a text (0 negative, 1 neutral, 2 positive,
/// 3 unscored), `fallback` the indices of texts with no UTF-8 form (lone surrogates), whose
/// rows are left zero for the Python path to fill.
///
/// The texts are copied out first and scored without the GIL, so the processor's other threads
/// (the PostgreSQL and lake writers) run meanwhile; Python is asked again only for a non-ASCII
/// token new to an engine's cache.
#[pyfunction]
pub fn score_columns<'py>(
    py: Python<'py>,
    vader: &Bound<'py, Engine>,
    crypto: &Bound<'py, Engine>,
    student: &Bound<'py, Student>,
    texts: &Bound<'py, PyList>,
    scorable: &[u8],
) -> PyResult<ScoreColumns<'py>> {
    let (vader, crypto, student) = (vader.get(), crypto.get(), student.get());
    let n = texts.len();
    if scorable.len() != n {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "one scorable flag per text",
        ));
    }
    // the texts back to back (`ends[i]` where text i ends), None for a text with no UTF-8 form
    let mut all = String::new();
    let mut ends: Vec<Option<usize>> = Vec::with_capacity(n);
    let mut lowering = Lowering::default();
    for (i, item) in texts.iter().enumerate() {
        let string = item.cast::<PyString>()?;
        match string.to_str() {
            Ok(text) => {
                if scorable[i] != 0 {
                    lowering.learn(i, string, text)?;
                }
                all.push_str(text);
                ends.push(Some(all.len()));
            }
            Err(_) => ends.push(None),
        }
    }
    let keep = student.dense_len();
    let mut floats = vec![0f64; FLOAT_COLUMNS * n];
    let mut labels = vec![UNSCORED; n];
    let mut vader_labels = vec![NEUTRAL; n];
    let mut fallback = Vec::new();
    let mut row = Row {
        floats: &mut floats,
        labels: &mut labels,
        vader_labels: &mut vader_labels,
        n,
        keep,
        scratch: Scratch::new(),
        dense: Vec::new(),
        lowered: String::new(),
    };
    // without the GIL; a text with a non-ASCII token new to an engine's cache waits for the
    // loop after it (Python is asked then, with the GIL back), so no text waits for the GIL
    // (text, where it starts and ends in `all`)
    // a text already in the batch with the same flag (a retweet, a bot farm's copy) is not
    // scored again: its row is copied from the first one's once every first one is scored
    let (deferred, copies) = py.detach(|| -> PyResult<(Vec<Span>, Vec<Repeat>)> {
        let mut deferred = Vec::new();
        let mut copies = Vec::new();
        let mut first: TextMap<(&str, bool), usize> =
            TextMap::with_capacity_and_hasher(n, Default::default());
        let mut start = 0;
        for (i, end) in ends.iter().enumerate() {
            let Some(end) = *end else {
                fallback.push(i);
                continue;
            };
            let (text, flag) = (&all[start..end], scorable[i] != 0);
            let at = start;
            start = end;
            match first.entry((text, flag)) {
                Entry::Occupied(seen) => copies.push((*seen.get(), i)),
                Entry::Vacant(new) => {
                    new.insert(i);
                    if !row.score(i, text, flag, &lowering, vader, crypto, student, false)? {
                        deferred.push((i, at, end));
                    }
                }
            }
        }
        Ok((deferred, copies))
    })?;
    for (i, start, end) in deferred {
        let text = &all[start..end];
        row.score(
            i,
            text,
            scorable[i] != 0,
            &lowering,
            vader,
            crypto,
            student,
            true,
        )?;
    }
    for (from, to) in copies {
        row.copy(from, to);
    }
    // written straight into the bytearray: no byte-by-byte collect, no second copy
    let bytes = PyByteArray::new_with(py, floats.len() * 8, |bytes| {
        for (chunk, x) in bytes.chunks_exact_mut(8).zip(&floats) {
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        Ok(())
    })?;
    Ok((
        bytes,
        PyBytes::new(py, &labels),
        PyBytes::new(py, &vader_labels),
        fallback,
    ))
}
