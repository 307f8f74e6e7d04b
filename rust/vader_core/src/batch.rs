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

/// Python's `str.lower()` of `text` (the `string` it came from) into `out`. Python maps each
/// character on its own, except the capital sigma, whose form depends on its neighbours; so
/// ASCII is lowered here and any other character by Python's own `lower()` of that character
/// alone, asked once a batch (`lowered` keeps the answers), and a text with a capital sigma is
/// lowered by Python whole. No Unicode table here can differ from Python's.
fn python_lower(
    string: &Bound<'_, PyString>,
    text: &str,
    lowered: &mut CharMap<Box<str>>,
    out: &mut String,
) -> PyResult<()> {
    out.clear();
    if text.is_ascii() {
        out.push_str(text);
        out.make_ascii_lowercase();
        return Ok(());
    }
    if text.contains('\u{3A3}') {
        let whole = string.call_method0("lower")?;
        out.push_str(whole.cast::<PyString>()?.to_str()?);
        return Ok(());
    }
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        match lowered.entry(c) {
            Entry::Occupied(known) => out.push_str(known.get()),
            Entry::Vacant(new) => {
                let one = PyString::new(string.py(), c.encode_utf8(&mut [0; 4]));
                let lower = one.call_method0("lower")?;
                out.push_str(new.insert(lower.cast::<PyString>()?.to_str()?.into()));
            }
        }
    }
    Ok(())
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

/// Score a batch: `texts` (a list of str) with `scorable` (one byte per text: may the learned
/// analyzer score it). Returns (floats, labels, vader_labels, fallback): `floats` holds the
/// `FLOAT_COLUMNS` columns, the labels one code a text (0 negative, 1 neutral, 2 positive,
/// 3 unscored), `fallback` the indices of texts with no UTF-8 form (lone surrogates), whose
/// rows are left zero for the Python path to fill.
#[pyfunction]
pub fn score_columns<'py>(
    py: Python<'py>,
    vader: &Bound<'py, Engine>,
    crypto: &Bound<'py, Engine>,
    student: &Bound<'py, Student>,
    texts: &Bound<'py, PyList>,
    scorable: &[u8],
) -> PyResult<(
    Bound<'py, PyByteArray>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Vec<usize>,
)> {
    let (vader, crypto, student) = (vader.get(), crypto.get(), student.get());
    let n = texts.len();
    if scorable.len() != n {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "one scorable flag per text",
        ));
    }
    let keep = student.dense_len();
    let mut floats = vec![0f64; FLOAT_COLUMNS * n];
    let mut labels = vec![UNSCORED; n];
    let mut vader_labels = vec![NEUTRAL; n];
    let mut fallback = Vec::new();
    let mut scratch = Scratch::new();
    // reused for every text: no allocation per text
    let (mut dense, mut lowered) = (Vec::new(), String::new());
    let mut lowered_chars = CharMap::default();
    for (i, item) in texts.iter().enumerate() {
        let string = item.cast::<PyString>()?;
        let text = match string.to_str() {
            Ok(text) => text,
            Err(_) => {
                fallback.push(i);
                continue;
            }
        };
        let v = values(vader.score_text(py, text)?);
        for k in 0..4 {
            floats[(5 + k) * n + i] = v[k];
        }
        vader_labels[i] = label(v[0]);
        let (scores, code, confidence) = if scorable[i] != 0 {
            let c = values(crypto.score_text(py, text)?);
            dense_features(&v, &c, text, keep, &mut dense);
            python_lower(string, text, &mut lowered_chars, &mut lowered)?;
            let (neg, neu, pos, _) = student.judge(text, &lowered, &dense, false, &mut scratch)?;
            let (scores, code) = scores_from_probs(neg, neu, pos);
            let top = if neg > neu { neg } else { neu };
            (scores, code, if pos > top { pos } else { top })
        } else {
            ([0.0, 0.0, 1.0, 0.0], UNSCORED, 0.0)
        };
        for k in 0..4 {
            floats[k * n + i] = scores[k];
        }
        floats[4 * n + i] = confidence;
        labels[i] = code;
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
