//! The coin matcher's common case (`cryptosent.analysis.coins.CoinMatcher.mentions`): tokenise,
//! find the candidate terms, and decide a post whose candidates are all unambiguous and that
//! has no word of another field. Every other post (ambiguous words, pairs, phrases, other
//! scripts, lone surrogates) is left to Python's full scoring: the answer is then None.
//! The tables come from the Python matcher, so there is one catalogue and one evidence file.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// What a word of a post can be to the matcher (bits).
const VOCAB: u8 = 1;
const QUICK: u8 = 1 << 1;
const NEGATIVE: u8 = 1 << 2;
const STABLE: u8 = 1 << 3;
const PHRASE_FIRST: u8 = 1 << 4;
const PHRASE_SECOND: u8 = 1 << 5;
const GLUED: u8 = 1 << 6;

struct Word {
    /// its position in the table handed over
    id: u32,
    bits: u8,
    /// index into `tickers` (terms of the vocabulary)
    ticker: u32,
    /// index into `rules` (quick terms with rule words)
    rules: Option<u32>,
}

#[pyclass(frozen, module = "cryptosent_vader_core")]
pub struct CoinQuick {
    /// every word the matcher looks up (`CoinMatcher._lookup`), with what it is
    words: Map<Box<[u8]>, Word>,
    /// the words that let a term's own rules apply (`_rule_words`), as word ids
    rules: Vec<Set<u32>>,
    tickers: Vec<Py<PyString>>,
    ticker_names: Vec<String>,
    /// first word of a multi-word name -> (the other words, the joined token), longest first
    phrases: Map<Box<[u8]>, Vec<(Vec<Box<[u8]>>, Box<[u8]>)>>,
}

#[inline]
fn kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'$' | b'#' | b'@' | b'_')
}

/// `bytes.find(needle, from)`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `bytes.rfind(b" ", 0, end) + 1`.
fn chunk_start(text: &[u8], end: usize) -> usize {
    text[..end]
        .iter()
        .rposition(|&b| b == b' ')
        .map_or(0, |p| p + 1)
}

/// `_HOST_BEFORE_SLASH` (`\w\.[A-Za-z]{2,}(?::\d+)?/`) anywhere in `s`.
fn host_before_slash(s: &[u8]) -> bool {
    let n = s.len();
    for i in 0..n.saturating_sub(1) {
        if !(s[i].is_ascii_alphanumeric() || s[i] == b'_') || s[i + 1] != b'.' {
            continue;
        }
        let mut j = i + 2;
        while j < n && s[j].is_ascii_alphabetic() {
            j += 1;
        }
        if j - (i + 2) < 2 || j >= n {
            continue;
        }
        if s[j] == b'/' {
            return true;
        }
        if s[j] == b':' {
            let mut k = j + 1;
            while k < n && s[k].is_ascii_digit() {
                k += 1;
            }
            if k > j + 1 && k < n && s[k] == b'/' {
                return true;
            }
        }
    }
    false
}

/// `coins._strip_links` (after `_SPACE_BYTES`): drop every space-delimited chunk that is a URL.
fn strip_links(mut text: Vec<u8>) -> Vec<u8> {
    let mut pos = find(&text, b"://", 0);
    while let Some(p) = pos {
        let start = chunk_start(&text, p);
        match find(&text, b" ", p) {
            None => text.truncate(start),
            Some(end) => {
                text.drain(start..end);
            }
        }
        pos = find(&text, b"://", start);
    }
    for marker in [&b"/"[..], b"www.", b"WWW."] {
        let mut pos = find(&text, marker, 0);
        while let Some(p) = pos {
            let start = chunk_start(&text, p);
            let end = find(&text, b" ", p).unwrap_or(text.len());
            if marker != b"/" || host_before_slash(&text[start..end]) {
                text.drain(start..end);
                pos = find(&text, marker, start);
            } else {
                pos = find(&text, marker, end);
            }
        }
    }
    text
}

/// `_OTHER_SCRIPT_BYTES`: a lead byte of a letter in a script of coins_scripts.csv.
#[inline]
fn other_script_byte(b: u8) -> bool {
    matches!(b, 0xCE..=0xD1 | 0xD7..=0xDB | 0xE0 | 0xE3..=0xED)
}

impl CoinQuick {
    /// The tickers of `text` when the common case decides it; None: Python must score it.
    fn decide(&self, text: &str, out: &mut Vec<u32>) -> bool {
        out.clear();
        let mut raw: std::borrow::Cow<[u8]> = text.as_bytes().into();
        if find(&raw, b"/", 0).is_some()
            || find(&raw, b"www.", 0).is_some()
            || find(&raw, b"WWW.", 0).is_some()
        {
            let spaced = raw
                .iter()
                .map(|&b| {
                    if matches!(b, b'\t' | b'\n' | b'\r' | 0x0B | 0x0C) {
                        b' '
                    } else {
                        b
                    }
                })
                .collect();
            raw = strip_links(spaced).into();
        }
        // the post's words (`raw.translate(_WORD_BYTES).split()`), back to back in `lowered`
        let mut lowered: Vec<u8> = Vec::with_capacity(raw.len());
        let mut tokens: Vec<(usize, usize)> = Vec::with_capacity(32);
        let mut start = None;
        for &b in raw.iter() {
            if kept(b) {
                start.get_or_insert(lowered.len());
                lowered.push(b.to_ascii_lowercase());
            } else if let Some(a) = start.take() {
                tokens.push((a, lowered.len()));
            }
        }
        if let Some(a) = start {
            tokens.push((a, lowered.len()));
        }
        let token = |k: usize| &lowered[tokens[k].0..tokens[k].1];
        let mut found_bits = 0u8;
        let mut found: Vec<&Word> = Vec::new();
        let mut infos: Vec<Option<&Word>> = Vec::with_capacity(tokens.len());
        for k in 0..tokens.len() {
            let info = self.words.get(token(k));
            if let Some(info) = info {
                found_bits |= info.bits;
                found.push(info);
            }
            infos.push(info);
        }
        let mut hits: Vec<&Word> = infos
            .iter()
            .flatten()
            .filter(|w| w.bits & VOCAB != 0)
            .copied()
            .collect();
        if found_bits & PHRASE_FIRST != 0 && found_bits & PHRASE_SECOND != 0 {
            // `CoinMatcher._phrase_spans` + `_join`: multi-word names become one token
            let mut joined_any = false;
            let mut joined_hits: Vec<&Word> = Vec::new();
            let mut k = 0;
            while k < tokens.len() {
                let mut step = 1;
                let mut word = infos[k];
                if infos[k].is_some_and(|w| w.bits & PHRASE_FIRST != 0) {
                    if let Some(list) = self.phrases.get(token(k)) {
                        for (rest, joined) in list {
                            let end = k + 1 + rest.len();
                            if end <= tokens.len()
                                && rest
                                    .iter()
                                    .enumerate()
                                    .all(|(j, r)| token(k + 1 + j) == &r[..])
                            {
                                step = 1 + rest.len();
                                word = self.words.get(joined);
                                joined_any = true;
                                break;
                            }
                        }
                    }
                }
                if let Some(w) = word {
                    if w.bits & VOCAB != 0 {
                        joined_hits.push(w);
                    }
                }
                k += step;
            }
            if joined_any {
                for w in &joined_hits {
                    found_bits |= w.bits;
                    found.push(w);
                }
                hits = joined_hits;
            }
        }
        let glued = found_bits & GLUED != 0;
        let other_script = !raw.is_ascii() && raw.iter().any(|&b| other_script_byte(b));
        if hits.is_empty() && !glued && !other_script {
            return true;
        }
        if glued || other_script || found_bits & NEGATIVE != 0 {
            return false;
        }
        let joined = raw.iter().any(|&b| matches!(b, b'/' | b'-' | b'_'));
        for hit in &hits {
            if hit.bits & QUICK == 0 || (joined && hit.bits & STABLE != 0) {
                return false;
            }
            if let Some(rules) = hit.rules {
                let rules = &self.rules[rules as usize];
                if found.iter().any(|w| rules.contains(&w.id)) {
                    return false;
                }
            }
        }
        out.extend(hits.iter().map(|h| h.ticker));
        out.sort_unstable_by(|a, b| {
            let (a, b) = (
                &self.ticker_names[*a as usize],
                &self.ticker_names[*b as usize],
            );
            a.cmp(b)
        });
        out.dedup();
        true
    }
}

#[pymethods]
impl CoinQuick {
    /// ``words``: (word, bits, ticker or None, rule words or None) for every word the matcher
    /// looks up; bits: 1 a term, 2 decided without scoring, 4 a word of another field,
    /// 8 a stablecoin term, 16/32 first/second word of a multi-word name, 64 a glued pair.
    /// ``phrases``: (first word, [(other words, joined token)], longest first).
    #[new]
    #[allow(clippy::type_complexity)]
    fn new(
        py: Python<'_>,
        words: Vec<(Vec<u8>, u8, Option<String>, Option<Vec<Vec<u8>>>)>,
        phrases: Vec<(Vec<u8>, Vec<(Vec<Vec<u8>>, Vec<u8>)>)>,
    ) -> PyResult<Self> {
        let ids: Map<Vec<u8>, u32> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.0.clone(), i as u32))
            .collect();
        let mut map = Map::default();
        let mut rules = Vec::new();
        let mut ticker_index: Map<String, u32> = Map::default();
        let mut ticker_names = Vec::new();
        for (id, (word, bits, ticker, rule_words)) in words.into_iter().enumerate() {
            let ticker = match ticker {
                Some(t) => *ticker_index.entry(t.clone()).or_insert_with(|| {
                    ticker_names.push(t);
                    (ticker_names.len() - 1) as u32
                }),
                None => u32::MAX,
            };
            let rules_at = match rule_words {
                None => None,
                Some(r) => {
                    let mut set = Set::default();
                    for w in r {
                        match ids.get(&w) {
                            Some(&i) => set.insert(i),
                            None => {
                                return Err(pyo3::exceptions::PyValueError::new_err(
                                    "a rule word is not a word of the table",
                                ))
                            }
                        };
                    }
                    rules.push(set);
                    Some((rules.len() - 1) as u32)
                }
            };
            let info = Word {
                id: id as u32,
                bits,
                ticker,
                rules: rules_at,
            };
            map.insert(word.into_boxed_slice(), info);
        }
        let phrases = phrases
            .into_iter()
            .map(|(first, list)| {
                let list = list
                    .into_iter()
                    .map(|(rest, joined)| {
                        let rest = rest.into_iter().map(Vec::into_boxed_slice).collect();
                        (rest, joined.into_boxed_slice())
                    })
                    .collect();
                (first.into_boxed_slice(), list)
            })
            .collect();
        let tickers = ticker_names
            .iter()
            .map(|t| PyString::new(py, t).unbind())
            .collect();
        Ok(CoinQuick {
            words: map,
            rules,
            tickers,
            ticker_names,
            phrases,
        })
    }

    /// For each text, its tickers (sorted) when the common case decides it, else None.
    fn mentions_many<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let mut found = Vec::new();
        for item in texts.iter() {
            let decided = match item.cast::<PyString>()?.to_str() {
                Ok(text) => self.decide(text, &mut found),
                Err(_) => false, // lone surrogates
            };
            if decided {
                let list = PyList::empty(py);
                for &t in &found {
                    list.append(self.tickers[t as usize].bind(py))?;
                }
                out.append(list)?;
            } else {
                out.append(py.None())?;
            }
        }
        Ok(out)
    }
}
