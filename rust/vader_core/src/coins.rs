//! The coin matcher (`cryptosent.analysis.coins.CoinMatcher.mentions`) in the compiled core:
//! tokenise, find the candidate terms, decide the common case (only unambiguous terms), and
//! score every other post in full as `CoinMatcher._decide` does: pairs, names in other scripts,
//! the prior of each candidate, the words of the post, the other coins, the words around
//! ambiguous terms. What it cannot be sure of exactly as Python (lone surrogates, characters
//! whose lower case depends on their context or on the Unicode version, a character outside
//! the Basic Multilingual Plane glued to a name, names with their own rules in other scripts)
//! is left to Python: the answer is then None. The tables come from the Python matcher, so
//! there is one catalogue and one evidence file.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
/// The multi-word names that start with one word: (the other words, the joined token).
type Names = Vec<(Vec<Box<[u8]>>, Box<[u8]>)>;

/// What a word of a post can be to the matcher (bits).
const VOCAB: u8 = 1;
const QUICK: u8 = 1 << 1;
const NEGATIVE: u8 = 1 << 2;
const STABLE: u8 = 1 << 3;
const PHRASE_FIRST: u8 = 1 << 4;
const PHRASE_SECOND: u8 = 1 << 5;
const GLUED: u8 = 1 << 6;

/// The local tables' key for a word that starts with a digit (`coins._NUMBER`).
const NUMBER: &[u8] = b"<n>";
/// Weights are sums of multiples of this, exact in floating point whatever the order of the
/// sums (Python adds the words of a post in the order of a set).
const WEIGHT_UNIT: f64 = 1.0 / 1024.0;

struct Word {
    /// its position in the table handed over
    id: u32,
    bits: u8,
    /// index into `tickers` (terms of the vocabulary)
    ticker: u32,
    /// index into `rules` (quick terms with rule words)
    rules: Option<u32>,
    /// index into `Scoring::terms` (terms of the vocabulary)
    term: Option<u32>,
    /// its weight as a word of the post (`Evidence.words`), with its field and group
    evidence: Option<Evidence>,
    /// a neighbour in a list of coins (`CoinMatcher._neighbours`)
    neighbour: bool,
    /// a glued pair (BTCUSDT): its base, and its quote when that is a coin too
    glued: Option<(u32, Option<u32>)>,
}

#[derive(Clone, Copy)]
struct Evidence {
    weight: f64,
    /// the field of a word with a negative weight (`Evidence.field_of`)
    field: Option<u32>,
    /// the group summed apart (`Evidence.apart`)
    apart: Option<u32>,
}

/// What the matcher knows about one term before it sees a post (`coins._Term`).
struct Term {
    ticker: u32,
    prior_upper: f64,
    prior_lower: f64,
    placed: bool,
    local: bool,
    before: Map<Box<[u8]>, f64>,
    after: Map<Box<[u8]>, f64>,
    own: f64,
    floor: f64,
}

/// The evidence file's weights and the pair tables (`coins.Evidence`, `CoinMatcher._pairs`).
struct Scoring {
    terms: Vec<Term>,
    threshold: f64,
    pair: f64,
    cap_post_positive: f64,
    cap_post_negative: f64,
    cap_other_coins: f64,
    cap_local: f64,
    other_coin: f64,
    list_neighbour: f64,
    list_candidate: f64,
    compound: f64,
    first_of_field: f64,
    apart_caps: Vec<f64>,
    before: Map<Box<[u8]>, f64>,
    after: Map<Box<[u8]>, f64>,
    determiners: Set<Box<[u8]>>,
    list_fillers: Set<Box<[u8]>>,
    pair_bases: Map<Box<[u8]>, u32>,
    stable_quotes: Set<Box<[u8]>>,
    coin_quotes: Set<Box<[u8]>>,
    scripts: Scripts,
}

/// A coin name or a crypto word in another script (`coins_scripts.csv`,
/// `[words.crypto_scripts]`), or with accents (preço), as `CoinMatcher._scripts` finds them.
struct ScriptTerm {
    chars: Vec<char>,
    /// it must start a word (`_WORD_START_SCRIPTS`)
    anchored: bool,
    kind: ScriptKind,
}

enum ScriptKind {
    /// a coin's name: its ticker and prior
    Name(u32, f64),
    /// a crypto word: its weight as a word of the post
    Word(f64),
    /// a name with its own rules before or after it (left to Python)
    Ruled,
}

/// The tables `CoinMatcher._scripts` works with, and Python's Unicode rules where they matter.
struct Scripts {
    terms: Vec<ScriptTerm>,
    /// a character of `_script_hint` -> the terms its lower case starts, longest first
    hints: Map<char, Vec<u32>>,
    /// the terms `_latin_re` finds, longest first
    latin: Vec<u32>,
    /// non-ASCII characters whose lower case (Python's) is a character of a term
    lower_of: Map<char, char>,
    term_chars: Set<char>,
    /// the ranges of the Basic Multilingual Plane that are `\w` to Python (start, end)
    word_ranges: Vec<(u32, u32)>,
}

impl Scripts {
    /// Python's `c.lower()` where it matters: exact for a character of a term or one that
    /// lower-cases to one; other characters stand for themselves. None: not sure.
    fn fold(&self, c: char) -> Option<char> {
        if c.is_ascii() {
            return Some(c.to_ascii_lowercase());
        }
        if c == '\u{3a3}' {
            return None; // capital sigma: final or not, by the letters around it
        }
        if let Some(&lower) = self.lower_of.get(&c) {
            return Some(lower);
        }
        if self.term_chars.contains(&c) {
            return None;
        }
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) if self.term_chars.contains(&l) => None,
            _ => Some(c),
        }
    }

    /// `c.isalnum() or c == "_"` (Python's `\w`); None outside the Basic Multilingual Plane.
    fn word_char(&self, c: char) -> Option<bool> {
        if c.is_ascii() {
            return Some(c.is_ascii_alphanumeric() || c == '_');
        }
        let code = c as u32;
        if code > 0xFFFF {
            return None;
        }
        let i = self.word_ranges.partition_point(|&(_, end)| end <= code);
        Some(
            self.word_ranges
                .get(i)
                .is_some_and(|&(start, _)| start <= code),
        )
    }

    /// Whether `chars` at `pos` lower-case to `term` (`text[pos:end].lower() == term`); None:
    /// not sure.
    fn matches_at(&self, chars: &[char], pos: usize, term: &[char]) -> Option<bool> {
        let Some(slice) = chars.get(pos..pos + term.len()) else {
            return Some(false); // shorter: its lower case is too (no character expands)
        };
        let mut sure = true;
        for (&c, &t) in slice.iter().zip(term) {
            match self.fold(c) {
                Some(lower) if lower != t => return Some(false),
                Some(_) => {}
                None => sure = false,
            }
        }
        sure.then_some(true)
    }

    /// `CoinMatcher._scripts`: the terms of other scripts (with `other_script`) and the
    /// accented Latin words (with `latin`) of `text`, in Python's order; None: not sure.
    fn find(&self, text: &str, other_script: bool, latin: bool) -> Option<Vec<u32>> {
        let chars: Vec<char> = text.chars().collect();
        if chars.contains(&'\u{130}') {
            return None; // its lower case is two characters: positions shift
        }
        let mut found = Vec::new();
        let mut free = 0;
        for pos in 0..chars.len() {
            let entries = match self.hints.get(&chars[pos]) {
                Some(entries) if other_script && pos >= free => entries,
                _ => continue,
            };
            for &t in entries {
                let term = &self.terms[t as usize];
                if !self.matches_at(&chars, pos, &term.chars)? {
                    continue;
                }
                if term.anchored && pos > 0 && self.word_char(chars[pos - 1])? {
                    continue;
                }
                found.push(t);
                free = pos + term.chars.len();
                break;
            }
        }
        if latin {
            // `(?<!\w)(?:longest|...)` over `text.lower()`: a lower-cased character is `\w`
            // exactly when it was (tests/unit/analysis/test_coins_compiled.py checks this).
            let mut pos = 0;
            while pos < chars.len() {
                let mut step = 1;
                for &t in &self.latin {
                    let term = &self.terms[t as usize];
                    if self.matches_at(&chars, pos, &term.chars)?
                        && (pos == 0 || !self.word_char(chars[pos - 1])?)
                    {
                        found.push(t);
                        step = term.chars.len();
                        break;
                    }
                }
                pos += step;
            }
        }
        Some(found)
    }
}

/// One word of a post: lower-cased, as written, and what it is to the matcher.
#[derive(Clone, Copy)]
struct Token<'a> {
    low: &'a [u8],
    cased: &'a [u8],
    word: Option<&'a Word>,
}

/// One place where a coin's term appears in a post (`coins._Candidate`).
struct Candidate<'a> {
    ticker: u32,
    term: Option<&'a Term>,
    /// position in the tokens; None for pairs and unplaced terms
    index: Option<usize>,
    base: f64,
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
    phrases: Map<Box<[u8]>, Names>,
    /// None: the weights are not exact sums (see `WEIGHT_UNIT`), every scored post goes back
    scoring: Option<Scoring>,
}

#[inline]
fn kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'$' | b'#' | b'@' | b'_')
}

/// `bytes.isupper()`: some ASCII letter, none of them lower-case.
fn is_upper(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_uppercase) && !s.iter().any(u8::is_ascii_lowercase)
}

/// `bytes.lstrip(b"$#")`.
fn strip_sigils(s: &[u8]) -> &[u8] {
    let skip = s.iter().take_while(|&&b| b == b'$' || b == b'#').count();
    &s[skip..]
}

/// A local table's key for a neighbouring word: `<n>` for numbers.
fn local_key(word: &[u8]) -> &[u8] {
    if word.first().is_some_and(u8::is_ascii_digit) {
        NUMBER
    } else {
        word
    }
}

/// The searchers of `CoinQuick::decide`'s link check, built once.
static WWW: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"www."));
static WWW_UPPER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"WWW."));

/// `bytes.find(needle, from)`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    memchr::memmem::find(&hay[from..], needle).map(|p| p + from)
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

/// `_LEFT_WORD.search(raw, max(0, pos - 17), pos)` (`([$#]?[A-Za-z0-9]{1,14}) ?$`): the word
/// right before a separator at `pos`, with its sigil.
fn left_word(raw: &[u8], pos: usize) -> Option<&[u8]> {
    let window = pos.saturating_sub(17);
    // `$` matches at the end, or before a newline that ends the searched text.
    let anchor = if pos > window && raw[pos - 1] == b'\n' {
        pos - 1
    } else {
        pos
    };
    let mut end = anchor;
    if end > window && raw[end - 1] == b' ' {
        end -= 1;
    }
    let mut start = end;
    while start > window && end - start < 14 && raw[start - 1].is_ascii_alphanumeric() {
        start -= 1;
    }
    if start == end {
        return None;
    }
    if start > window && matches!(raw[start - 1], b'$' | b'#') {
        start -= 1;
    }
    Some(&raw[start..end])
}

/// `_RIGHT_WORD.match(raw, pos + 1)` (` ?([A-Za-z0-9]{1,14})(?![A-Za-z0-9])`): the word right
/// after a separator at `pos`.
fn right_word(raw: &[u8], pos: usize) -> Option<&[u8]> {
    let mut start = pos + 1;
    if start < raw.len() && raw[start] == b' ' {
        start += 1;
    }
    let mut end = start;
    while end < raw.len() && raw[end].is_ascii_alphanumeric() {
        end += 1;
    }
    (end > start && end - start <= 14).then(|| &raw[start..end])
}

/// `_OTHER_SCRIPT_BYTES`: a lead byte of a letter in a script of coins_scripts.csv.
#[inline]
fn other_script_byte(b: u8) -> bool {
    matches!(b, 0xCE..=0xD1 | 0xD7..=0xDB | 0xE0 | 0xE3..=0xED)
}

impl Scoring {
    /// `CoinMatcher._pairs`: the tickers named in trading pairs; marks the positions of quoted
    /// stablecoins and the hyphenated compounds (near-term).
    fn pairs(
        &self,
        raw: &[u8],
        tokens: &[Token],
        glued: bool,
        joined: bool,
        quoted: &mut Vec<usize>,
        compounds: &mut Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Vec<u32> {
        let mut found = Vec::new();
        if glued {
            for token in tokens {
                if let Some((base, quote)) = token.word.and_then(|w| w.glued) {
                    match quote {
                        None => found.push(base),
                        Some(quote) if is_upper(token.cased) => found.extend([base, quote]),
                        Some(_) => {}
                    }
                }
            }
        }
        if !joined {
            return found;
        }
        let mut stables: Vec<Vec<u8>> = Vec::new();
        for (pos, &b) in raw.iter().enumerate() {
            if !matches!(b, b'/' | b'-' | b'_') {
                continue;
            }
            let (Some(written), Some(right)) = (left_word(raw, pos), right_word(raw, pos)) else {
                continue;
            };
            let left = strip_sigils(written).to_ascii_lowercase();
            let right = right.to_ascii_lowercase();
            let base = if left.len() > 5 {
                left.strip_prefix(b"1000").unwrap_or(&left)
            } else {
                &left
            };
            let left_coin = self.pair_bases.get(base).copied();
            match left_coin {
                Some(coin) if self.stable_quotes.contains(&right[..]) => {
                    found.push(coin);
                    stables.push(right);
                }
                Some(coin)
                    if self.coin_quotes.contains(&right[..])
                        && !matches!(written[0], b'$' | b'#') =>
                {
                    if let Some(&quote) = self.pair_bases.get(&right[..]) {
                        found.extend([coin, quote]);
                    } else if b == b'-' {
                        compounds.push((left, right));
                    }
                }
                _ if b == b'-' => compounds.push((left, right)),
                _ => {}
            }
        }
        if !stables.is_empty() {
            // A stablecoin quoted in a pair (BTC/USDT) is not a mention of it.
            for i in 1..tokens.len() {
                if stables.iter().any(|s| s[..] == *tokens[i].low)
                    && self
                        .pair_bases
                        .contains_key(strip_sigils(tokens[i - 1].low))
                {
                    quoted.push(i);
                }
            }
        }
        found
    }

    /// `CoinMatcher._local`: what the words around candidate `c` say (its term's own rules are
    /// not capped).
    fn local(
        &self,
        c: &Candidate,
        tokens: &[Token],
        settled: &[u32],
        compounds: &[(Vec<u8>, Vec<u8>)],
    ) -> f64 {
        let (Some(term), Some(i)) = (c.term, c.index) else {
            return 0.0;
        };
        let key = tokens[i].low;
        let prev: &[u8] = if i > 0 { tokens[i - 1].low } else { b"" };
        let next: &[u8] = tokens.get(i + 1).map_or(b"", |t| t.low);
        let (prev_key, next_key) = (local_key(prev), local_key(next));
        let mut rules = term.before.get(prev_key).copied().unwrap_or(0.0)
            + term.after.get(next_key).copied().unwrap_or(0.0);
        if next == b"s" && i + 2 < tokens.len() {
            // Through a possessive: "Kusama's pumpkins", "Cardano's formula".
            rules += term.after.get(tokens[i + 2].low).copied().unwrap_or(0.0);
        }
        if !term.local {
            return rules;
        }
        let mut score = self.before.get(prev_key).copied().unwrap_or(0.0)
            + self.after.get(next_key).copied().unwrap_or(0.0);
        if self.determiners.contains(prev) && i > 1 {
            // "sold my dot": the verb before the determiner says what the word is.
            score += self
                .before
                .get(tokens[i - 2].low)
                .copied()
                .unwrap_or(0.0)
                .max(0.0);
        }
        if compounds
            .iter()
            .any(|(l, r)| (l[..] == *prev && r[..] == *key) || (l[..] == *key && r[..] == *next))
        {
            score += self.compound;
        }
        for step in [-1isize, 1] {
            let mut j = i as isize + step;
            let mut skipped = 0;
            while skipped < 2
                && 0 <= j
                && (j as usize) < tokens.len()
                && (self.list_fillers.contains(tokens[j as usize].low)
                    || tokens[j as usize].low[0].is_ascii_digit())
            {
                j += step;
                skipped += 1;
            }
            if j < 0 || j as usize >= tokens.len() {
                continue;
            }
            let neighbour = tokens[j as usize];
            let Some(word) = neighbour.word.filter(|w| w.neighbour) else {
                continue;
            };
            if neighbour.low == key {
                continue;
            }
            let known = word.term.map(|t| self.terms[t as usize].ticker);
            if known == Some(c.ticker) {
                continue;
            }
            score += match known {
                Some(t) if settled.contains(&t) => self.list_neighbour,
                _ => self.list_candidate,
            };
        }
        rules + score.clamp(-self.cap_local, self.cap_local)
    }

    /// `CoinMatcher._decide`: the tickers of the candidates that reach the threshold
    /// (unsorted, each once); false when it is not sure (see `Scripts`).
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        text: &str,
        raw: &[u8],
        tokens: &[Token],
        found: &[&Word],
        glued: bool,
        other_script: bool,
        out: &mut Vec<u32>,
    ) -> bool {
        let joined = raw.iter().any(|&b| matches!(b, b'/' | b'-' | b'_'));
        let mut quoted = Vec::new();
        let mut compounds = Vec::new();
        let mut candidates: Vec<Candidate> = self
            .pairs(raw, tokens, glued, joined, &mut quoted, &mut compounds)
            .into_iter()
            .map(|ticker| Candidate {
                ticker,
                term: None,
                index: None,
                base: self.pair,
            })
            .collect();
        let shouting = is_upper(raw); // a post in capitals says nothing by its case
        let mut unplaced: Vec<u32> = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let Some(id) = token.word.and_then(|w| w.term) else {
                continue;
            };
            let term = &self.terms[id as usize];
            if !term.placed {
                if !unplaced.contains(&id) {
                    unplaced.push(id);
                    candidates.push(Candidate {
                        ticker: term.ticker,
                        term: Some(term),
                        index: None,
                        base: term.prior_lower,
                    });
                }
            } else if !quoted.contains(&i) {
                let upper = !shouting && is_upper(token.cased);
                candidates.push(Candidate {
                    ticker: term.ticker,
                    term: Some(term),
                    index: Some(i),
                    base: if upper {
                        term.prior_upper
                    } else {
                        term.prior_lower
                    },
                });
            }
        }
        let mut positive = 0.0f64;
        if other_script || raw.contains(&0xC3) {
            let Some(terms) = self.scripts.find(text, other_script, raw.contains(&0xC3)) else {
                return false;
            };
            for t in terms {
                match self.scripts.terms[t as usize].kind {
                    ScriptKind::Name(ticker, prior) => candidates.push(Candidate {
                        ticker,
                        term: None,
                        index: None,
                        base: prior,
                    }),
                    ScriptKind::Word(weight) => positive += weight,
                    ScriptKind::Ruled => return false,
                }
            }
        }
        if candidates.is_empty() {
            return true;
        }

        // The words of the post, each once: groups summed apart, then the fields.
        let mut seen: Vec<u32> = Vec::with_capacity(found.len());
        let mut apart_sums: Vec<Option<f64>> = vec![None; self.apart_caps.len()];
        let mut fields: Vec<u32> = Vec::new();
        let mut negative = 0.0f64;
        for word in found {
            let Some(evidence) = word.evidence else {
                continue;
            };
            if seen.contains(&word.id) {
                continue;
            }
            seen.push(word.id);
            if let Some(group) = evidence.apart {
                let sum = apart_sums[group as usize].get_or_insert(0.0);
                *sum += evidence.weight;
            } else if evidence.weight > 0.0 {
                positive += evidence.weight;
            } else if let Some(field) = evidence.field {
                // One stray word of another field is weak evidence; two of the same are not.
                if fields.contains(&field) {
                    negative += evidence.weight;
                } else {
                    negative += evidence.weight * self.first_of_field;
                    fields.push(field);
                }
            }
        }
        let mut apart = 0.0;
        for (sum, &cap) in apart_sums.iter().zip(&self.apart_caps) {
            if let Some(total) = sum {
                apart += if cap < 0.0 {
                    total.max(cap)
                } else {
                    total.min(cap)
                };
            }
        }
        let post_all =
            positive.min(self.cap_post_positive) + negative.max(self.cap_post_negative) + apart;

        // A coin confirmed in one round is evidence for the others in the next.
        let mut confirmed: Vec<u32> = Vec::new();
        let mut pending: Vec<&Candidate> = candidates.iter().collect();
        for _ in 0..4 {
            let settled = confirmed.clone();
            let others = (self.other_coin * settled.len() as f64).min(self.cap_other_coins);
            let mut new = false;
            for c in &pending {
                if settled.contains(&c.ticker) {
                    continue;
                }
                let own = c.term.map_or(0.0, |t| t.own);
                let post = if own != 0.0 {
                    (positive - own.max(0.0)).min(self.cap_post_positive)
                        + (negative - own.min(0.0)).max(self.cap_post_negative)
                        + apart
                } else {
                    post_all
                };
                let score = c.base + post + others;
                let skip_local = match (c.index, c.term) {
                    (None, _) => true,
                    (Some(_), Some(term)) => score + term.floor >= self.threshold,
                    (Some(_), None) => false,
                };
                let local = if skip_local {
                    0.0
                } else {
                    self.local(c, tokens, &settled, &compounds)
                };
                if score + local >= self.threshold {
                    if !confirmed.contains(&c.ticker) {
                        confirmed.push(c.ticker);
                    }
                    new = true;
                }
            }
            if !new {
                break;
            }
            pending.retain(|c| !confirmed.contains(&c.ticker));
            if pending.is_empty() {
                break;
            }
        }
        out.extend(confirmed);
        true
    }
}

impl CoinQuick {
    /// The tickers of `text`, sorted, when the compiled matcher decides it; false: Python must.
    fn decide(&self, text: &str, out: &mut Vec<u32>) -> bool {
        out.clear();
        let mut raw: std::borrow::Cow<[u8]> = text.as_bytes().into();
        if memchr::memchr(b'/', &raw).is_some()
            || WWW.find(&raw).is_some()
            || WWW_UPPER.find(&raw).is_some()
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
        let lowered = raw.to_ascii_lowercase();
        // the post's words (`raw.translate(_WORD_BYTES).split()`)
        let mut tokens: Vec<Token> = Vec::with_capacity(32);
        let mut start = None;
        for (i, &b) in raw.iter().enumerate() {
            if kept(b) {
                start.get_or_insert(i);
            } else if let Some(a) = start.take() {
                tokens.push(Token {
                    low: &lowered[a..i],
                    cased: &raw[a..i],
                    word: None,
                });
            }
        }
        if let Some(a) = start {
            tokens.push(Token {
                low: &lowered[a..],
                cased: &raw[a..],
                word: None,
            });
        }
        let mut found_bits = 0u8;
        let mut found: Vec<&Word> = Vec::new();
        for token in tokens.iter_mut() {
            token.word = self.words.get(token.low);
            if let Some(word) = token.word {
                found_bits |= word.bits;
                found.push(word);
            }
        }
        if found_bits & PHRASE_FIRST != 0 && found_bits & PHRASE_SECOND != 0 {
            // `CoinMatcher._phrase_spans` + `_join`: multi-word names become one token
            let mut joined: Vec<Token> = Vec::with_capacity(tokens.len());
            let mut k = 0;
            while k < tokens.len() {
                let mut step = 1;
                let mut token = tokens[k];
                if token.word.is_some_and(|w| w.bits & PHRASE_FIRST != 0) {
                    for (rest, name) in self.phrases.get(token.low).into_iter().flatten() {
                        if k + 1 + rest.len() <= tokens.len()
                            && rest
                                .iter()
                                .enumerate()
                                .all(|(j, r)| tokens[k + 1 + j].low == &r[..])
                        {
                            step = 1 + rest.len();
                            token = Token {
                                low: name,
                                cased: name,
                                word: self.words.get(&name[..]),
                            };
                            if let Some(word) = token.word.filter(|w| w.bits & VOCAB != 0) {
                                found_bits |= word.bits;
                                found.push(word);
                            }
                            break;
                        }
                    }
                }
                joined.push(token);
                k += step;
            }
            tokens = joined;
        }
        let hits = || {
            tokens
                .iter()
                .filter_map(|t| t.word)
                .filter(|w| w.bits & VOCAB != 0)
        };
        let glued = found_bits & GLUED != 0;
        let other_script = !raw.is_ascii() && raw.iter().any(|&b| other_script_byte(b));
        if hits().next().is_none() && !glued && !other_script {
            return true;
        }
        let joined = raw.iter().any(|&b| matches!(b, b'/' | b'-' | b'_'));
        let quick = !glued
            && !other_script
            && found_bits & NEGATIVE == 0
            && hits().all(|hit| {
                hit.bits & QUICK != 0
                    && !(joined && hit.bits & STABLE != 0)
                    && hit.rules.is_none_or(|r| {
                        let rules = &self.rules[r as usize];
                        !found.iter().any(|w| rules.contains(&w.id))
                    })
            });
        if quick {
            // The common case: only unambiguous terms in a post with no word of another field.
            out.extend(hits().map(|h| h.ticker));
        } else {
            let Some(scoring) = &self.scoring else {
                return false;
            };
            if !scoring.decide(text, &raw, &tokens, &found, glued, other_script, out) {
                return false;
            }
        }
        out.sort_unstable_by(|a, b| {
            self.ticker_names[*a as usize].cmp(&self.ticker_names[*b as usize])
        });
        out.dedup();
        true
    }
}

/// `d[key]`, extracted.
fn item<'py, T: pyo3::conversion::FromPyObjectOwned<'py>>(
    d: &Bound<'py, PyDict>,
    key: &str,
) -> PyResult<T> {
    match d.get_item(key)? {
        Some(value) => value.extract().map_err(Into::into),
        None => Err(pyo3::exceptions::PyKeyError::new_err(key.to_owned())),
    }
}

fn table(entries: Vec<(Vec<u8>, f64)>) -> Map<Box<[u8]>, f64> {
    entries
        .into_iter()
        .map(|(k, v)| (k.into_boxed_slice(), v))
        .collect()
}

fn word_set(entries: Vec<Vec<u8>>) -> Set<Box<[u8]>> {
    entries.into_iter().map(Vec::into_boxed_slice).collect()
}

/// A term of the table handed over (`_Term`): key, ticker, prior upper and lower, placed,
/// local, own rules before and after, own weight, floor.
type TermRow = (
    Vec<u8>,
    String,
    f64,
    f64,
    bool,
    bool,
    Vec<(Vec<u8>, f64)>,
    Vec<(Vec<u8>, f64)>,
    f64,
    f64,
);

impl CoinQuick {
    /// The `Scoring` of the dict handed over, attached to `self.words`; None when a weight is
    /// not a multiple of `WEIGHT_UNIT`.
    fn scoring(&mut self, d: &Bound<'_, PyDict>) -> PyResult<Option<Scoring>> {
        let mut weights: Vec<f64> = Vec::new();
        let mut terms = Vec::new();
        for row in item::<Vec<TermRow>>(d, "terms")? {
            let (key, name, upper, lower, placed, local, before, after, own, floor) = row;
            weights.extend([upper, lower, own, floor]);
            weights.extend(before.iter().chain(&after).map(|(_, w)| *w));
            let id = terms.len() as u32;
            terms.push(Term {
                ticker: self.ticker_id(name),
                prior_upper: upper,
                prior_lower: lower,
                placed,
                local,
                before: table(before),
                after: table(after),
                own,
                floor,
            });
            self.word_mut(&key)?.term = Some(id);
        }
        for (key, weight, field, apart) in
            item::<Vec<(Vec<u8>, f64, Option<u32>, Option<u32>)>>(d, "words")?
        {
            weights.push(weight);
            self.word_mut(&key)?.evidence = Some(Evidence {
                weight,
                field,
                apart,
            });
        }
        for key in item::<Vec<Vec<u8>>>(d, "neighbours")? {
            self.word_mut(&key)?.neighbour = true;
        }
        for (key, base, quote) in item::<Vec<(Vec<u8>, String, Option<String>)>>(d, "glued")? {
            let base = self.ticker_id(base);
            let quote = quote.map(|q| self.ticker_id(q));
            self.word_mut(&key)?.glued = Some((base, quote));
        }
        let mut pair_bases = Map::default();
        for (key, name) in item::<Vec<(Vec<u8>, String)>>(d, "pair_bases")? {
            pair_bases.insert(key.into_boxed_slice(), self.ticker_id(name));
        }
        let mut script_terms = Vec::new();
        for (term, anchored, name, weight, ruled) in
            item::<Vec<(String, bool, Option<String>, f64, bool)>>(d, "scripts")?
        {
            weights.push(weight);
            let kind = match name {
                _ if ruled => ScriptKind::Ruled,
                Some(name) => ScriptKind::Name(self.ticker_id(name), weight),
                None => ScriptKind::Word(weight),
            };
            script_terms.push(ScriptTerm {
                chars: term.chars().collect(),
                anchored,
                kind,
            });
        }
        let known = script_terms.len() as u32;
        let hints: Vec<(char, Vec<u32>)> = item(d, "hints")?;
        let latin: Vec<u32> = item(d, "latin")?;
        if hints
            .iter()
            .flat_map(|h| &h.1)
            .chain(&latin)
            .any(|&t| t >= known)
        {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a script hint is not a term of the table",
            ));
        }
        let scripts = Scripts {
            term_chars: script_terms.iter().flat_map(|t| t.chars.clone()).collect(),
            terms: script_terms,
            hints: hints.into_iter().collect(),
            latin,
            lower_of: item::<Vec<(char, char)>>(d, "lower_of")?
                .into_iter()
                .collect(),
            word_ranges: item(d, "word_ranges")?,
        };
        let before: Vec<(Vec<u8>, f64)> = item(d, "before")?;
        let after: Vec<(Vec<u8>, f64)> = item(d, "after")?;
        let apart_caps: Vec<f64> = item(d, "apart_caps")?;
        weights.extend(before.iter().chain(&after).map(|(_, w)| *w));
        weights.extend(&apart_caps);
        let scoring = Scoring {
            terms,
            threshold: item(d, "threshold")?,
            pair: item(d, "pair")?,
            cap_post_positive: item(d, "cap_post_positive")?,
            cap_post_negative: item(d, "cap_post_negative")?,
            cap_other_coins: item(d, "cap_other_coins")?,
            cap_local: item(d, "cap_local")?,
            other_coin: item(d, "other_coin")?,
            list_neighbour: item(d, "list_neighbour")?,
            list_candidate: item(d, "list_candidate")?,
            compound: item(d, "compound")?,
            first_of_field: item(d, "first_of_field")?,
            apart_caps,
            before: table(before),
            after: table(after),
            determiners: word_set(item(d, "determiners")?),
            list_fillers: word_set(item(d, "list_fillers")?),
            pair_bases,
            stable_quotes: word_set(item(d, "stable_quotes")?),
            coin_quotes: word_set(item(d, "coin_quotes")?),
            scripts,
        };
        weights.extend([
            scoring.threshold,
            scoring.pair,
            scoring.cap_post_positive,
            scoring.cap_post_negative,
            scoring.cap_other_coins,
            scoring.cap_local,
            scoring.other_coin,
            scoring.list_neighbour,
            scoring.list_candidate,
            scoring.compound,
            scoring.first_of_field,
        ]);
        // Sums of such weights are exact in any order, as Python's float sums over sets are.
        let exact = weights
            .iter()
            .all(|w| w.abs() < 1e6 && (w / WEIGHT_UNIT).fract() == 0.0);
        Ok(exact.then_some(scoring))
    }

    fn ticker_id(&mut self, name: String) -> u32 {
        match self.ticker_names.iter().position(|t| *t == name) {
            Some(i) => i as u32,
            None => {
                self.ticker_names.push(name);
                (self.ticker_names.len() - 1) as u32
            }
        }
    }

    fn word_mut(&mut self, key: &[u8]) -> PyResult<&mut Word> {
        self.words.get_mut(key).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err("a scoring word is not a word of the table")
        })
    }
}

#[pymethods]
impl CoinQuick {
    /// ``words``: (word, bits, ticker or None, rule words or None) for every word the matcher
    /// looks up; bits: 1 a term, 2 decided without scoring, 4 a word of another field,
    /// 8 a stablecoin term, 16/32 first/second word of a multi-word name, 64 a glued pair.
    /// ``phrases``: (first word, [(other words, joined token)], longest first).
    /// ``scoring``: the terms and the evidence (see `CoinMatcher._compiled`), or None to
    /// decide the common case only.
    #[new]
    #[pyo3(signature = (words, phrases, scoring=None))]
    #[allow(clippy::type_complexity)]
    fn new(
        py: Python<'_>,
        words: Vec<(Vec<u8>, u8, Option<String>, Option<Vec<Vec<u8>>>)>,
        phrases: Vec<(Vec<u8>, Vec<(Vec<Vec<u8>>, Vec<u8>)>)>,
        scoring: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let ids: Map<Vec<u8>, u32> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.0.clone(), i as u32))
            .collect();
        let mut this = CoinQuick {
            words: Map::default(),
            rules: Vec::new(),
            tickers: Vec::new(),
            ticker_names: Vec::new(),
            phrases: Map::default(),
            scoring: None,
        };
        for (id, (word, bits, ticker, rule_words)) in words.into_iter().enumerate() {
            let ticker = match ticker {
                Some(t) => this.ticker_id(t),
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
                    this.rules.push(set);
                    Some((this.rules.len() - 1) as u32)
                }
            };
            let info = Word {
                id: id as u32,
                bits,
                ticker,
                rules: rules_at,
                term: None,
                evidence: None,
                neighbour: false,
                glued: None,
            };
            this.words.insert(word.into_boxed_slice(), info);
        }
        this.phrases = phrases
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
        if let Some(d) = scoring {
            this.scoring = this.scoring(d)?;
        }
        this.tickers = this
            .ticker_names
            .iter()
            .map(|t| PyString::new(py, t).unbind())
            .collect();
        Ok(this)
    }

    /// For each text, its tickers (sorted) when the compiled matcher decides it, else None.
    fn mentions_many<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        // the texts back to back (`ends[i]` where text i ends; None: lone surrogates), decided
        // without the GIL, so the processor's writer threads run meanwhile
        let mut all = String::new();
        let mut ends: Vec<Option<usize>> = Vec::with_capacity(texts.len());
        for item in texts.iter() {
            match item.cast::<PyString>()?.to_str() {
                Ok(text) => {
                    all.push_str(text);
                    ends.push(Some(all.len()));
                }
                Err(_) => ends.push(None),
            }
        }
        // per text: None (undecided) or the range of its tickers in `tickers`
        let mut decided: Vec<Option<(usize, usize)>> = Vec::with_capacity(ends.len());
        let mut tickers: Vec<u32> = Vec::new();
        py.detach(|| {
            let (mut start, mut found) = (0, Vec::new());
            // a text already in the batch (a retweet, a bot farm's copy) is decided once
            let mut first: Map<&str, usize> =
                Map::with_capacity_and_hasher(ends.len(), Default::default());
            for end in &ends {
                let Some(end) = *end else {
                    decided.push(None);
                    continue;
                };
                let text = &all[start..end];
                start = end;
                match first.entry(text) {
                    std::collections::hash_map::Entry::Occupied(seen) => {
                        decided.push(decided[*seen.get()]);
                        continue;
                    }
                    std::collections::hash_map::Entry::Vacant(new) => {
                        new.insert(decided.len());
                    }
                }
                if self.decide(text, &mut found) {
                    decided.push(Some((tickers.len(), tickers.len() + found.len())));
                    tickers.extend_from_slice(&found);
                } else {
                    decided.push(None);
                }
            }
        });
        // lists made at their length (none grows)
        let mut out: Vec<Bound<'py, PyAny>> = Vec::with_capacity(decided.len());
        for range in decided {
            out.push(match range {
                Some((from, to)) => PyList::new(
                    py,
                    tickers[from..to]
                        .iter()
                        .map(|&t| self.tickers[t as usize].bind(py)),
                )?
                .into_any(),
                None => py.None().into_bound(py),
            });
        }
        PyList::new(py, out)
    }
}
