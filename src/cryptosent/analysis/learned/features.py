"""The student's features: hashed word, bigram, character and emoji n-grams of a post.

This module is the reference definition; the compiled core (``rust/vader_core``) computes the
same indices bit for bit, and a test compares the two on every labelled text. Pure: no I/O.

How a post becomes features (docs/sentiment.md has the rationale):
1. lower-cased (Python's ``str.lower``); runs of 3+ identical characters squashed to 2;
2. split into tokens: words (letters, digits, marks, CJK runs, inner apostrophes), cashtags
   (``$btc``), emoji (one token each, presentation selectors and skin tones dropped), URLs
   (``<url>``), mentions (``<user>``), numbers as shapes (``<num>``, ``<num>k``, ``<+pct>``,
   ``<-pct>``); ``#`` is dropped from hashtags;
3. features: ``w|tok`` for each token, ``b|t1 t2`` for neighbours, ``n|tok`` for the three
   tokens after a negation, ``c|gram`` for 3- and 4-grams of each word (with ``<`` ``>``
   boundaries), ``p|!``, ``p|!!``, ``p|?``, ``p|caps``;
4. each feature string hashed with 32-bit FNV-1a over its UTF-8 bytes, modulo ``BUCKETS``;
   presence only (a feature counts once), and the vector is scaled to unit length.
"""

from __future__ import annotations

from collections.abc import Iterator

BUCKETS = 1 << 18
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193

_SPACES = frozenset(" \t\n\r\x0b\x0c\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_DROPPED = frozenset({0xFE0E, 0xFE0F, 0x200D, 0x200B, 0x200C, *range(0x1F3FB, 0x1F400)})
_NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "dont",
        "don't",
        "cant",
        "can't",
        "wont",
        "won't",
        "isnt",
        "isn't",
        "aint",
        "ain't",
        "cannot",
        "nobody",
        "nothing",
        "nor",
        "neither",
        "without",
        "didnt",
        "didn't",
        "doesnt",
        "doesn't",
        "wasnt",
        "wasn't",
        "arent",
        "aren't",
        "shouldnt",
        "shouldn't",
        "wouldnt",
        "wouldn't",
        "havent",
        "haven't",
        "hasnt",
        "hasn't",
        "nope",
        "nah",
    ]
)
_NEGATION_SPAN = 3


def fnv1a(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes of ``text``."""
    h = FNV_OFFSET
    for byte in text.encode("utf-8", "surrogatepass"):
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h


def _is_symbol(cp: int) -> bool:
    """Emoji and pictographs: each is a token of its own."""
    return (
        0x2190 <= cp <= 0x2BFF
        or 0x1F000 <= cp <= 0x1FAFF
        or cp in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D)
    )


def _is_separator(ch: str, cp: int) -> bool:
    """Characters that end a word and are no token: spaces and punctuation blocks."""
    return (
        ch in _SPACES
        or ch in _ASCII_PUNCT
        or 0x2010 <= cp <= 0x205E
        or 0x3001 <= cp <= 0x303F
        or 0xFF01 <= cp <= 0xFF0F
        or 0xFF1A <= cp <= 0xFF20
        or 0xFF3B <= cp <= 0xFF40
        or 0xFF5B <= cp <= 0xFF65
        or cp in (0x00AB, 0x00BB, 0x00BF, 0x00A1, 0x00B7)
    )


def _squash(text: str) -> str:
    out: list[str] = []
    run = 0
    prev = ""
    for ch in text:
        run = run + 1 if ch == prev else 1
        prev = ch
        if run <= 2:
            out.append(ch)
    return "".join(out)


def _number_shape(word: str, sign: str, percent: bool) -> str:
    suffix = word.lstrip("0123456789.,")
    if percent:
        return "<+pct>" if sign == "+" else "<-pct>" if sign == "-" else "<pct>"
    if suffix and len(suffix) <= 2:
        return "<num>" + suffix
    return "<num>" if not suffix else word


def tokens(text: str) -> tuple[list[str], bool, int, bool]:
    """The tokens of ``text``, and whether it has a word in capitals, '!' count, and a '?'."""
    caps = any(len(w) >= 3 and w.isalpha() and w.isupper() for w in text.split() if w.isascii())
    low = _squash(text.lower()).replace("\u2019", "'")
    out: list[str] = []
    n = len(low)
    i = 0
    bangs = low.count("!")
    question = "?" in low
    while i < n:
        ch = low[i]
        cp = ord(ch)
        if cp in _DROPPED:
            i += 1
            continue
        if _is_symbol(cp):
            out.append(ch)
            i += 1
            continue
        if _is_separator(ch, cp) and not (ch in "$@" and i + 1 < n and _word_char(low[i + 1])):
            i += 1
            continue
        start = i
        if ch in "$@":
            i += 1
        while i < n and (
            _word_char(low[i])
            or (low[i] == "'" and i + 1 < n and _word_char(low[i + 1]) and i > start)
        ):
            i += 1
        word = low[start:i]
        if word.startswith("@"):
            out.append("<user>")
        elif word.startswith(("http", "www")) and i < n and low[i] in ":./":
            while i < n and low[i] not in _SPACES:
                i += 1
            out.append("<url>")
        elif word.lstrip("$")[:1].isdigit() and word.lstrip("$")[:1].isascii():
            # numbers may carry decimals and thousands: 67.4k, 1,000
            while i + 1 < n and low[i] in ".," and low[i + 1].isdigit() and low[i + 1].isascii():
                i += 1
                while i < n and _word_char(low[i]):
                    i += 1
                word = low[start:i]
            back = start - 1
            sign = low[back] if back >= 0 and low[back] in "+-" else ""
            if back >= 0 and low[back] == "\u2212":
                sign = "-"
            percent = i < n and low[i] == "%"
            shape = _number_shape(word.lstrip("$"), sign, percent)
            out.append("$" + shape if word.startswith("$") else shape)
        elif word:
            out.append(word)
        if i == start:
            i += 1
    return out, caps, bangs, question


def _word_char(ch: str) -> bool:
    cp = ord(ch)
    return not (_is_separator(ch, cp) or _is_symbol(cp) or cp in _DROPPED)


def feature_strings(text: str) -> Iterator[str]:
    """Every feature string of ``text`` (duplicates possible; hashing dedupes)."""
    toks, caps, bangs, question = tokens(text)
    negated = 0
    prev = ""
    for tok in toks:
        yield "w|" + tok
        if prev:
            yield "b|" + prev + " " + tok
        if negated:
            yield "n|" + tok
            negated -= 1
        if tok in _NEGATORS or tok.endswith("n't"):
            negated = _NEGATION_SPAN
        if tok[0] != "<" and len(tok) > 1 and not _is_symbol(ord(tok[0])):
            padded = "<" + tok + ">"
            chars = len(padded)
            for size in (3, 4):
                for k in range(chars - size + 1):
                    yield "c|" + padded[k : k + size]
        prev = tok
    if bangs:
        yield "p|!"
    if bangs > 1:
        yield "p|!!"
    if question:
        yield "p|?"
    if caps:
        yield "p|caps"


def hashed(text: str) -> list[int]:
    """The sorted, distinct feature indices of ``text`` (each in ``0..BUCKETS``)."""
    return sorted({fnv1a(f) % BUCKETS for f in feature_strings(text)})
