//! The campaign detector's signatures (`cryptosent.analysis.campaigns.sign`), text by text:
//! normalise, shingle, one-permutation MinHash, LSH bands, text key, word and link counts.
//! Mirrors, bit for bit, the numpy reference `_sign_numpy` (a test compares them on 50,000
//! generated posts and the hard cases). Beside it, the detector's per-batch steps
//! (`CampaignDetector._observe`), each the twin of a numpy or dict reference in Python: the
//! linking of a batch's posts (`link_batch`, over the band buckets kept from earlier batches),
//! the clusters' books (`cluster_books`, over the posts per (cluster, account) `PairCounts`),
//! the tables by post and account id (`StringTable`) and each text's hash and retweet prefix
//! (`text_facts`); and the older pieces `similar_rows` and `band_groups`.
//!
//! Python stays the source of truth for Unicode: `str.lower()` of each code point, and `\w`, `\d`,
//! `\s` of Python's `re` and the detector's word table, come as tables computed by Python from
//! the very method, patterns and table the reference uses; a text with a capital sigma (final
//! sigma depends on the neighbours) or a code point that lowers to several is lower-cased by
//! `str.lower()` itself. A text with a lone surrogate has no place in the buffers: its index is
//! handed back for the numpy path.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::string::PyStringData;
use pyo3::types::{PyByteArray, PyList, PyString};

const SHINGLE: usize = 5;
const BINS: usize = 32;
const BANDS: usize = 8;
const ROWS: usize = 4;
const BIN_SHIFT: u32 = 64 - 5; // log2(BINS) top bits pick the bin
const EMPTY: u64 = u64::MAX;
const VALUE_MASK: u64 = (1 << BIN_SHIFT) - 1;
const ROLL: u64 = 0x100000001B3;
/// ROLL to the power SHINGLE - 1: the weight of a shingle's first code point in its hash.
const ROLL_OUT: u64 = {
    let mut power = 1u64;
    let mut k = 1;
    while k < SHINGLE {
        power = power.wrapping_mul(ROLL);
        k += 1;
    }
    power
};
const ROW_MULT: [u64; ROWS] = [
    0x9E3779B97F4A7C15,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0xD6E8FEB86659FD93,
];
const CODEPOINTS: usize = 0x110000;
/// In the lower-case table: this code point is lower-cased by Python (the capital sigma, whose
/// form depends on its neighbours, and those that lower to several code points).
const ASK_PYTHON: u32 = u32::MAX;

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

// Class bits of a code point (the table handed over by Python).
/// `\w` of Python's `re`
const WORD: u8 = 1;
/// `\d`
const DIGIT: u8 = 1 << 1;
/// `\s`
const SPACE: u8 = 1 << 2;
/// kept in normalised text (`campaigns._WORD`); otherwise it becomes a space
const KEEP: u8 = 1 << 3;

// Code points the normalised text is made of.
const NL: u32 = b'\n' as u32;
const SP: u32 = b' ' as u32;
const LINK: u32 = b'~' as u32;
const MENTION: u32 = b'@' as u32;
const CASHTAG: u32 = b'$' as u32;
const HASHTAG: u32 = b'#' as u32;
const ZERO: u32 = b'0' as u32;

/// splitmix64's finaliser (`campaigns._mix`).
#[inline]
fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    let h = (h ^ (h >> 27)).wrapping_mul(0x94D049BB133111EB);
    h ^ (h >> 31)
}

/// A line break inside a text is a space (the reference's join does the same; a carriage
/// return, which it may keep, becomes a space by the word table all the same).
#[inline]
fn line_break_to_space(c: u32) -> u32 {
    if c == NL || c == 0x0D {
        SP
    } else {
        c
    }
}

/// One text's signature, as `_sign_numpy` computes its row.
struct Row {
    minhash: [u64; BINS],
    bands: [u64; BANDS],
    text_key: u64,
    words: i64,
    links: i64,
}

/// A substitution pass's output, written only once a match is found.
struct Edit<'o> {
    out: &'o mut Vec<u32>,
    /// `s[..done]` is in `out` (as edited) once `found`
    done: usize,
    found: bool,
}

impl<'o> Edit<'o> {
    fn new(out: &'o mut Vec<u32>) -> Self {
        Self {
            out,
            done: 0,
            found: false,
        }
    }

    /// `s[start..end]` becomes `with`.
    fn replace(&mut self, s: &[u32], start: usize, end: usize, with: &[u32]) {
        if !self.found {
            self.out.clear();
            self.found = true;
        }
        self.out.extend_from_slice(&s[self.done..start]);
        self.out.extend_from_slice(with);
        self.done = end;
    }

    /// Whether anything was replaced; if so `out` holds the whole edited text.
    fn finish(self, s: &[u32]) -> bool {
        if self.found {
            self.out.extend_from_slice(&s[self.done..]);
        }
        self.found
    }
}

/// The last steps of normalising, character by character: apostrophes join, characters off
/// the word table become spaces, a space after a space (or at the start) and the third of three
/// equal characters are dropped (judged on the characters before any is dropped), and a space
/// at the end.
struct Collapse<'o> {
    out: &'o mut Vec<u32>,
    prev: u32,
    prev2: u32,
}

impl<'o> Collapse<'o> {
    fn new(out: &'o mut Vec<u32>) -> Self {
        out.clear();
        Self {
            out,
            prev: NL,
            prev2: NL,
        }
    }

    #[inline]
    fn push(&mut self, signer: &CampaignSigner, c: u32) {
        if c == 0x27 || c == 0x2019 {
            return;
        }
        let c = if signer.has(c, KEEP) { c } else { SP };
        let (prev, prev2) = (self.prev, self.prev2);
        if !(c == SP && (prev == SP || prev == NL)) && !(c == prev && c == prev2) {
            self.out.push(c);
        }
        self.prev2 = prev;
        self.prev = c;
    }

    fn finish(self) {
        if self.out.last() == Some(&SP) {
            self.out.pop();
        }
    }
}

/// Scratch buffers reused from text to text.
#[derive(Default)]
struct Scratch {
    a: Vec<u32>,
    b: Vec<u32>,
}

#[pyclass(frozen, module = "cryptosent_vader_core")]
pub struct CampaignSigner {
    /// class bits per code point (`WORD`, `DIGIT`, `SPACE`, `KEEP`)
    classes: Vec<u8>,
    /// lower-case form per code point, or `ASK_PYTHON`
    lower: Vec<u32>,
    /// no code point below 256 asks Python: a one-byte-per-character string is lowered by the
    /// table alone
    latin1_by_table: bool,
}

impl CampaignSigner {
    #[inline]
    fn has(&self, c: u32, bits: u8) -> bool {
        self.classes[c as usize] & bits != 0
    }

    /// `_URL_RE.sub(" ~ ", s)`: `https?://\S+|www\.\S+`. Writes `out` and returns true only
    /// when something is replaced (most texts go through a pass untouched).
    fn links(&self, s: &[u32], out: &mut Vec<u32>) -> bool {
        let mut edit = Edit::new(out);
        let mut i = 0;
        while i < s.len() {
            match self.link_end(s, i) {
                Some(end) => {
                    edit.replace(s, i, end, &[SP, LINK, SP]);
                    i = end;
                }
                None => i += 1,
            }
        }
        edit.finish(s)
    }

    /// The end of a link that starts at `i`, if one does.
    #[inline]
    fn link_end(&self, s: &[u32], i: usize) -> Option<usize> {
        let at = |k: usize, want: &[u8]| {
            s.len() >= k + want.len() && want.iter().zip(&s[k..]).all(|(&w, &c)| c == w as u32)
        };
        let body = match s[i] {
            // backing off the greedy `s?` cannot help: "://" never starts with an "s"
            0x68 if at(i, b"http") => {
                let k = if at(i + 4, b"s") { i + 5 } else { i + 4 };
                if at(k, b"://") {
                    k + 3
                } else {
                    return None;
                }
            }
            0x77 if at(i, b"www.") => i + 4,
            _ => return None,
        };
        let end = s[body..]
            .iter()
            .position(|&c| self.has(c, SPACE))
            .map_or(s.len(), |p| body + p);
        (end > body).then_some(end)
    }

    /// After the links: `_MENTION_RE`, `_CASHTAG_RE`, `_HASHTAG_RE` and `_NUMBER_RE`
    /// substituted, and the characters handed to `out` one by one. One left-to-right pass is the
    /// reference's four: each match starts at a character the others never consume (a sign
    /// that is not `\w`, or a digit outside every tag) and the replacements hold no sign or digit
    /// that a later pattern could match, so the same spans are replaced.
    fn tags_and_numbers(&self, s: &[u32], out: &mut Collapse<'_>) {
        let n = s.len();
        let word_end = |from: usize| {
            s[from..]
                .iter()
                .position(|&c| !self.has(c, WORD))
                .map_or(n, |p| from + p)
        };
        let mut i = 0;
        while i < n {
            let c = s[i];
            let next = s.get(i + 1).copied();
            let tag = match (c, next) {
                (MENTION | HASHTAG, Some(x)) => self.has(x, WORD),
                // [^\W\d_]: a word character that is neither a digit nor the underscore
                (CASHTAG, Some(x)) => self.has(x, WORD) && !self.has(x, DIGIT) && x != 0x5F,
                _ => false,
            };
            if tag {
                for x in [SP, c, SP] {
                    out.push(self, x);
                }
                i = word_end(i + 2);
            } else if self.has(c, DIGIT) {
                out.push(self, ZERO);
                i += 1;
                while i < n && (self.has(s[i], DIGIT) || matches!(s[i], 0x2E | 0x2C | 0x3A)) {
                    i += 1;
                }
            } else {
                out.push(self, c);
                i += 1;
            }
        }
    }

    /// `_codepoints` for one lower-cased text in `scratch.a` (line breaks already spaces):
    /// placeholders, apostrophes, word table, spaces and triple characters collapsed. The
    /// result is left in `scratch.a`.
    fn normalise(&self, scratch: &mut Scratch) {
        let Scratch { a, b } = scratch;
        if self.links(a, b) {
            std::mem::swap(a, b);
        }
        let mut out = Collapse::new(b);
        self.tags_and_numbers(a, &mut out);
        out.finish();
        std::mem::swap(a, b);
    }

    /// The signature row of normalised code points.
    fn row(c: &[u32]) -> Row {
        let mut minhash = [EMPTY; BINS];
        // each shingle's polynomial hash, rolled from the one before (the same value, in
        // wrapping arithmetic, as folding its code points anew)
        if c.len() >= SHINGLE {
            let mut take = |h: u64| {
                let h = mix(h);
                let bin = (h >> BIN_SHIFT) as usize;
                minhash[bin] = minhash[bin].min(h & VALUE_MASK);
            };
            let mut h = c[..SHINGLE]
                .iter()
                .fold(0u64, |h, &x| h.wrapping_mul(ROLL).wrapping_add(x as u64));
            take(h);
            for (&out, &x) in c.iter().zip(&c[SHINGLE..]) {
                h = h
                    .wrapping_sub((out as u64).wrapping_mul(ROLL_OUT))
                    .wrapping_mul(ROLL)
                    .wrapping_add(x as u64);
                take(h);
            }
        }
        let mut bands = [0u64; BANDS];
        let mut key = 0u64;
        for (band, value) in bands.iter_mut().enumerate() {
            let rows = &minhash[band * ROWS..(band + 1) * ROWS];
            // a band of empty bins says nothing: short texts would all share it
            if rows.iter().any(|&v| v != EMPTY) {
                let sum = rows
                    .iter()
                    .zip(ROW_MULT)
                    .fold(0u64, |s, (&v, m)| s.wrapping_add(v.wrapping_mul(m)));
                let salt = (band as u64 + 1).wrapping_mul(ROW_MULT[0]);
                *value = mix(sum.wrapping_add(salt));
            }
            key ^= value.wrapping_mul(ROW_MULT[0]);
        }
        let is_content = |x: u32| !matches!(x, SP | ZERO | LINK | MENTION | CASHTAG | HASHTAG);
        let mut words = 0;
        let mut inside = false;
        for &x in c {
            let content = is_content(x);
            words += (content && !inside) as i64;
            inside = content;
        }
        Row {
            minhash,
            bands,
            text_key: mix(key),
            words,
            links: c.iter().filter(|&&x| x == LINK).count() as i64,
        }
    }

    /// The lower-cased code points of a text into `out`, line breaks as spaces; false for a
    /// lone surrogate.
    fn lowered(&self, text: &Bound<'_, PyString>, out: &mut Vec<u32>) -> PyResult<bool> {
        out.clear();
        // SAFETY: the string is alive and immutable while `data` is read
        let done = match unsafe { text.data() }? {
            PyStringData::Ucs1(s) if self.latin1_by_table => {
                // one pass of known length, and no surrogate below 256
                let table = &self.lower[..256];
                out.extend(s.iter().map(|&c| line_break_to_space(table[c as usize])));
                return Ok(true);
            }
            PyStringData::Ucs1(s) => self.lower_each(s.iter().map(|&c| c as u32), out),
            PyStringData::Ucs2(s) => self.lower_each(s.iter().map(|&c| c as u32), out),
            PyStringData::Ucs4(s) => self.lower_each(s.iter().copied(), out),
        };
        if done {
            return Ok(!out.iter().any(|c| (0xD800..0xE000).contains(c)));
        }
        // Python's own str.lower(): a capital sigma, or a code point that lowers to several
        out.clear();
        let lower = text.call_method0(intern!(text.py(), "lower"))?;
        let lower = lower.cast::<PyString>()?;
        // SAFETY: as above
        match unsafe { lower.data() }? {
            PyStringData::Ucs1(s) => out.extend(s.iter().map(|&c| line_break_to_space(c as u32))),
            PyStringData::Ucs2(s) => out.extend(s.iter().map(|&c| line_break_to_space(c as u32))),
            PyStringData::Ucs4(s) => out.extend(s.iter().map(|&c| line_break_to_space(c))),
        }
        let surrogate = |c: &u32| (0xD800..0xE000).contains(c);
        Ok(!out.iter().any(surrogate))
    }

    /// `str.lower()` code point by code point, line breaks as spaces, into `out`; false (with
    /// `out` unfinished) at a code point that needs Python.
    #[inline]
    fn lower_each(&self, text: impl Iterator<Item = u32>, out: &mut Vec<u32>) -> bool {
        for c in text {
            let low = self.lower[c as usize];
            if low == ASK_PYTHON {
                return false;
            }
            out.push(line_break_to_space(low));
        }
        true
    }
}

#[pymethods]
impl CampaignSigner {
    /// `classes`: one byte per code point (bits 1 `\w`, 2 `\d`, 4 `\s`, 8 kept in normalised
    /// text); `lower`: per code point its `str.lower()` when that is one code point that does
    /// not depend on its neighbours, else `0xFFFFFFFF` (native-endian u32). Both as
    /// `cryptosent.analysis.campaigns` computes them.
    #[new]
    fn new(classes: &[u8], lower: &[u8]) -> PyResult<Self> {
        if classes.len() != CODEPOINTS || lower.len() != 4 * CODEPOINTS {
            return Err(PyValueError::new_err(
                "one class byte and one lower-case u32 per code point",
            ));
        }
        let lower = lower
            .chunks_exact(4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect::<Vec<u32>>();
        if lower
            .iter()
            .any(|&c| c != ASK_PYTHON && c as usize >= CODEPOINTS)
        {
            return Err(PyValueError::new_err("a lower-case form beyond Unicode"));
        }
        Ok(Self {
            classes: classes.to_vec(),
            latin1_by_table: !lower[..256].contains(&ASK_PYTHON),
            lower,
        })
    }

    /// Sign a batch: (minhash, bands, text_key, words, links, fallback). The first five are
    /// native-endian buffers of `sign`'s arrays (u64 `n * 32`, u64 `n * 8`, u64 `n`, i64 `n`,
    /// i64 `n`); `fallback` the indices of texts with a lone surrogate, whose rows are left
    /// zero for the numpy path to fill.
    #[allow(clippy::type_complexity)]
    fn sign<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyList>,
    ) -> PyResult<(
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Vec<usize>,
    )> {
        let n = texts.len();
        let mut minhash: Vec<u64> = Vec::with_capacity(n * BINS);
        let mut bands: Vec<u64> = Vec::with_capacity(n * BANDS);
        let mut text_key: Vec<u64> = Vec::with_capacity(n);
        let mut words: Vec<i64> = Vec::with_capacity(n);
        let mut links: Vec<i64> = Vec::with_capacity(n);
        let mut fallback = Vec::new();
        let mut scratch = Scratch::default();
        // the lowered code points of every text back to back (`ends[i]` where text i's end),
        // None for a text with a lone surrogate; then signed without the GIL, so the
        // processor's writer threads run meanwhile
        let mut all: Vec<u32> = Vec::new();
        let mut ends: Vec<Option<usize>> = Vec::with_capacity(n);
        for item in texts.iter() {
            let text = item.cast::<PyString>()?;
            if self.lowered(text, &mut scratch.a)? {
                all.extend_from_slice(&scratch.a);
                ends.push(Some(all.len()));
            } else {
                ends.push(None);
            }
        }
        py.detach(|| {
            let mut start = 0;
            for (i, end) in ends.iter().enumerate() {
                let row = if let Some(end) = *end {
                    scratch.a.clear();
                    scratch.a.extend_from_slice(&all[start..end]);
                    start = end;
                    self.normalise(&mut scratch);
                    Self::row(&scratch.a)
                } else {
                    fallback.push(i);
                    Row {
                        minhash: [0; BINS],
                        bands: [0; BANDS],
                        text_key: 0,
                        words: 0,
                        links: 0,
                    }
                };
                minhash.extend_from_slice(&row.minhash);
                bands.extend_from_slice(&row.bands);
                text_key.push(row.text_key);
                words.push(row.words);
                links.push(row.links);
            }
        });
        Ok((
            ne_bytes(py, &minhash)?,
            ne_bytes(py, &bands)?,
            ne_bytes(py, &text_key)?,
            ne_bytes(py, &words)?,
            ne_bytes(py, &links)?,
            fallback,
        ))
    }
}

/// A C-contiguous buffer's items (the detector's numpy arrays), or a clear error.
fn items<'a, T: pyo3::buffer::Element>(buffer: &'a PyBuffer<T>, what: &str) -> PyResult<&'a [T]> {
    let items = buffer
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err(format!("{what}: a C-contiguous array is needed")))?;
    // SAFETY: the buffer stays exported while it is borrowed, and no Python code runs (the GIL
    // is held throughout the call), so nothing writes to the array while it is read
    Ok(unsafe { items.as_ref() })
}

/// Row `r` of a matrix of signatures, `BINS` values a row.
fn signature_row(m: &[u32], r: i64) -> PyResult<&[u32]> {
    usize::try_from(r)
        .ok()
        .filter(|&r| (r + 1) * BINS <= m.len())
        .map(|r| &m[r * BINS..(r + 1) * BINS])
        .ok_or_else(|| PyValueError::new_err("a row index out of range"))
}

/// `CampaignDetector._similar`: for each pair `k`, whether the estimated Jaccard similarity of
/// row `a_rows[k]` of `a` and row `b_rows[k]` of `b` (rows of 32 signature values, all-ones an
/// empty bin) reaches `threshold`: equal bins among those not empty in both. One byte a pair.
#[pyfunction]
pub fn similar_rows<'py>(
    py: Python<'py>,
    a: PyBuffer<u32>,
    a_rows: PyBuffer<i64>,
    b: PyBuffer<u32>,
    b_rows: PyBuffer<i64>,
    threshold: f64,
) -> PyResult<Bound<'py, PyByteArray>> {
    let (a, b) = (items(&a, "a")?, items(&b, "b")?);
    let (a_rows, b_rows) = (items(&a_rows, "a_rows")?, items(&b_rows, "b_rows")?);
    if a_rows.len() != b_rows.len() {
        return Err(PyValueError::new_err("one row of a and one of b a pair"));
    }
    let mut close = Vec::with_capacity(a_rows.len());
    for (&ra, &rb) in a_rows.iter().zip(b_rows) {
        let (x, y) = (signature_row(a, ra)?, signature_row(b, rb)?);
        close.push(similar(x, y, threshold) as u8);
    }
    Ok(PyByteArray::new(py, &close))
}

/// Whether two signature rows are similar enough: equal bins among those not empty in both
/// reach `threshold` of the bins filled in either, compared in floating point as the reference
/// does (`(equal - both) >= threshold * max(filled, 1)`).
#[inline]
fn similar(x: &[u32], y: &[u32], threshold: f64) -> bool {
    let (mut equal, mut both_empty) = (0u32, 0u32);
    for (&x, &y) in x.iter().zip(y) {
        equal += (x == y) as u32;
        both_empty += (x == y && x == u32::MAX) as u32;
    }
    let filled = (BINS as u32 - both_empty).max(1);
    (equal - both_empty) as f64 >= threshold * filled as f64
}

/// The batch's LSH band keys grouped by value, in the order they first occur: (distinct keys
/// u64, each position's group i64, each group's first and last position i64), native-endian.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn band_groups<'py>(
    py: Python<'py>,
    keys: PyBuffer<u64>,
) -> PyResult<(
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
)> {
    let keys = items(&keys, "keys")?;
    let mut group_of: Map<u64, i64> = Map::default();
    group_of.reserve(keys.len());
    let (mut distinct, mut first, mut last) = (Vec::new(), Vec::new(), Vec::new());
    let mut group = Vec::with_capacity(keys.len());
    for (position, &key) in keys.iter().enumerate() {
        let next = distinct.len() as i64;
        let g = *group_of.entry(key).or_insert(next);
        if g == next {
            distinct.push(key);
            first.push(position as i64);
            last.push(position as i64);
        } else {
            last[g as usize] = position as i64;
        }
        group.push(g);
    }
    Ok((
        ne_bytes(py, &distinct)?,
        ne_bytes(py, &group)?,
        ne_bytes(py, &first)?,
        ne_bytes(py, &last)?,
    ))
}

/// Native-endian bytes of 64-bit values, for `np.frombuffer`.
fn ne_bytes<'py, T: NeBytes>(py: Python<'py>, values: &[T]) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, values.len() * 8, |bytes| {
        for (chunk, x) in bytes.chunks_exact_mut(8).zip(values) {
            chunk.copy_from_slice(&x.ne_bytes());
        }
        Ok(())
    })
}

/// A 64-bit value as it lies in memory.
trait NeBytes: Copy {
    fn ne_bytes(self) -> [u8; 8];
}

impl NeBytes for u64 {
    fn ne_bytes(self) -> [u8; 8] {
        self.to_ne_bytes()
    }
}

impl NeBytes for i64 {
    fn ne_bytes(self) -> [u8; 8] {
        self.to_ne_bytes()
    }
}

/// `CampaignDetector`'s LSH buckets: band key -> arrival number (seq) of the last kept post that
/// had it. Key 0 (a band of empty bins) is never kept.
#[pyclass(module = "cryptosent_vader_core")]
#[derive(Default)]
pub struct BandBuckets {
    last: Map<u64, i64>,
}

#[pymethods]
impl BandBuckets {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// The seq kept for each key, -1 for none (native-endian i64 a key).
    fn last_posts<'py>(
        &self,
        py: Python<'py>,
        keys: PyBuffer<u64>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let found: Vec<i64> = items(&keys, "keys")?
            .iter()
            .map(|key| self.last.get(key).copied().unwrap_or(-1))
            .collect();
        ne_bytes(py, &found)
    }

    /// Keep `seqs[k]` for `keys[k]` (the later of repeated keys wins).
    fn update(&mut self, keys: PyBuffer<u64>, seqs: PyBuffer<i64>) -> PyResult<()> {
        let (keys, seqs) = (items(&keys, "keys")?, items(&seqs, "seqs")?);
        if keys.len() != seqs.len() {
            return Err(PyValueError::new_err("one seq a key"));
        }
        self.last.reserve(keys.len());
        for (&key, &seq) in keys.iter().zip(seqs) {
            if key != 0 {
                self.last.insert(key, seq);
            }
        }
        Ok(())
    }

    /// Let go of the keys whose last post came before `seq`.
    fn forget_before(&mut self, seq: i64) {
        self.last.retain(|_, &mut s| s >= seq);
    }

    fn __len__(&self) -> usize {
        self.last.len()
    }
}

/// Per band key of a batch, while its posts are linked: the first eligible post that has it,
/// the seq of the last kept post from earlier batches that had it (-1: none), and the seq of
/// the batch's last post that has it.
struct KeySeen {
    lead: usize,
    hit: i64,
    last: i64,
}

/// The root of `x`'s set, halving the path on the way.
fn root(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// `CampaignDetector._link_numpy` in one pass: cluster the batch's eligible posts (`rows` of the
/// batch, whose first post has seq `first_seq`). A post is linked, band by band and once per
/// other post, to the last kept post of an earlier batch that had the band (when that post is
/// still kept, in a cluster and within `window` seconds) and to the batch's first post with the
/// band (within `window`), when their signatures are `similar`. Each post's label is the lowest
/// of its seq and the labels of the earlier posts it links to, then the lowest over its
/// connected component of batch links. The buckets then keep each band's last post of the
/// batch. Returns (labels, linked posts, their earlier clusters' labels), native-endian i64:
/// the labels one per eligible post, the last two one per link to an earlier cluster.
#[pyfunction]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn link_batch<'py>(
    py: Python<'py>,
    buckets: &Bound<'py, BandBuckets>,
    rows: PyBuffer<i64>,
    first_seq: i64,
    ts: PyBuffer<f64>,
    bands: PyBuffer<u64>,
    minhash: PyBuffer<u64>,
    ring_cluster: PyBuffer<i64>,
    ring_ts: PyBuffer<f64>,
    ring_signature: PyBuffer<u32>,
    oldest: i64,
    window: f64,
    threshold: f64,
) -> PyResult<(
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
)> {
    let (ts, bands) = (items(&ts, "ts")?, items(&bands, "bands")?);
    let minhash = items(&minhash, "minhash")?;
    let n = ts.len();
    if bands.len() != n * BANDS || minhash.len() != n * BINS {
        return Err(PyValueError::new_err(
            "one time, BANDS keys and BINS values a post",
        ));
    }
    let cluster = items(&ring_cluster, "ring_cluster")?;
    let (ring_ts, ring_signature) = (
        items(&ring_ts, "ring_ts")?,
        items(&ring_signature, "ring_signature")?,
    );
    let cap = cluster.len();
    if cap == 0 || ring_ts.len() != cap || ring_signature.len() != cap * BINS {
        return Err(PyValueError::new_err(
            "ring buffers of one length, BINS values a slot",
        ));
    }
    let rows = items(&rows, "rows")?
        .iter()
        .map(|&r| {
            usize::try_from(r)
                .ok()
                .filter(|&r| r < n)
                .ok_or_else(|| PyValueError::new_err("a row index out of range"))
        })
        .collect::<PyResult<Vec<usize>>>()?;
    let m = rows.len();
    let seqs: Vec<i64> = rows.iter().map(|&r| first_seq + r as i64).collect();
    let post_ts: Vec<f64> = rows.iter().map(|&r| ts[r]).collect();
    // the low 32 bits of each value suffice to compare (as the ring keeps them)
    let mut signature: Vec<u32> = Vec::with_capacity(m * BINS);
    for &r in &rows {
        signature.extend(minhash[r * BINS..(r + 1) * BINS].iter().map(|&v| v as u32));
    }
    let row_of = |i: usize| &signature[i * BINS..(i + 1) * BINS];
    let slot_row = |s: usize| &ring_signature[s * BINS..(s + 1) * BINS];

    let mut buckets = buckets.borrow_mut();
    let mut seen: Map<u64, KeySeen> = Map::default();
    seen.reserve(m * 2); // templates share most of their bands
    let mut labels = seqs.clone();
    let (mut old_post, mut old_label) = (Vec::new(), Vec::new());
    let mut links: Vec<(usize, usize)> = Vec::new();
    let before_batch = seqs.first().copied().unwrap_or(first_seq);
    for (i, &r) in rows.iter().enumerate() {
        // the earlier posts and batch leads already compared with this post
        let (mut hits, mut leads) = ([0i64; BANDS], [0usize; BANDS]);
        let (mut n_hits, mut n_leads) = (0, 0);
        for &key in &bands[r * BANDS..(r + 1) * BANDS] {
            if key == 0 {
                continue; // a band of empty bins says nothing
            }
            let entry = seen.entry(key).or_insert_with(|| KeySeen {
                lead: i,
                hit: buckets.last.get(&key).copied().unwrap_or(-1),
                last: seqs[i],
            });
            entry.last = seqs[i];
            let (lead, hit) = (entry.lead, entry.hit);
            if hit >= oldest && hit < before_batch && !hits[..n_hits].contains(&hit) {
                let slot = (hit as usize) % cap;
                let label = cluster[slot];
                if label >= 0 && (ring_ts[slot] - post_ts[i]).abs() <= window {
                    hits[n_hits] = hit;
                    n_hits += 1;
                    if similar(row_of(i), slot_row(slot), threshold) {
                        old_post.push(i as i64);
                        old_label.push(label);
                        labels[i] = labels[i].min(label);
                    }
                }
            }
            if lead != i && !leads[..n_leads].contains(&lead) {
                leads[n_leads] = lead;
                n_leads += 1;
                if similar(row_of(i), row_of(lead), threshold)
                    && (post_ts[i] - post_ts[lead]).abs() <= window
                {
                    links.push((i, lead));
                }
            }
        }
    }
    buckets.last.reserve(seen.len());
    for (&key, entry) in &seen {
        buckets.last.insert(key, entry.last);
    }

    // components of the batch's links: each takes its lowest label
    let mut parent: Vec<usize> = (0..m).collect();
    for (u, v) in links {
        let (a, b) = (root(&mut parent, u), root(&mut parent, v));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut lowest = vec![i64::MAX; m];
    for (i, &label) in labels.iter().enumerate() {
        let r = root(&mut parent, i);
        lowest[r] = lowest[r].min(label);
    }
    for (i, label) in labels.iter_mut().enumerate() {
        *label = lowest[root(&mut parent, i)];
    }
    Ok((
        ne_bytes(py, &labels)?,
        ne_bytes(py, &old_post)?,
        ne_bytes(py, &old_label)?,
    ))
}

/// `CampaignDetector`'s posts kept per (cluster, account): key `label << 24 | account` ->
/// posts. A pair's first post adds an account to its cluster, its last one to leave takes it
/// away, so the batch steps answer, post by post, whether they began or ended a pair.
#[pyclass(module = "cryptosent_vader_core")]
#[derive(Default)]
pub struct PairCounts {
    posts: Map<i64, i64>,
}

impl PairCounts {
    /// Count one post for a key; whether it began its pair.
    fn enter_one(&mut self, key: i64) -> bool {
        let posts = self.posts.entry(key).or_insert(0);
        *posts += 1;
        *posts == 1
    }
}

#[pymethods]
impl PairCounts {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Count one post for each key, in order; one byte a key: 1 where the post began its pair
    /// (no post of the pair was kept before it).
    fn enter<'py>(
        &mut self,
        py: Python<'py>,
        keys: PyBuffer<i64>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let keys = items(&keys, "keys")?;
        self.posts.reserve(keys.len());
        let began: Vec<u8> = keys.iter().map(|&key| self.enter_one(key) as u8).collect();
        Ok(PyByteArray::new(py, &began))
    }

    /// Let one post go for each key, in order; one byte a key: 1 where the post ended its pair
    /// (the pair is then forgotten). A key with no post kept is an error, and nothing changes.
    fn leave<'py>(
        &mut self,
        py: Python<'py>,
        keys: PyBuffer<i64>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let keys = items(&keys, "keys")?;
        let mut leaving: Map<i64, i64> = Map::default();
        for &key in keys {
            let count = leaving.entry(key).or_insert(0);
            *count += 1;
            if self.posts.get(&key).copied().unwrap_or(0) < *count {
                return Err(PyKeyError::new_err(key));
            }
        }
        let ended: Vec<u8> = keys
            .iter()
            .map(|&key| {
                let posts = self.posts.get_mut(&key).expect("checked above");
                *posts -= 1;
                let ended = *posts == 0;
                if ended {
                    self.posts.remove(&key);
                }
                ended as u8
            })
            .collect();
        Ok(PyByteArray::new(py, &ended))
    }

    /// Forget a pair; its posts (0 for none).
    fn pop(&mut self, key: i64) -> i64 {
        self.posts.remove(&key).unwrap_or(0)
    }

    /// Add posts to a pair; the posts it had before (0 for none).
    fn add(&mut self, key: i64, posts: i64) -> i64 {
        let kept = self.posts.entry(key).or_insert(0);
        let before = *kept;
        *kept += posts;
        before
    }

    /// Accounts renumbered: `renumber[account]` is its new number, or negative for an account
    /// whose pairs are forgotten.
    fn renumber(&mut self, renumber: PyBuffer<i64>) -> PyResult<()> {
        let renumber = items(&renumber, "renumber")?;
        let mask = (1i64 << 24) - 1;
        let mut posts: Map<i64, i64> = Map::default();
        posts.reserve(self.posts.len());
        for (&key, &count) in &self.posts {
            let account = usize::try_from(key & mask).expect("masked");
            let new = *renumber
                .get(account)
                .ok_or_else(|| PyValueError::new_err("an account beyond renumber"))?;
            if new >= 0 {
                posts.insert((key >> 24) << 24 | new, count);
            }
        }
        self.posts = posts;
        Ok(())
    }

    /// Every pair and its posts, in no particular order: (keys, posts), native-endian i64.
    fn items<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyByteArray>, Bound<'py, PyByteArray>)> {
        let (keys, posts): (Vec<i64>, Vec<i64>) = self.posts.iter().map(|(&k, &p)| (k, p)).unzip();
        Ok((ne_bytes(py, &keys)?, ne_bytes(py, &posts)?))
    }

    fn __len__(&self) -> usize {
        self.posts.len()
    }
}

/// `CampaignDetector._books_numpy` in one pass: the books of a batch's clustered posts
/// (`labels`, `seqs` ascending, times, accounts, low reach as bytes, and their `slots` in the
/// ring of ids `ids`). The posts are taken by label, then seq; each label's segment gives its
/// members, its earliest post (Python's `min` of (time, id) over the segment in that order,
/// ids compared by Python) and the (label, account) pairs it began in `pairs`: new accounts and
/// new low-reach accounts. Returns (labels, segment ends, members, earliest slots, new
/// accounts, new low-reach accounts) as native-endian i64 and the earliest times as f64.
#[pyfunction]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn cluster_books<'py>(
    py: Python<'py>,
    pairs: &Bound<'py, PairCounts>,
    labels: PyBuffer<i64>,
    seqs: PyBuffer<i64>,
    ts: PyBuffer<f64>,
    accounts: PyBuffer<i64>,
    low: PyBuffer<u8>,
    ids: &Bound<'py, PyList>,
    slots: PyBuffer<i64>,
) -> PyResult<(
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
    Bound<'py, PyByteArray>,
)> {
    let (labels, seqs, ts) = (
        items(&labels, "labels")?,
        items(&seqs, "seqs")?,
        items(&ts, "ts")?,
    );
    let (accounts, low) = (items(&accounts, "accounts")?, items(&low, "low")?);
    let slots = items(&slots, "slots")?;
    let m = labels.len();
    if [seqs.len(), ts.len(), accounts.len(), low.len(), slots.len()]
        .iter()
        .any(|&len| len != m)
    {
        return Err(PyValueError::new_err(
            "one label, seq, time, account, low and slot a post",
        ));
    }
    if slots
        .iter()
        .any(|&s| usize::try_from(s).map_or(true, |s| s >= ids.len()))
    {
        return Err(PyValueError::new_err("a slot beyond the ids"));
    }
    let id = |i: usize| ids.get_item(slots[i] as usize);
    // (time, id) of post i below that of post j, as Python compares the tuples
    let earlier = |i: usize, j: usize| -> PyResult<bool> {
        if ts[i] == ts[j] {
            id(i)?.lt(id(j)?)
        } else {
            Ok(ts[i] < ts[j])
        }
    };
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by_key(|&i| labels[i]); // stable: by seq within a label
    let mut pairs = pairs.borrow_mut();
    let (mut segment_labels, mut ends, mut members) =
        (Vec::new(), Vec::new(), Vec::with_capacity(m));
    let (mut earliest_ts, mut earliest_slot) = (Vec::new(), Vec::new());
    let (mut new_accounts, mut new_low) = (Vec::new(), Vec::new());
    let mut k = 0;
    while k < m {
        let label = labels[order[k]];
        let mut best = order[k];
        let (mut began, mut began_low) = (0i64, 0i64);
        while k < m && labels[order[k]] == label {
            let i = order[k];
            if i != best && earlier(i, best)? {
                best = i;
            }
            if pairs.enter_one(label << 24 | accounts[i]) {
                began += 1;
                began_low += (low[i] != 0) as i64;
            }
            members.push(seqs[i]);
            k += 1;
        }
        segment_labels.push(label);
        ends.push(k as i64);
        earliest_ts.push(ts[best]);
        earliest_slot.push(slots[best]);
        new_accounts.push(began);
        new_low.push(began_low);
    }
    let times = PyByteArray::new_with(py, earliest_ts.len() * 8, |bytes| {
        for (chunk, t) in bytes.chunks_exact_mut(8).zip(&earliest_ts) {
            chunk.copy_from_slice(&t.to_ne_bytes());
        }
        Ok(())
    })?;
    Ok((
        ne_bytes(py, &segment_labels)?,
        ne_bytes(py, &ends)?,
        ne_bytes(py, &members)?,
        times,
        ne_bytes(py, &earliest_slot)?,
        ne_bytes(py, &new_accounts)?,
        ne_bytes(py, &new_low)?,
    ))
}

/// What the detector asks of each text besides its signature: Python's own `hash` of it (to
/// tell a repeated text) and whether it starts with "RT @" (a retweet written out). Returns
/// (hashes as native-endian i64, one byte a text for the retweets).
#[pyfunction]
pub fn text_facts<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyList>,
) -> PyResult<(Bound<'py, PyByteArray>, Bound<'py, PyByteArray>)> {
    const RETWEET: [u32; 4] = [b'R' as u32, b'T' as u32, b' ' as u32, b'@' as u32];
    let mut hashes: Vec<i64> = Vec::with_capacity(texts.len());
    let mut retweets: Vec<u8> = Vec::with_capacity(texts.len());
    for item in texts.iter() {
        let text = item.cast::<PyString>()?;
        hashes.push(text.hash()? as i64);
        // SAFETY: the string is alive and immutable while `data` is read
        let starts = match unsafe { text.data() }? {
            PyStringData::Ucs1(s) => s.iter().map(|&c| c as u32).take(4).eq(RETWEET),
            PyStringData::Ucs2(s) => s.iter().map(|&c| c as u32).take(4).eq(RETWEET),
            PyStringData::Ucs4(s) => s.iter().copied().take(4).eq(RETWEET),
        };
        retweets.push(starts as u8);
    }
    Ok((ne_bytes(py, &hashes)?, PyByteArray::new(py, &retweets)))
}

/// A string as a key (a post or account id): the string and Python's hash of it (cached in the
/// string, so taking it twice costs nothing); equal when the strings are, as Python compares
/// them.
struct StringKey {
    hash: isize,
    id: Py<PyString>,
}

impl StringKey {
    fn of(item: &Bound<'_, PyAny>) -> PyResult<Self> {
        let id = item.cast::<PyString>()?;
        Ok(Self {
            hash: id.hash()?,
            id: id.clone().unbind(),
        })
    }
}

impl std::hash::Hash for StringKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_isize(self.hash);
    }
}

impl PartialEq for StringKey {
    fn eq(&self, other: &Self) -> bool {
        if self.hash != other.hash {
            return false;
        }
        if self.id.as_ptr() == other.id.as_ptr() {
            return true;
        }
        // SAFETY: keys are only compared inside `StringTable`'s methods, called from Python with
        // the interpreter attached
        let py = unsafe { Python::assume_attached() };
        let (a, b) = (self.id.bind(py), other.id.bind(py));
        // SAFETY: both strings are alive and immutable while their data is read; CPython keeps
        // a string in the narrowest kind that fits, so equal strings have equal kinds
        match unsafe { (a.data(), b.data()) } {
            (Ok(PyStringData::Ucs1(x)), Ok(PyStringData::Ucs1(y))) => x == y,
            (Ok(PyStringData::Ucs2(x)), Ok(PyStringData::Ucs2(y))) => x == y,
            (Ok(PyStringData::Ucs4(x)), Ok(PyStringData::Ucs4(y))) => x == y,
            _ => false,
        }
    }
}

impl Eq for StringKey {}

/// Python strings to numbers, as a dict of them would keep them: `CampaignDetector`'s kept
/// posts by id (id -> seq, its arrival number) and its accounts (author id -> account number).
#[pyclass(module = "cryptosent_vader_core")]
#[derive(Default)]
pub struct StringTable {
    number_of: Map<StringKey, i64>,
}

#[pymethods]
impl StringTable {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Keep a batch of strings (post ids) as numbers `first`, `first + 1`, ... when every one is
    /// new and none repeats in the batch (true); otherwise keep none of them (false).
    fn add_new(&mut self, ids: &Bound<'_, PyList>, first: i64) -> PyResult<bool> {
        let keys = ids
            .iter()
            .map(|item| StringKey::of(&item))
            .collect::<PyResult<Vec<_>>>()?;
        if keys.iter().any(|key| self.number_of.contains_key(key)) {
            return Ok(false);
        }
        self.number_of.reserve(keys.len());
        for (i, key) in keys.into_iter().enumerate() {
            if self.number_of.insert(key, first + i as i64).is_some() {
                // a repeat within the batch: take the batch back out
                for item in ids.iter().take(i + 1) {
                    self.number_of.remove(&StringKey::of(&item)?);
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The number of each string, -1 for one not kept (native-endian i64 a string).
    fn get<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let seqs = ids
            .iter()
            .map(|item| {
                Ok(self
                    .number_of
                    .get(&StringKey::of(&item)?)
                    .copied()
                    .unwrap_or(-1))
            })
            .collect::<PyResult<Vec<i64>>>()?;
        ne_bytes(py, &seqs)
    }

    /// Let go of the strings `ids[start:stop]` (a stretch of the ring of post ids); one not kept
    /// is an error, and then those before it are gone.
    fn remove(&mut self, ids: &Bound<'_, PyList>, start: usize, stop: usize) -> PyResult<()> {
        for i in start..stop.min(ids.len()) {
            let item = ids.get_item(i)?;
            if self.number_of.remove(&StringKey::of(&item)?).is_none() {
                return Err(PyKeyError::new_err(item.unbind()));
            }
        }
        Ok(())
    }

    /// The number of each string, a string not kept numbered in order of appearance from the
    /// table's size on (as `number = table.setdefault(string, len(table))` would), native-endian
    /// i64 a string.
    fn number<'py>(
        &mut self,
        py: Python<'py>,
        strings: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let numbers = strings
            .iter()
            .map(|item| {
                let next = self.number_of.len() as i64;
                Ok(*self.number_of.entry(StringKey::of(&item)?).or_insert(next))
            })
            .collect::<PyResult<Vec<i64>>>()?;
        ne_bytes(py, &numbers)
    }

    /// Numbers changed: `renumber[number]` is the new one, or negative for a string to forget.
    fn renumber(&mut self, renumber: PyBuffer<i64>) -> PyResult<()> {
        let renumber = items(&renumber, "renumber")?;
        if self
            .number_of
            .values()
            .any(|&n| usize::try_from(n).map_or(true, |n| n >= renumber.len()))
        {
            return Err(PyValueError::new_err("a number beyond renumber"));
        }
        self.number_of.retain(|_, number| {
            *number = renumber[*number as usize];
            *number >= 0
        });
        Ok(())
    }

    /// Every string kept and its number.
    fn items<'py>(&self, py: Python<'py>) -> Vec<(Bound<'py, PyString>, i64)> {
        self.number_of
            .iter()
            .map(|(key, &number)| (key.id.bind(py).clone(), number))
            .collect()
    }

    fn __len__(&self) -> usize {
        self.number_of.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_shingle_hashes_give_the_folded_signature() {
        let folded = |c: &[u32]| {
            let mut minhash = [EMPTY; BINS];
            for w in c.windows(SHINGLE) {
                let h = mix(w
                    .iter()
                    .fold(0u64, |h, &x| h.wrapping_mul(ROLL).wrapping_add(x as u64)));
                let bin = (h >> BIN_SHIFT) as usize;
                minhash[bin] = minhash[bin].min(h & VALUE_MASK);
            }
            minhash
        };
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for len in 0..200 {
            let c: Vec<u32> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    ((state >> 33) % 0x110000) as u32
                })
                .collect();
            assert_eq!(CampaignSigner::row(&c).minhash, folded(&c), "{len}");
        }
    }
}
