//! The processor's decode of a batch of `tweets` messages straight into Arrow column buffers:
//! the contract columns of `cryptosent.batch.SCHEMA` and the few Python lists the scoring and
//! the campaign detector read (texts, ids, author keys, languages), without a Python object
//! per field.
//!
//! msgspec (`cryptosent.model.decode_tweet`) stays the judge of the contract. This decoder
//! accepts only what it is sure msgspec accepts with the same values: an object of the
//! contract's fields and no other, no duplicate field, strings valid UTF-8 without a lone
//! surrogate or NUL, a non-empty id, counters within PostgreSQL's bigint, `created_at` exactly
//! `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+00:00)` with a real date, and at most `max_bytes` bytes.
//! Every other message is handed back by index for msgspec to decide (a dead letter, or a
//! valid post in a form this decoder does not take: another offset, a lower-case `t`, ...).
//! `tests/unit/processor/test_decode_compiled.py` compares both decoders on mock posts, the
//! hostile corpus and mutated messages.

use std::borrow::Cow;
use std::fmt;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

use crate::Map;

/// A JSON string, borrowed from the message when it has no escape.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Strings;
        impl<'de> Visitor<'de> for Strings {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        deserializer.deserialize_str(Strings).map(Text)
    }
}

/// A deserializer that reads a struct only from a JSON object: serde's derived structs also
/// take an array of their fields in order, msgspec's do not.
struct ObjectsOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectsOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A struct that must come as a JSON object (`ObjectsOnly`).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(ObjectsOnly(deserializer)).map(Object)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireAuthor<'a> {
    #[serde(default, borrow)]
    id: Option<Text<'a>>,
    #[serde(default, borrow)]
    username: Option<Text<'a>>,
    #[serde(default)]
    followers: Option<u64>,
    #[serde(default)]
    verified: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMetrics {
    #[serde(default)]
    likes: Option<u64>,
    #[serde(default)]
    retweets: Option<u64>,
    #[serde(default)]
    replies: Option<u64>,
    #[serde(default)]
    quotes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTweet<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    text: Text<'a>,
    #[serde(borrow)]
    created_at: Text<'a>,
    #[serde(default, borrow)]
    author: Option<Object<WireAuthor<'a>>>,
    #[serde(default, borrow)]
    lang: Option<Text<'a>>,
    #[serde(default, borrow)]
    source: Option<Text<'a>>,
    #[serde(default, borrow)]
    retweet_of: Option<Text<'a>>,
    #[serde(default, borrow)]
    reply_to: Option<Text<'a>>,
    #[serde(default)]
    metrics: Option<Object<WireMetrics>>,
    // msgspec's `v: int = 1`: present, it must be an integer of 64 bits, signed or not
    #[serde(default)]
    #[allow(dead_code)]
    v: Integer,
}

/// Any JSON integer that fits 64 bits, signed or unsigned (msgspec's `int`); not a float.
#[derive(Default)]
struct Integer;

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Integers;
        impl Visitor<'_> for Integers {
            type Value = Integer;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E>(self, _: i64) -> Result<Integer, E> {
                Ok(Integer)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Integer, E> {
                Ok(Integer)
            }
        }
        deserializer.deserialize_any(Integers)
    }
}

const BIGINT_MAX: u64 = i64::MAX as u64;

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    let mut value = 0i64;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(value)
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+00:00)`, a real UTC time
/// from year 1 on; None for anything else (msgspec decides those).
pub fn utc_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let Some((b'.', tail)) = rest.split_first() {
        let count = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if count == 0 || count > 6 {
            return None;
        }
        micros = digits(&tail[..count])? * 10i64.pow(6 - count as u32);
        rest = &tail[count..];
    }
    if rest != b"Z" && rest != b"+00:00" {
        return None;
    }
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + micros)
}

/// A column of Arrow strings (32-bit offsets) being filled, with its validity bitmap.
#[derive(Default)]
struct Strings {
    offsets: Vec<i32>,
    data: Vec<u8>,
    valid: Bits,
}

impl Strings {
    fn push(&mut self, value: Option<&str>) -> bool {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        if let Some(value) = value {
            self.data.extend_from_slice(value.as_bytes());
        }
        self.valid.push(value.is_some());
        match i32::try_from(self.data.len()) {
            Ok(end) => {
                self.offsets.push(end);
                true
            }
            Err(_) => false,
        }
    }

    fn to_python<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let offsets = if self.offsets.is_empty() {
            PyBytes::new(py, &0i32.to_le_bytes())
        } else {
            le_bytes(py, self.offsets.iter().map(|o| o.to_le_bytes()))?
        };
        (
            self.valid.to_python(py),
            offsets,
            PyBytes::new(py, &self.data),
            self.valid.nulls,
        )
            .into_pyobject(py)
    }
}

/// An Arrow bitmap (least significant bit first) and how many of its bits are zero.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    len: usize,
    nulls: usize,
}

impl Bits {
    fn push(&mut self, bit: bool) {
        if self.len.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if bit {
            *self.bytes.last_mut().expect("pushed above") |= 1 << (self.len % 8);
        } else {
            self.nulls += 1;
        }
        self.len += 1;
    }

    /// The bitmap as bytes, or None when every bit is set (Arrow's "no nulls").
    fn to_python<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        (self.nulls > 0).then(|| PyBytes::new(py, &self.bytes))
    }
}

/// The values' bytes, written straight into a new `bytes` object (no byte-by-byte collect,
/// no second copy).
fn le_bytes<'py, const N: usize>(
    py: Python<'py>,
    values: impl ExactSizeIterator<Item = [u8; N]>,
) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, values.len() * N, |bytes| {
        for (chunk, value) in bytes.chunks_exact_mut(N).zip(values) {
            chunk.copy_from_slice(&value);
        }
        Ok(())
    })
}

/// The JSON producers like ours write (msgspec's encoder, `json.dumps`): an object of the
/// contract's fields in any order, strings without an escape or a control character, plain
/// unsigned integers, `true`/`false`, JSON's whitespace between tokens. Read by hand, a field
/// at a time, for a quarter of serde_json's instructions (its generic map and string machinery
/// is most of a message's decode). Whatever else a message holds (an escape, a null, a float, a
/// sign, a leading zero, an unknown or repeated field, a missing one, trailing bytes) makes it
/// give up, and serde_json reads the message as before: so it accepts nothing serde_json would
/// not, and reads what it accepts to the same values (`tests/unit/processor/
/// test_decode_compiled.py` compares the whole decoder with msgspec on mutated messages).
struct Plain<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Plain<'a> {
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.at) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let end = start + string_end(&self.text.as_bytes()[start..]);
        // an escape or a control character (serde_json refuses those), or no end: serde_json's
        if self.text.as_bytes().get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        // both ends are ASCII quotes: char boundaries of the valid UTF-8 text
        self.text.get(start..end)
    }

    /// Whether the next token is the string `name` (without an escape).
    fn key_is(&mut self, name: &str) -> bool {
        self.peek() == Some(b'"')
            && self.text.as_bytes()[self.at + 1..]
                .strip_prefix(name.as_bytes())
                .is_some_and(|rest| rest.first() == Some(&b'"'))
    }

    fn unsigned(&mut self) -> Option<u64> {
        self.peek()?;
        let rest = &self.text.as_bytes()[self.at..];
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        // none, a leading zero, a fraction or an exponent: serde_json's to read
        if n == 0 || (n > 1 && rest[0] == b'0') || matches!(rest.get(n), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut value = 0u64;
        for &b in &rest[..n] {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        self.at += n;
        Some(value)
    }

    fn boolean(&mut self) -> Option<bool> {
        let value = match self.peek()? {
            b't' => true,
            b'f' => false,
            _ => return None,
        };
        let word: &[u8] = if value { b"true" } else { b"false" };
        self.text.as_bytes()[self.at..].starts_with(word).then(|| {
            self.at += word.len();
            value
        })
    }

    /// The fields of an object, `field(self, key)` reading each value (false: give up); each
    /// key is named at most once (a bit per field in `names`).
    fn object(
        &mut self,
        names: &[&str],
        mut field: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        let mut seen = 0u32;
        let mut next = 0;
        loop {
            // producers write the fields in one order: the one after the last is tried first,
            // in place (a quote, its name, a quote)
            let index = match names.get(next) {
                Some(name) if self.key_is(name) => {
                    self.at += name.len() + 2;
                    next
                }
                _ => {
                    let key = self.string()?;
                    names.iter().position(|name| *name == key)?
                }
            };
            next = index + 1;
            if seen & (1 << index) != 0 {
                return None;
            }
            seen |= 1 << index;
            self.eat(b':')?;
            field(self, index)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Where a JSON string's body ends in `rest` (the message from the body on): the first '"',
/// '\\' or control character, or the end. Sixteen bytes a step with SSE2 (every x86_64 has it)
/// while sixteen are left in the message, which is nearly always: the closing braces follow.
fn string_end(rest: &[u8]) -> usize {
    let stop = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of every x86_64 target, and each load reads 16 bytes inside
        // `rest` (i + 16 <= len)
        unsafe {
            let (quote, slash, control) = (
                _mm_set1_epi8(b'"' as i8),
                _mm_set1_epi8(b'\\' as i8),
                _mm_set1_epi8(0x1F),
            );
            while i + 16 <= rest.len() {
                let v = _mm_loadu_si128(rest.as_ptr().add(i).cast::<__m128i>());
                // a byte is a control character when min(byte, 0x1F) is the byte (unsigned)
                let hits = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                    _mm_cmpeq_epi8(_mm_min_epu8(v, control), v),
                );
                let mask = _mm_movemask_epi8(hits);
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    i + rest[i..]
        .iter()
        .position(|&b| stop(b))
        .unwrap_or(rest.len() - i)
}

const TWEET_FIELDS: [&str; 10] = [
    "id",
    "text",
    "created_at",
    "author",
    "lang",
    "source",
    "retweet_of",
    "reply_to",
    "metrics",
    "v",
];
const AUTHOR_FIELDS: [&str; 4] = ["id", "username", "followers", "verified"];
const METRICS_FIELDS: [&str; 4] = ["likes", "retweets", "replies", "quotes"];

fn borrowed(text: &str) -> Text<'_> {
    Text(Cow::Borrowed(text))
}

/// A message in the plain form `Plain` reads, or None: serde_json decides.
fn plain(text: &str) -> Option<WireTweet<'_>> {
    let mut reader = Plain { text, at: 0 };
    let (mut id, mut body, mut created_at) = (None, None, None);
    let mut wire = WireTweet {
        id: borrowed(""),
        text: borrowed(""),
        created_at: borrowed(""),
        author: None,
        lang: None,
        source: None,
        retweet_of: None,
        reply_to: None,
        metrics: None,
        v: Integer,
    };
    reader.object(&TWEET_FIELDS, |r, field| {
        match field {
            0 => id = Some(r.string()?),
            1 => body = Some(r.string()?),
            2 => created_at = Some(r.string()?),
            3 => {
                let mut author = WireAuthor {
                    id: None,
                    username: None,
                    followers: None,
                    verified: None,
                };
                r.object(&AUTHOR_FIELDS, |r, field| {
                    match field {
                        0 => author.id = Some(borrowed(r.string()?)),
                        1 => author.username = Some(borrowed(r.string()?)),
                        2 => author.followers = Some(r.unsigned()?),
                        _ => author.verified = Some(r.boolean()?),
                    }
                    Some(())
                })?;
                wire.author = Some(Object(author));
            }
            4 => wire.lang = Some(borrowed(r.string()?)),
            5 => wire.source = Some(borrowed(r.string()?)),
            6 => wire.retweet_of = Some(borrowed(r.string()?)),
            7 => wire.reply_to = Some(borrowed(r.string()?)),
            8 => {
                let mut counts = [None; 4];
                r.object(&METRICS_FIELDS, |r, field| {
                    counts[field] = Some(r.unsigned()?);
                    Some(())
                })?;
                let [likes, retweets, replies, quotes] = counts;
                wire.metrics = Some(Object(WireMetrics {
                    likes,
                    retweets,
                    replies,
                    quotes,
                }));
            }
            _ => {
                r.unsigned()?;
            }
        }
        Some(())
    })?;
    if reader.peek().is_some() {
        return None; // trailing bytes
    }
    wire.id = borrowed(id?);
    wire.text = borrowed(body?);
    wire.created_at = borrowed(created_at?);
    Some(wire)
}

/// A message this decoder is sure of, its fields borrowed where they can be.
struct Sure<'a> {
    wire: WireTweet<'a>,
    micros: i64,
}

fn sure(raw: &[u8], max_bytes: usize) -> Option<Sure<'_>> {
    if raw.len() > max_bytes {
        return None;
    }
    // valid UTF-8 as a whole (invalid bytes fail parsing anyway: in a string serde_json refuses
    // them, outside one they are no JSON), checked in one pass: then no string is checked alone
    let text = std::str::from_utf8(raw).ok()?;
    let wire = match plain(text) {
        Some(wire) => wire,
        None => {
            let mut json = serde_json::Deserializer::from_str(text);
            let Object(wire) = Object::<WireTweet<'_>>::deserialize(&mut json).ok()?;
            json.end().ok()?;
            wire
        }
    };
    let (id, text) = (&wire.id.0, &wire.text.0);
    if id.is_empty() || id.contains('\0') || text.contains('\0') {
        return None;
    }
    // an escaped date is msgspec's to read
    let Cow::Borrowed(created_at) = wire.created_at.0 else {
        return None;
    };
    let micros = utc_micros(created_at)?;
    if let Some(Object(author)) = &wire.author {
        if author.followers.is_some_and(|f| f > BIGINT_MAX) {
            return None;
        }
    }
    if let Some(Object(m)) = &wire.metrics {
        if [m.likes, m.retweets, m.replies, m.quotes]
            .iter()
            .flatten()
            .any(|&c| c > BIGINT_MAX)
        {
            return None;
        }
    }
    Some(Sure { wire, micros })
}

fn text_of<'b>(value: &'b Option<Text<'_>>) -> Option<&'b str> {
    value.as_ref().map(|t| t.0.as_ref())
}

/// Decode a batch of message values (bytes). Returns `(unsure, n, columns, texts, ids,
/// authors, langs)`: the indices of the values left to msgspec; the number of decoded posts;
/// the contract columns in `SCHEMA` order (`id`, `created_at`, `text`, `author_id`,
/// `author_username`, `author_followers`, `author_verified`, `lang`, `source`, `retweet_of`,
/// `reply_to`), each `(validity or None, buffers..., null count)` (strings: offsets and data;
/// `created_at`: int64 microseconds; `author_followers`: int64; `author_verified`: a bitmap);
/// and, one item per decoded post, its text, its id, the campaign detector's author key (the
/// author's id, else its username, else `?` and the post's id: `post_columns_from_tweets`)
/// and its language (one string object per distinct language).
#[pyfunction]
pub fn decode_tweets<'py>(
    py: Python<'py>,
    raws: &Bound<'py, PyList>,
    max_bytes: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut unsure = Vec::new();
    let mut id = Strings::default();
    let mut created = Vec::with_capacity(raws.len());
    let mut text = Strings::default();
    let (mut author_id, mut username) = (Strings::default(), Strings::default());
    let (mut followers, mut followers_valid) = (Vec::with_capacity(raws.len()), Bits::default());
    let (mut verified, mut verified_valid) = (Bits::default(), Bits::default());
    let (mut lang, mut source) = (Strings::default(), Strings::default());
    let (mut retweet_of, mut reply_to) = (Strings::default(), Strings::default());
    // the lists' items, made into lists of the right length at the end (no list grows)
    let (mut texts, mut ids, mut authors, mut langs): (
        Vec<Bound<'py, PyAny>>,
        Vec<_>,
        Vec<_>,
        Vec<_>,
    ) = (
        Vec::with_capacity(raws.len()),
        Vec::with_capacity(raws.len()),
        Vec::with_capacity(raws.len()),
        Vec::with_capacity(raws.len()),
    );
    let mut lang_objects: Map<String, Py<PyString>> = Map::default();
    let values = raws
        .iter()
        .map(|item| item.cast_into::<PyBytes>())
        .collect::<Result<Vec<_>, _>>()?;
    let slices: Vec<&[u8]> = values.iter().map(|bytes| bytes.as_bytes()).collect();
    // the parsing needs no Python object: other threads (the sinks') run meanwhile
    let parsed: Vec<Option<Sure<'_>>> =
        py.detach(|| slices.iter().map(|raw| sure(raw, max_bytes)).collect());
    for (i, item) in parsed.into_iter().enumerate() {
        let Some(Sure { wire, micros }) = item else {
            unsure.push(i);
            continue;
        };
        let author = wire.author.as_ref().map(|Object(a)| a);
        let (a_id, a_name) = match author {
            Some(a) => (text_of(&a.id), text_of(&a.username)),
            None => (None, None),
        };
        let mut fits = id.push(Some(&wire.id.0));
        created.push(micros);
        fits &= text.push(Some(&wire.text.0));
        fits &= author_id.push(a_id);
        fits &= username.push(a_name);
        let count = author.and_then(|a| a.followers);
        followers.push(count.unwrap_or(0) as i64);
        followers_valid.push(count.is_some());
        let ticked = author.and_then(|a| a.verified);
        verified.push(ticked.unwrap_or(false));
        verified_valid.push(ticked.is_some());
        let language = text_of(&wire.lang);
        fits &= lang.push(language);
        fits &= source.push(text_of(&wire.source));
        fits &= retweet_of.push(text_of(&wire.retweet_of));
        fits &= reply_to.push(text_of(&wire.reply_to));
        if !fits {
            return Err(pyo3::exceptions::PyOverflowError::new_err(
                "a batch's strings are over 2 GiB: decode it in parts",
            ));
        }
        texts.push(PyString::new(py, &wire.text.0).into_any());
        ids.push(PyString::new(py, &wire.id.0).into_any());
        // the detector's author key: the id, else the username (empty strings do not count)
        authors.push(
            match a_id
                .filter(|s| !s.is_empty())
                .or(a_name.filter(|s| !s.is_empty()))
            {
                Some(key) => PyString::new(py, key),
                None => PyString::new(py, &format!("?{}", wire.id.0)),
            }
            .into_any(),
        );
        langs.push(match language {
            None => py.None().into_bound(py),
            Some(code) => match lang_objects.get(code) {
                Some(object) => object.bind(py).clone().into_any(),
                None => {
                    let object = PyString::new(py, code);
                    lang_objects.insert(code.to_owned(), object.clone().unbind());
                    object.into_any()
                }
            },
        });
    }
    let n = created.len();
    let columns = PyList::new(
        py,
        [
            id.to_python(py)?.into_any(),
            (
                py.None(),
                le_bytes(py, created.iter().map(|m| m.to_le_bytes()))?,
                0usize,
            )
                .into_pyobject(py)?
                .into_any(),
            text.to_python(py)?.into_any(),
            author_id.to_python(py)?.into_any(),
            username.to_python(py)?.into_any(),
            (
                followers_valid.to_python(py),
                le_bytes(py, followers.iter().map(|f| f.to_le_bytes()))?,
                followers_valid.nulls,
            )
                .into_pyobject(py)?
                .into_any(),
            (
                verified_valid.to_python(py),
                PyBytes::new(py, &verified.bytes),
                verified_valid.nulls,
            )
                .into_pyobject(py)?
                .into_any(),
            lang.to_python(py)?.into_any(),
            source.to_python(py)?.into_any(),
            retweet_of.to_python(py)?.into_any(),
            reply_to.to_python(py)?.into_any(),
        ],
    )?;
    (
        unsure,
        n,
        columns,
        PyList::new(py, texts)?,
        PyList::new(py, ids)?,
        PyList::new(py, authors)?,
        PyList::new(py, langs)?,
    )
        .into_pyobject(py)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(text: &str) -> Option<WireTweet<'_>> {
        let mut json = serde_json::Deserializer::from_str(text);
        let Object(wire) = Object::<WireTweet<'_>>::deserialize(&mut json).ok()?;
        json.end().ok()?;
        Some(wire)
    }

    /// Every field as text, to compare two reads.
    fn shown(wire: &WireTweet<'_>) -> String {
        let t = |v: &Option<Text<'_>>| v.as_ref().map(|t| t.0.to_string());
        let author = wire
            .author
            .as_ref()
            .map(|Object(a)| (t(&a.id), t(&a.username), a.followers, a.verified));
        let metrics = wire
            .metrics
            .as_ref()
            .map(|Object(m)| (m.likes, m.retweets, m.replies, m.quotes));
        format!(
            "{:?}",
            (
                &wire.id.0,
                &wire.text.0,
                &wire.created_at.0,
                author,
                t(&wire.lang),
                t(&wire.source),
                t(&wire.retweet_of),
                t(&wire.reply_to),
                metrics,
            )
        )
    }

    const MOCK: &str = r#"{"id":"2124805152568246603","text":"$BTC ETF inflows looking insane 🔥 #Bitcoin","created_at":"2026-11-23T10:00:00Z","author":{"id":"1486371035951803497","username":"gamblethomas","followers":458,"verified":false},"lang":"en","source":"mock","metrics":{"likes":16,"retweets":3,"replies":1,"quotes":0}}"#;

    #[test]
    fn string_end_finds_the_first_quote_backslash_or_control_character() {
        let scalar = |rest: &[u8]| {
            rest.iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(rest.len())
        };
        // every stop byte at every position of messages of 0 to 40 bytes, in ASCII and UTF-8
        for stop in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
            for len in 0..40 {
                for at in 0..=len {
                    let mut rest: Vec<u8> = "é-a🚀~\x7f".bytes().cycle().take(len).collect();
                    if at < len {
                        rest[at] = stop;
                    }
                    assert_eq!(string_end(&rest), scalar(&rest), "{rest:?}");
                }
            }
        }
    }

    #[test]
    fn the_plain_reader_takes_what_producers_write_as_serde_json_reads_it() {
        let cases = [
            MOCK.to_string(),
            MOCK.replace(",\"", ", \"").replace("\":", "\" :\t"),
            format!(" \n{MOCK}\r\n"),
            r#"{"text":"x","created_at":"2026-11-23T10:00:00Z","id":"1","v":1,"retweet_of":"9","reply_to":"8","author":{},"metrics":{}}"#.to_string(),
            r#"{"id":"1","text":"","created_at":"d","author":{"verified":true,"followers":18446744073709551615}}"#.to_string(),
            "{\"id\":\"1\",\"text\":\"a\u{7f}é\u{2028}\",\"created_at\":\"d\",\"metrics\":{\"quotes\":0}}".to_string(),
        ];
        for case in &cases {
            let read = plain(case).unwrap_or_else(|| panic!("not plain: {case}"));
            assert_eq!(shown(&read), shown(&serde(case).unwrap()), "{case}");
        }
    }

    #[test]
    fn the_plain_reader_leaves_everything_else_to_serde_json() {
        let cases = [
            MOCK.replace("insane", r"in\u0073ane"),
            MOCK.replace("insane", r#"in\"sane"#),
            MOCK.replace("insane", "in\tsane"),
            MOCK.replace(r#""lang":"en""#, r#""lang":null"#),
            MOCK.replace("458", "458.0"),
            MOCK.replace("458", "4e2"),
            MOCK.replace("458", "0458"),
            MOCK.replace("458", "-458"),
            MOCK.replace("458", "18446744073709551616"),
            MOCK.replace("false", "fals"),
            MOCK.replace("false", "0"),
            MOCK.replace(r#""source""#, r#""sauce""#),
            MOCK.replace(r#""source":"mock""#, r#""source":"mock","lang":"ja""#),
            MOCK.replace(r#""author":{"#, r#""author":{"id":"x","#),
            MOCK.replace(r#""id":"2124805152568246603","#, ""),
            MOCK.replace(r#""quotes":0}"#, r#""quotes":0,}"#),
            MOCK.replace(r#""id""#, r#""i\u0064""#),
            format!("{MOCK} x"),
            format!("[{MOCK}]"),
            MOCK[..MOCK.len() - 1].to_string(),
            r#"{"id":"1","text":"t","created_at":"d","v":-1}"#.to_string(),
            r#"{"id":"1","text":"t","created_at":"d","author":null}"#.to_string(),
            r#"{"id":"1","text":"t","created_at":"d","metrics":[]}"#.to_string(),
        ];
        for case in &cases {
            assert!(plain(case).is_none(), "{case}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(utc_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(utc_micros("1970-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(utc_micros("1969-12-31T23:59:59.999999+00:00"), Some(-1));
        assert_eq!(
            utc_micros("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000)
        );
        assert_eq!(utc_micros("2001-02-29T00:00:00Z"), None);
        assert_eq!(utc_micros("2026-11-29T10:00:00.1234567Z"), None);
        assert_eq!(utc_micros("2026-11-29t10:00:00Z"), None);
        assert_eq!(utc_micros("2026-11-29T10:00:00+01:00"), None);
        assert_eq!(utc_micros("0000-01-01T00:00:00Z"), None);
        assert_eq!(
            utc_micros("0001-01-01T00:00:00Z"),
            Some(-62_135_596_800_000_000)
        );
    }
}
