"""Bots, spam and coordinated campaigns: near-duplicate posts from many accounts in a short window.

A *campaign* is a cluster of near-identical posts (one template with small edits: other cashtags,
emoji, numbers, links, @mentions) written by many distinct accounts within ``window`` seconds,
most of them accounts of little reach. A post is *spam* when it belongs to a campaign or its
account behaves like a bot in the window (the same text again and again; mostly links from an
account of little reach; a link-only post from one).

How, per batch (docs/campaigns.md has the reasoning and the measured figures):

1. **Normalise** all texts of the batch at once: lower case; links, @mentions, cashtags, hashtags
   and numbers become one placeholder each, emoji and punctuation become spaces, letter runs
   are cut to two ("mooon" = "moon"). Template edits then leave the text (nearly) unchanged.
2. **Sign**: character 5-gram shingles of the normalised text, hashed with a fixed mixing function
   (the same in every process, unlike Python's ``hash``), summarised by a one-permutation MinHash
   of ``BINS`` values (Li, Owen, Zhang 2012): one hash per shingle instead of one per shingle and
   permutation, all of it numpy over the whole batch (or, with the compiled core, Rust text by
   text: the same numbers). Empty bins are kept as such; similarity is estimated over the bins
   filled in either text.
3. **Cluster** with LSH: ``BANDS`` bands of ``ROWS`` values (a band whose bins are all empty is
   left out). A post that shares a band with the last kept post that had it, or with the first
   post of the batch that has it, is linked to that post when their estimated Jaccard similarity
   reaches ``threshold``; clusters are the connected components, named by their oldest member,
   and clusters that a new post links are merged. Posts with fewer than ``min_words`` words
   ("gm", "LFG $SOL") and retweets are never clustered.
4. **Decide** per cluster: at least ``min_accounts`` distinct accounts, and the share of
   low-reach accounts (fewer than ``low_followers`` followers, not verified) is high with
   confidence (Wilson lower bound >= ``low_reach_share``), so a headline quoted by many real
   people or a popular phrase stays organic.

The campaign id is the id of the cluster's earliest post (by ``created_at``, then id), prefixed
``c``: the same whichever batches the posts came in and in whichever order. Flags of posts still
in the window are revised when a cluster grows into a campaign, clusters merge, an earlier post
renames a campaign, or an account turns out to be a bot; ``observe`` returns those revisions.
Observing a kept post again is a no-op, so a replay, or a detector rebuilt by observing the
stored posts of the last ``window``, gives the same answers; a post that already left the window
is taken as new.
"""

from __future__ import annotations

import bisect
import collections
import functools
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from cryptosent.analysis._native import CORE

if TYPE_CHECKING:
    from cryptosent.model import Tweet

__all__ = [
    "BANDS",
    "BINS",
    "ROWS",
    "SHINGLE",
    "CampaignDetector",
    "ColumnFlags",
    "Flag",
    "Observation",
    "Post",
    "PostColumns",
    "Signatures",
    "estimated_similarity",
    "normalise",
    "post_columns_from_tweets",
    "post_from_tweet",
    "sign",
]

SHINGLE: Final = 5
"""Characters per shingle."""
BINS: Final = 32
"""Values per MinHash signature (one-permutation hashing into this many bins)."""
BANDS: Final = 8
ROWS: Final = 4
"""LSH: ``BANDS`` bands of ``ROWS`` signature values each (BANDS * ROWS == BINS)."""

_U64 = np.uint64
_BIN_BITS: Final = 5  # log2(BINS)
_EMPTY: Final = _U64(2**64 - 1)
_VALUE_MASK: Final = _U64((1 << (64 - _BIN_BITS)) - 1)
_ROLL: Final = _U64(0x100000001B3)
_BAND_MULT: Final = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93], dtype=_U64
)
_ROW_MULT: Final = _BAND_MULT[:ROWS].copy()
_BAND_SALT: Final = np.arange(1, BANDS + 1, dtype=_U64) * _U64(0x9E3779B97F4A7C15)
_NEWLINE: Final = 10
_SPACE: Final = 32
# placeholders of normalised text: link, @mention, cashtag, hashtag (numbers become "0")
_LINK, _MENTION, _CASHTAG, _HASHTAG = (ord(c) for c in "~@$#")

_URL_RE: Final = re.compile(r"https?://\S+|www\.\S+")
_MENTION_RE: Final = re.compile(r"@\w+")
_CASHTAG_RE: Final = re.compile(r"\$[^\W\d_]\w*")
_HASHTAG_RE: Final = re.compile(r"#\w+")
_NUMBER_RE: Final = re.compile(r"\d[\d.,:]*")

U64Array = npt.NDArray[np.uint64]


def _word_table() -> npt.NDArray[np.bool_]:
    """Per codepoint: whether it stays in normalised text (letters, digits, placeholders, the
    line break between texts) or becomes a space (symbols, punctuation, emoji)."""
    c = np.arange(0x110000, dtype=np.uint32)
    ascii_word = np.zeros(128, dtype=bool)
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789~@$#\n":
        ascii_word[ord(ch)] = True
    word = np.where(c < 128, ascii_word[np.minimum(c, 127)], True)
    # symbols, punctuation, arrows, dingbats, CJK punctuation, emoji and their modifiers
    word &= ~(((c >= 0x2000) & (c < 0x3040)) | (c >= 0x1F000) | ((c >= 0xFE00) & (c < 0xFE10)))
    word &= (c != 0xD7) & (c != 0xF7) & ~((c >= 0x80) & (c < 0xC0))
    fullwidth = (c >= 0xFF01) & (c < 0xFF66)  # fullwidth punctuation, not fullwidth letters
    word &= ~(fullwidth & ~(((c >= 0xFF10) & (c < 0xFF1A)) | ((c >= 0xFF21) & (c < 0xFF3B))
                            | ((c >= 0xFF41) & (c < 0xFF5B))))  # fmt: skip
    table: npt.NDArray[np.bool_] = word
    return table


# one lookup per codepoint instead of a dozen comparisons over the batch
_WORD: Final = _word_table()

_EARLIER: Final = np.tri(BANDS, k=-1, dtype=bool)
"""``[j, i]``: band ``i`` comes before band ``j``."""

# the compiled core's clustering steps, when installed (rust/vader_core/src/campaigns.rs)
_SIMILAR_ROWS: Final = getattr(CORE, "similar_rows", None)
_BAND_GROUPS: Final = getattr(CORE, "band_groups", None)
_BAND_BUCKETS: Final = getattr(CORE, "BandBuckets", None)
_LINK_BATCH: Final = getattr(CORE, "link_batch", None)
_PAIR_COUNTS: Final = getattr(CORE, "PairCounts", None)
_CLUSTER_BOOKS: Final = getattr(CORE, "cluster_books", None)
_TEXT_FACTS: Final = getattr(CORE, "text_facts", None)
_STRING_TABLE: Final = getattr(CORE, "StringTable", None)


class Signatures(NamedTuple):
    """What ``sign`` computes for a batch of texts, one row per text."""

    minhash: U64Array
    """(n, BINS) one-permutation MinHash values (``2**64 - 1``: an empty bin)."""
    bands: U64Array
    """(n, BANDS) LSH keys (band index mixed in, so one dictionary holds all bands; 0: none)."""
    text_key: U64Array
    """(n,) one hash of the whole signature: equal for texts equal once normalised."""
    words: npt.NDArray[np.int64]
    """(n,) words of the normalised text that are not placeholders or numbers."""
    links: npt.NDArray[np.int64]
    """(n,) links in the text."""


def _mix(h: U64Array) -> U64Array:
    """splitmix64's finaliser, elementwise: a fixed, well-spread 64-bit hash."""
    h = h ^ (h >> _U64(30))  # a new array: the rest works in place on it
    h *= _U64(0xBF58476D1CE4E5B9)
    h ^= h >> _U64(27)
    h *= _U64(0x94D049BB133111EB)
    h ^= h >> _U64(31)
    return h


def _substitute(texts: Sequence[str]) -> str:
    """The batch as one lower-case string, texts on their own lines, placeholders substituted."""
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:
        joined = "\n".join(t.replace("\n", " ").replace("\r", " ") for t in texts)
    s = joined.lower()
    s = _URL_RE.sub(" ~ ", s)
    s = _MENTION_RE.sub(" @ ", s)
    s = _CASHTAG_RE.sub(" $ ", s)
    s = _HASHTAG_RE.sub(" # ", s)
    return _NUMBER_RE.sub("0", s)


def _codepoints(texts: Sequence[str]) -> npt.NDArray[np.uint32]:
    """Normalised codepoints of the batch: words, single spaces, one newline between texts."""
    c = np.frombuffer(_substitute(texts).encode("utf-32-le"), dtype=np.uint32)
    c = c[(c != 0x27) & (c != 0x2019)]  # apostrophes join: "don't" = "dont"
    c[~_WORD[c]] = _SPACE
    # drop a space after a space or a line break, and the third of three equal characters
    prev = np.concatenate(([_NEWLINE], c))[: len(c)]  # (a batch may have one character or none)
    prev2 = np.concatenate(([_NEWLINE, _NEWLINE], c))[: len(c)]
    keep = ~((c == _SPACE) & ((prev == _SPACE) | (prev == _NEWLINE)))
    # (never a line break: two empty texts in a row would lose one, and shift the rows after)
    keep &= ~((c == prev) & (c == prev2) & (c != _NEWLINE))
    c = c[keep]
    # and a space before a line break or at the very end
    nxt = np.concatenate((c[1:], [_NEWLINE]))
    out: npt.NDArray[np.uint32] = c[~((c == _SPACE) & (nxt == _NEWLINE))]
    return out


def normalise(texts: Sequence[str]) -> list[str]:
    """The normalised form of each text (what the shingles are taken from)."""
    if not texts:
        return []
    return _codepoints(texts).tobytes().decode("utf-32-le").split("\n")


_CODEPOINTS: Final = 0x110000
_ASK_PYTHON: Final = 0xFFFFFFFF
_CAPITAL_SIGMA: Final = 0x3A3


def _every_code_point() -> str:
    """All code points in order, lone surrogates included."""
    codes = np.arange(_CODEPOINTS, dtype=np.uint32)
    return codes.tobytes().decode("utf-32-le", "surrogatepass")


def _char_classes(every: str) -> bytes:
    """One byte per code point for the compiled signer: bits 1, 2, 4 for ``\\w``, ``\\d``,
    ``\\s`` of Python's ``re`` (found by those very patterns), 8 for kept by ``_WORD``."""
    classes = np.where(_WORD, np.uint8(8), np.uint8(0))
    for bit, pattern in ((1, r"\w+"), (2, r"\d+"), (4, r"\s+")):
        for match in re.finditer(pattern, every):
            classes[match.start() : match.end()] |= np.uint8(bit)
    return classes.tobytes()


def _lower_table(every: str) -> bytes:
    """Per code point (native-endian u32) for the compiled signer: ``str.lower()`` of it when
    that is one code point, else ``_ASK_PYTHON``, as for the capital sigma, whose form depends on
    its neighbours (every other code point lowers alone: CPython's ``lower_ucs4``)."""
    table = np.empty(_CODEPOINTS, dtype=np.uint32)
    step = 4096
    for start in range(0, _CODEPOINTS, step):
        chunk = every[start : start + step]
        lowered = chunk.lower()
        if len(lowered) == len(chunk):  # no code point lowers to several: they line up
            table[start : start + step] = np.frombuffer(
                lowered.encode("utf-32-le", "surrogatepass"), dtype=np.uint32
            )
        else:
            table[start : start + step] = [
                ord(low) if len(low := c.lower()) == 1 else _ASK_PYTHON for c in chunk
            ]
    table[_CAPITAL_SIGMA] = _ASK_PYTHON
    return table.tobytes()


@functools.cache
def _compiled_signer() -> Any:
    """The compiled core's ``CampaignSigner`` over Python's character classes and lower-case
    forms (made once, about 0.1 s), or None when the core is not installed or lacks it."""
    signer = getattr(CORE, "CampaignSigner", None)
    if signer is None:
        return None
    every = _every_code_point()
    return signer(_char_classes(every), _lower_table(every))


def warm_up() -> None:
    """Make the compiled signer's tables now (0.14 CPU s, a regex over every code point): a
    processor does it at start-up, not in its first batch, whose latency it would add to."""
    _compiled_signer()


def sign(texts: Sequence[str]) -> Signatures:
    """MinHash signatures, LSH band keys and word counts of a batch of texts (pure, no state).

    In the compiled core when it is installed (rust/vader_core/src/campaigns.rs, the same
    numbers as ``_sign_numpy``, text by text); a text with a lone surrogate is left to
    ``_sign_numpy``, which rejects it as it always has (``UnicodeEncodeError``)."""
    signer = _compiled_signer()
    if signer is None or not texts:
        return _sign_numpy(texts)
    batch = texts if isinstance(texts, list) else list(texts)
    n = len(batch)
    minhash, bands, text_key, words, links, fallback = signer.sign(batch)
    signatures = Signatures(
        np.frombuffer(minhash, dtype=_U64).reshape(n, BINS),
        np.frombuffer(bands, dtype=_U64).reshape(n, BANDS),
        np.frombuffer(text_key, dtype=_U64),
        np.frombuffer(words, dtype=np.int64),
        np.frombuffer(links, dtype=np.int64),
    )
    if fallback:
        for column, rows in zip(signatures, _sign_numpy([batch[i] for i in fallback]),
                                strict=True):  # fmt: skip
            column[fallback] = rows
    return signatures


def _sign_numpy(texts: Sequence[str]) -> Signatures:
    """``sign`` in numpy over the whole batch: the reference, and the path without the core."""
    n = len(texts)
    if n == 0:
        empty = np.zeros(0, dtype=_U64)
        zero = np.zeros(0, dtype=np.int64)
        return Signatures(np.zeros((0, BINS), dtype=_U64), np.zeros((0, BANDS), dtype=_U64),
                          empty, zero, zero)  # fmt: skip
    c = _codepoints(texts)
    newline = c == _NEWLINE
    before = np.concatenate(([0], np.cumsum(newline)))  # line breaks before each position
    doc_of = before[:-1]

    # words (not placeholders or numbers) and links per text
    content = ~newline & (c != _SPACE) & (c != ord("0"))
    content &= (c != _LINK) & (c != _MENTION) & (c != _CASHTAG) & (c != _HASHTAG)
    starts = content & ~np.concatenate(([False], content[:-1]))
    words = np.bincount(doc_of[starts], minlength=n).astype(np.int64)
    links = np.bincount(doc_of[c == _LINK], minlength=n).astype(np.int64)

    # shingles: rolling hash of SHINGLE codepoints, none across a line break
    m = len(c) - SHINGLE + 1
    if m > 0:
        c64 = c.astype(_U64)
        h = c64[:m].copy()
        for j in range(1, SHINGLE):  # in place: a batch holds hundreds of thousands
            h *= _ROLL
            h += c64[j : j + m]
        valid = before[SHINGLE : SHINGLE + m] == before[:m]
        h, doc = _mix(h[valid]), doc_of[:m][valid]
    else:
        h, doc = np.zeros(0, dtype=_U64), np.zeros(0, dtype=np.int64)

    # one-permutation hashing: the top bits pick the bin, the minimum of the rest is kept
    flat = np.full(n * BINS, _EMPTY, dtype=_U64)
    slot = doc.astype(np.intp) * BINS + (h >> _U64(64 - _BIN_BITS)).astype(np.intp)
    np.minimum.at(flat, slot, h & _VALUE_MASK)
    sig = flat.reshape(n, BINS)

    rows = sig.reshape(n, BANDS, ROWS) * _ROW_MULT  # wraps around 2**64, as meant
    bands = _mix(np.add.reduce(rows, axis=2, dtype=_U64) + _BAND_SALT)
    # a band of empty bins says nothing: short texts would all share it
    bands[(sig == _EMPTY).reshape(n, BANDS, ROWS).all(axis=2)] = 0
    text_key = _mix(np.bitwise_xor.reduce(bands * _ROW_MULT[0], axis=1))
    return Signatures(sig, bands, text_key, words, links)


def estimated_similarity(a: U64Array, b: U64Array) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures: equal bins among
    those that are not empty in both (the one-permutation estimator of Li, Owen and Zhang)."""
    both_empty = int(np.count_nonzero((a == _EMPTY) & (b == _EMPTY)))
    if both_empty == BINS:
        return 0.0
    return (int(np.count_nonzero(a == b)) - both_empty) / (BINS - both_empty)


def _text_facts(
    texts: Sequence[str],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Each text's Python ``hash`` (identical texts: only this process compares them) and
    whether it starts with "RT @" (a retweet written out). In the compiled core when installed:
    the same hash, taken without a Python call per text."""
    if _TEXT_FACTS is not None:
        hashes, retweets = _TEXT_FACTS(texts if isinstance(texts, list) else list(texts))
        return np.frombuffer(hashes, dtype=np.int64), np.frombuffer(retweets, dtype=bool)
    n = len(texts)
    retweet_text = map(str.startswith, texts, itertools.repeat("RT @"))
    return np.fromiter(map(hash, texts), np.int64, n), np.fromiter(retweet_text, bool, n)


def _runs(
    ordered: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Of sorted values: each distinct value, where its run starts, and the run's length."""
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(first)
    return ordered[starts], starts, np.diff(starts, append=len(ordered))


def _distinct(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The distinct values in increasing order (``np.unique``'s answer, by one sort: several
    times faster than ``np.unique`` on the batch's 20,000 values)."""
    return _runs(np.sort(values))[0]


def _first_in_row(values: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Of ``BANDS`` values per post (flat, post by post): whether each is the first of its value
    among its post's, or negative. A post that shares several bands with the same other post is
    compared with it once (the components do not depend on how often a link is seen)."""
    rows = values.reshape(-1, BANDS)
    repeated = ((rows[:, :, None] == rows[:, None, :]) & _EARLIER).any(axis=2)
    flat: npt.NDArray[np.bool_] = (~repeated | (rows < 0)).ravel()
    return flat


def _band_groups(
    keys: U64Array,
) -> tuple[U64Array, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A batch's band keys grouped by value: the distinct keys, the group of each position, and
    each group's first and last position. By a hash table in the compiled core when installed
    (groups in the order they first occur), else by sorting (groups in key order)."""
    if _BAND_GROUPS is not None:
        distinct, group, first, last = _BAND_GROUPS(keys)
        group, first, last = (np.frombuffer(b, dtype=np.int64) for b in (group, first, last))
        return np.frombuffer(distinct, dtype=_U64), group, first, last
    order = np.argsort(keys, kind="stable")  # positions in order within a key
    sorted_keys = keys[order]
    starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    firsts = np.flatnonzero(starts)
    group = np.empty(len(keys), dtype=np.int64)
    group[order] = np.cumsum(starts) - 1
    lasts = np.r_[firsts[1:], len(keys)] - 1
    return sorted_keys[firsts], group, order[firsts], order[lasts]


class _Buckets:
    """LSH buckets: band key -> seq of the last kept post that had it (never key 0, a band of
    empty bins). A hash table in the compiled core when installed, else a dict."""

    __slots__ = ("_last", "_native")

    def __init__(self) -> None:
        self._native = _BAND_BUCKETS() if _BAND_BUCKETS is not None else None
        self._last: dict[int, int] = {}

    def last_posts(self, keys: U64Array) -> npt.NDArray[np.int64]:
        """The seq kept for each key, -1 for none."""
        if self._native is not None:
            found: npt.NDArray[np.int64] = np.frombuffer(self._native.last_posts(keys), np.int64)
            return found
        get = self._last.get
        return np.fromiter(map(get, keys.tolist(), itertools.repeat(-1)), np.int64, len(keys))

    def update(self, keys: U64Array, seqs: npt.NDArray[np.int64]) -> None:
        """Keep ``seqs[k]`` for ``keys[k]``."""
        if self._native is not None:
            self._native.update(keys, seqs)
        else:
            self._last.update(zip(keys.tolist(), seqs.tolist(), strict=True))
            self._last.pop(0, None)

    def forget_before(self, seq: int) -> None:
        """Let go of the keys whose last post came before ``seq``."""
        if self._native is not None:
            self._native.forget_before(seq)
        else:
            self._last = {k: s for k, s in self._last.items() if s >= seq}

    def __len__(self) -> int:
        return len(self._native) if self._native is not None else len(self._last)

    @property
    def native(self) -> Any:
        """The compiled core's buckets, or None when they are a dict."""
        return self._native


class _Pairs:
    """Posts kept per (cluster, account), key ``label << 24 | account``: a pair's first post
    adds an account to its cluster, the last to leave takes it away. A hash table in the
    compiled core when installed, else a dict; the batch steps learn post by post which posts
    began or ended a pair."""

    __slots__ = ("_native", "_posts")

    def __init__(self) -> None:
        self._native = _PAIR_COUNTS() if _PAIR_COUNTS is not None else None
        self._posts: dict[int, int] = {}

    def enter(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Count one post per key; whether each began its pair (none of it was kept before)."""
        if self._native is not None:
            began: npt.NDArray[np.bool_] = np.frombuffer(self._native.enter(keys), dtype=bool)
            return began
        order = np.argsort(keys, kind="stable")
        distinct, runs, counts = _runs(keys[order])
        key_list = distinct.tolist()
        get = self._posts.get
        before = np.fromiter(map(get, key_list, itertools.repeat(0)), np.int64, len(key_list))
        self._posts.update(zip(key_list, (before + counts).tolist(), strict=True))
        began = np.zeros(len(keys), dtype=bool)
        began[order[runs[before == 0]]] = True  # the first post of each new pair
        return began

    def leave(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Let one post go per key (in order); whether each ended its pair (then forgotten)."""
        if self._native is not None:
            ended: npt.NDArray[np.bool_] = np.frombuffer(self._native.leave(keys), dtype=bool)
            return ended
        order = np.argsort(keys, kind="stable")
        distinct, runs, counts = _runs(keys[order])
        posts, gone = self._posts, []
        for key, count, last in zip(distinct.tolist(), counts.tolist(),
                                    order[runs + counts - 1].tolist(), strict=True):  # fmt: skip
            left = posts[key] - count
            if left:
                posts[key] = left
            else:
                del posts[key]
                gone.append(last)
        ended = np.zeros(len(keys), dtype=bool)
        ended[gone] = True
        return ended

    def pop(self, key: int) -> int:
        """Forget a pair; its posts (0 for none)."""
        if self._native is not None:
            return int(self._native.pop(key))
        return self._posts.pop(key, 0)

    def add(self, key: int, posts: int) -> int:
        """Add posts to a pair; the posts it had before (0 for none)."""
        if self._native is not None:
            return int(self._native.add(key, posts))
        before = self._posts.get(key, 0)
        self._posts[key] = before + posts
        return before

    def renumber(self, renumber: npt.NDArray[np.int64]) -> None:
        """Accounts renumbered (``renumber[account]``; negative: its pairs are forgotten)."""
        if self._native is not None:
            self._native.renumber(renumber)
            return
        mask = (1 << 24) - 1
        self._posts = {
            (key >> 24) << 24 | int(renumber[key & mask]): count
            for key, count in self._posts.items()
            if renumber[key & mask] >= 0
        }

    @property
    def native(self) -> Any:
        """The compiled core's table, or None when it is a dict."""
        return self._native

    def as_dict(self) -> dict[int, int]:
        """Every pair and its posts."""
        if self._native is not None:
            keys, posts = (np.frombuffer(b, dtype=np.int64) for b in self._native.items())
            return dict(zip(keys.tolist(), posts.tolist(), strict=True))
        return dict(self._posts)

    def __len__(self) -> int:
        return len(self._native) if self._native is not None else len(self._posts)


class _Ids:
    """The kept posts by id: id -> seq. A hash table in the compiled core when installed, else
    a dict."""

    __slots__ = ("_native", "_seq_of")

    def __init__(self) -> None:
        self._native = _STRING_TABLE() if _STRING_TABLE is not None else None
        self._seq_of: dict[str, int] = {}

    def add_new(self, ids: list[str], first: int) -> bool:
        """Keep the ids as seqs ``first``, ``first + 1``, ... when every one is new and none
        repeats (true); otherwise keep none of them (false)."""
        if self._native is not None:
            return bool(self._native.add_new(ids, first))
        seq_of = self._seq_of
        if not seq_of.keys().isdisjoint(ids) or len(set(ids)) != len(ids):
            return False
        seq_of.update(zip(ids, range(first, first + len(ids)), strict=True))
        return True

    def seqs(self, ids: list[str]) -> npt.NDArray[np.int64]:
        """The seq of each id, -1 for an id not kept."""
        if self._native is not None:
            found: npt.NDArray[np.int64] = np.frombuffer(self._native.get(ids), np.int64)
            return found
        get = self._seq_of.get
        return np.fromiter(map(get, ids, itertools.repeat(-1)), np.int64, len(ids))

    def remove(self, ids: list[str], start: int, stop: int) -> None:
        """Let go of the ids ``ids[start:stop]``."""
        if self._native is not None:
            self._native.remove(ids, start, stop)
        else:
            collections.deque(map(self._seq_of.__delitem__, ids[start:stop]), maxlen=0)

    def as_dict(self) -> dict[str, int]:
        """Every id kept and its seq."""
        if self._native is not None:
            return dict(self._native.items())
        return dict(self._seq_of)

    def __len__(self) -> int:
        return len(self._native) if self._native is not None else len(self._seq_of)


class _Accounts:
    """The accounts by author id -> account number (numbered from 0 in order of appearance, and
    renumbered when those with no kept post are let go). A hash table in the compiled core when
    installed, else a dict."""

    __slots__ = ("_code_of", "_native")

    def __init__(self) -> None:
        self._native = _STRING_TABLE() if _STRING_TABLE is not None else None
        self._code_of: dict[str, int] = {}

    def numbers(self, author_ids: list[str]) -> npt.NDArray[np.int64]:
        """Each account's number, new accounts numbered in order of appearance."""
        if self._native is not None:
            found: npt.NDArray[np.int64] = np.frombuffer(self._native.number(author_ids), np.int64)
            return found
        codes = self._code_of
        new = [author_id for author_id in dict.fromkeys(author_ids) if author_id not in codes]
        codes.update(zip(new, range(len(codes), len(codes) + len(new)), strict=True))
        return np.fromiter(map(codes.__getitem__, author_ids), np.int64, len(author_ids))

    def renumber(self, renumber: npt.NDArray[np.int64]) -> None:
        """Account ``code`` becomes ``renumber[code]``, or is let go where that is negative."""
        if self._native is not None:
            self._native.renumber(renumber)
            return
        self._code_of = {
            name: int(renumber[code]) for name, code in self._code_of.items() if renumber[code] >= 0
        }

    def as_dict(self) -> dict[str, int]:
        """Every account and its number."""
        if self._native is not None:
            return dict(self._native.items())
        return dict(self._code_of)

    def __len__(self) -> int:
        return len(self._native) if self._native is not None else len(self._code_of)


class Post(NamedTuple):
    """What the detector needs to know of one post."""

    id: str
    author_id: str
    created_at: float
    """Seconds since the epoch (``datetime.timestamp()``)."""
    text: str
    followers: int | None = None
    verified: bool = False
    retweet: bool = False
    """A retweet repeats someone else's words: never clustered, never counted as a repeat."""


def post_from_tweet(tweet: Tweet) -> Post:
    """The detector's view of a contract tweet (an unknown author counts as its own account)."""
    author = tweet.author
    author_id = (author.id or author.username) if author else None
    return Post(
        id=tweet.id,
        author_id=author_id or f"?{tweet.id}",
        created_at=tweet.created_at.timestamp(),
        text=tweet.text,
        followers=author.followers if author else None,
        verified=bool(author.verified) if author else False,
        retweet=tweet.retweet_of is not None,
    )


class PostColumns(NamedTuple):
    """A batch of posts column by column (what ``observe_columns`` takes): the fields of
    ``Post`` without one Python object per post."""

    ids: list[str]
    author_ids: list[str]
    created_at: npt.NDArray[np.float64]
    texts: list[str]
    followers: npt.NDArray[np.int64]
    """An unknown count is 0."""
    verified: npt.NDArray[np.bool_]
    retweet: npt.NDArray[np.bool_]

    @classmethod
    def of_posts(cls, posts: Sequence[Post]) -> PostColumns:
        """The columns of posts."""
        n = len(posts)
        return cls(
            [p.id for p in posts],
            [p.author_id for p in posts],
            np.fromiter((p.created_at for p in posts), np.float64, n),
            [p.text for p in posts],
            np.fromiter((p.followers or 0 for p in posts), np.int64, n),
            np.fromiter((p.verified for p in posts), bool, n),
            np.fromiter((p.retweet for p in posts), bool, n),
        )

    def take(self, index: Sequence[int]) -> PostColumns:
        """The posts at these positions, in that order."""
        at = np.asarray(index, dtype=np.intp)
        return PostColumns(
            [self.ids[i] for i in index], [self.author_ids[i] for i in index],
            self.created_at[at], [self.texts[i] for i in index], self.followers[at],
            self.verified[at], self.retweet[at],
        )  # fmt: skip


def post_columns_from_tweets(tweets: Sequence[Tweet]) -> PostColumns:
    """The detector's view of contract tweets, as ``post_from_tweet`` gives it, by columns."""
    n = len(tweets)
    ids = [t.id for t in tweets]
    authors = [t.author for t in tweets]
    return PostColumns(
        ids,
        [
            ((a.id or a.username) if a else None) or f"?{i}"
            for a, i in zip(authors, ids, strict=True)
        ],
        np.fromiter((t.created_at.timestamp() for t in tweets), np.float64, n),
        [t.text for t in tweets],
        np.fromiter(((a.followers or 0) if a else 0 for a in authors), np.int64, n),
        np.fromiter((bool(a.verified) if a else False for a in authors), bool, n),
        np.fromiter((t.retweet_of is not None for t in tweets), bool, n),
    )


class Flag(NamedTuple):
    """The detector's verdict on one post."""

    id: str
    spam: bool
    campaign_id: str | None


class Observation(NamedTuple):
    """What ``observe`` returns for a batch."""

    flags: list[Flag]
    """One flag per post of the batch, in its order (a repeated id gets its current flag)."""
    revisions: list[Flag]
    """Earlier posts whose flags changed with this batch (each id once, the newest flag)."""


class ColumnFlags(NamedTuple):
    """What ``observe_columns`` returns: the flags of the batch as columns, in its order."""

    spam: npt.NDArray[np.bool_]
    campaign_ids: list[str | None]
    revisions: list[Flag]
    """As ``Observation.revisions``."""


def _linked_roots(links: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Labels joined by links (pairs), each set under its lowest: label -> that lowest, for the
    labels that are not the lowest of their set."""
    parent: dict[int, int] = {}

    def root(label: int) -> int:
        while (up := parent.get(label, label)) != label:
            label = up
        return label

    for a, b in links:
        a, b = root(a), root(b)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {label: root(label) for label in parent}


def _wilson_lower(successes: int, n: int, z: float = 1.645) -> float:
    """Lower end of the one-sided 95 % Wilson interval of a proportion."""
    if n == 0:
        return 0.0
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (centre - spread) / (1 + z2 / n)


@dataclass(slots=True)
class _Cluster:
    earliest: tuple[float, str]  # (created_at, id) of its earliest post: names the campaign
    members: list[int] = field(default_factory=list)  # seqs (some may have left the window)
    accounts: int = 0  # distinct accounts among the kept posts
    low: int = 0  # of them, of low reach
    campaign: bool = False


class CampaignDetector:
    """Streaming spam and campaign flags; call ``observe`` once per batch (see module docstring).

    Kept posts live in ring buffers indexed by arrival number (``seq``), so a batch costs what
    its own posts cost: numpy over the batch's columns, a few dictionary steps per post. With the
    compiled core, the linking, the cluster books and the tables by id, account and (cluster,
    account) run in it (rust/vader_core/src/campaigns.rs); the numpy and dict code beside each
    is the reference, and the path without the core."""

    def __init__(
        self,
        *,
        window: float = 900.0,
        threshold: float = 0.6,
        min_accounts: int = 5,
        low_followers: int = 50,
        low_reach_share: float = 0.4,
        min_words: int = 5,
        repeat_limit: int = 3,
        link_limit: int = 5,
        max_posts: int = 200_000,
    ) -> None:
        """Parameters (docs/campaigns.md has the measured effect of each).

        ``window``: seconds within which a cluster's posts count together and flags stay revisable.
        ``threshold``: estimated Jaccard similarity of normalised texts to join a cluster.
        ``min_accounts``: distinct accounts a cluster needs to be a campaign.
        ``low_followers`` and ``low_reach_share``: an account below that many followers (and not
        verified) is of low reach; a campaign's share of such accounts must be above the share
        with 95 % confidence. ``min_words``: shorter posts are never clustered.
        ``repeat_limit``: an account that posts the same text this many times in a row, in the
        window and as half of its posts there at least, is a bot. ``link_limit``: so is a
        low-reach account with this many posts in the window, four in five of them with a link.
        ``max_posts``: posts kept for revisions at most (the oldest are let go first).
        """
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if min_accounts < 2 or window <= 0 or max_posts < 1:
            raise ValueError("min_accounts must be at least 2, window and max_posts positive")
        self.window = window
        self.threshold = threshold
        self.min_accounts = min_accounts
        self.low_followers = low_followers
        self.low_reach_share = low_reach_share
        self.min_words = min_words
        self.repeat_limit = repeat_limit
        self.link_limit = link_limit
        self.max_posts = max_posts
        cap = max_posts
        # ring buffers, slot = seq % cap, for the posts seq in [self._oldest, self._seq)
        self._ids: list[str] = [""] * cap
        self._ts = np.zeros(cap, dtype=np.float64)
        self._author = np.zeros(cap, dtype=np.int64)
        self._low = np.zeros(cap, dtype=bool)
        self._link = np.zeros(cap, dtype=bool)
        self._link_only = np.zeros(cap, dtype=bool)
        self._repeat = np.zeros(cap, dtype=bool)  # same text as its author's previous post
        self._cluster = np.full(cap, -1, dtype=np.int64)  # cluster label, -1: none
        self._signature = np.zeros((cap, BINS), dtype=np.uint32)  # low bits suffice to compare
        self._spam = np.zeros(cap, dtype=bool)  # the flag last returned
        self._campaign = np.full(cap, -1, dtype=np.int64)  # campaign label last returned
        self._seq = 0
        self._merged: list[npt.NDArray[np.int64]] = []  # posts whose cluster was folded away
        self._renamed: set[int] = set()  # clusters whose earliest post changed (and so its id)
        self._oldest = 0
        self._newest = -math.inf
        self._index = _Ids()  # id -> seq, for the kept posts
        self._buckets = _Buckets()  # LSH band key -> seq of the last post that had it
        self._clusters: dict[int, _Cluster] = {}  # label (seq of its first post) -> cluster
        self._pairs = _Pairs()  # (label << 24 | author) -> posts kept
        self._author_code = _Accounts()
        self._posts = np.zeros(1024, dtype=np.int64)  # by author: posts kept
        self._links = np.zeros(1024, dtype=np.int64)  # with a link
        self._repeats = np.zeros(1024, dtype=np.int64)  # repeating the previous text
        self._last_text = np.zeros(1024, dtype=np.int64)
        self._author_low = np.zeros(1024, dtype=bool)
        self._bot = np.zeros(1024, dtype=bool)

    # ------------------------------------------------------------------------------ public

    def observe(self, posts: Sequence[Post]) -> Observation:
        """Flag a batch (any order, any size); return its flags and revisions of earlier posts."""
        columns = PostColumns.of_posts(posts)
        spam, campaign_ids, revisions = self.observe_columns(columns)
        flags = list(map(Flag._make, zip(columns.ids, spam.tolist(), campaign_ids, strict=True)))
        return Observation(flags, revisions)

    def observe_columns(self, posts: PostColumns) -> ColumnFlags:
        """``observe`` by columns: the batch's flags as a spam array and a list of campaign
        ids (what the processor puts in its table), and the revisions of earlier posts."""
        ids = posts.ids if isinstance(posts.ids, list) else list(posts.ids)
        n = len(ids)
        first = self._seq
        # the usual batch: every post is new, and now kept by id (a batch too large for the
        # ring is refused by _observe, before any id is kept)
        indexed = 0 < n <= self.max_posts and self._index.add_new(ids, first)
        if indexed:
            fresh: PostColumns | None = posts
        else:
            batch_ids: set[str] = set()
            index = []
            for i, (post_id, seq) in enumerate(zip(ids, self._index.seqs(ids).tolist(),
                                                   strict=True)):  # fmt: skip
                if seq < 0 and post_id not in batch_ids:
                    batch_ids.add(post_id)
                    index.append(i)
            fresh = posts.take(index) if index else None
        try:
            revisions = self._observe(fresh, indexed) if fresh is not None else []
        except BaseException:
            if indexed:  # a batch refused (a text that cannot be signed): its ids are not kept
                self._index.remove(ids, 0, n)
            raise
        seqs = np.arange(first, first + n, dtype=np.int64) if indexed else self._index.seqs(ids)
        slots = seqs % self.max_posts
        unknown = seqs < 0
        spam = self._spam[slots]
        spam[unknown] = False
        labels = self._campaign[slots]
        labels[unknown] = -1
        campaign_ids: list[str | None] = [None] * n
        flagged = np.flatnonzero(labels >= 0)
        if len(flagged):
            names: dict[int, str] = {}
            for i, label in zip(flagged.tolist(), labels[flagged].tolist(), strict=True):
                name = names.get(label)
                if name is None:
                    name = names[label] = self._campaign_id(label)
                campaign_ids[i] = name
        return ColumnFlags(spam, campaign_ids, revisions)

    def campaigns(self) -> dict[str, list[str]]:
        """Campaigns in the window: campaign id -> ids of its posts still kept."""
        out: dict[str, list[str]] = {}
        for label, cluster in self._clusters.items():
            if cluster.campaign:
                kept = [self._ids[s % self.max_posts] for s in cluster.members if s >= self._oldest]
                if kept:
                    out[self._campaign_id(label)] = kept
        return out

    def __len__(self) -> int:
        """Posts kept (revisable)."""
        return self._seq - self._oldest

    # ------------------------------------------------------------------------------ a batch

    def _observe(self, fresh: PostColumns, indexed: bool) -> list[Flag]:
        """Flag the batch's new posts (``indexed``: already kept by id, from the next seq on);
        return the revisions of earlier posts."""
        ids = fresh.ids
        n = len(ids)
        if n > self.max_posts:
            raise ValueError(f"a batch of {n} posts is more than max_posts={self.max_posts}")
        # first what may fail on a text (a lone surrogate), while nothing has changed
        texts, retweet_text = _text_facts(fresh.texts)
        signatures = sign(fresh.texts)
        self._make_room(n)
        if not indexed:
            self._index.add_new(ids, self._seq)
        seqs = np.arange(self._seq, self._seq + n, dtype=np.int64)
        slots = seqs % self.max_posts
        self._seq += n
        ts = np.ascontiguousarray(fresh.created_at, dtype=np.float64)
        authors = self._codes(fresh.author_ids)
        low = (fresh.followers < self.low_followers) & ~fresh.verified
        original = ~(fresh.retweet | retweet_text)
        link = signatures.links > 0
        start = int(slots[0])
        head = min(n, self.max_posts - start)  # the ring wraps around after head posts
        self._ids[start : start + head] = ids[:head]
        self._ids[: n - head] = ids[head:]
        # by slices, not by slots: one or two stretches of the ring (uint64 signature values
        # keep their low 32 bits, as astype does)
        link_only = link & (signatures.words <= 2)
        for ring, values in ((self._ts, ts), (self._author, authors), (self._low, low),
                             (self._link, link), (self._link_only, link_only),
                             (self._signature, signatures.minhash)):  # fmt: skip
            ring[start : start + head] = values[:head]
            ring[: n - head] = values[head:]
        for ring, blank in ((self._spam, False), (self._campaign, -1), (self._cluster, -1)):
            ring[start : start + head] = blank
            ring[: n - head] = blank
        self._newest = max(self._newest, float(ts.max()))

        self._count_accounts(seqs, authors, low, link, texts)
        eligible = np.flatnonzero(original & (signatures.words >= self.min_words))
        touched = self._assign(eligible, seqs, ts, signatures)
        changed_clusters, renamed = self._decide_clusters(touched)
        changed_authors = self._decide_accounts(_distinct(authors))

        # flags: this batch, and the kept posts of clusters and accounts whose verdict changed
        revisit = [np.zeros(0, dtype=np.int64), *self._merged]
        self._merged = []
        for label in changed_clusters + renamed:
            members = np.array(self._clusters[label].members, dtype=np.int64)
            revisit.append(members[members >= self._oldest])
        if changed_authors:  # a lookup per kept post, over the ring's one or two stretches
            changed = np.zeros(len(self._posts), dtype=bool)
            changed[changed_authors] = True
            authors_kept = self._in_order(self._author, self._oldest, self._seq - n)
            revisit.append(self._oldest + np.flatnonzero(changed[authors_kept]))
        # in order, each once: the batch's posts come after every earlier one
        earlier = np.concatenate(revisit)
        rows = np.concatenate((_distinct(earlier[earlier < seqs[0]]), seqs))
        return self._reflag(rows, first_new=int(seqs[0]), renamed=renamed)

    def _in_order(
        self, column: npt.NDArray[np.int64], start: int, stop: int
    ) -> npt.NDArray[np.int64]:
        """A ring buffer's values for the posts ``start`` to ``stop`` (seqs), in that order."""
        cap = self.max_posts
        first, length = start % cap, stop - start
        if first + length <= cap:
            return column[first : first + length]
        return np.concatenate((column[first:], column[: first + length - cap]))

    def _codes(self, author_ids: list[str]) -> npt.NDArray[np.int64]:
        """Each account's number, new accounts numbered in order of appearance (the columns
        kept by account grow to hold them)."""
        author_ids = author_ids if isinstance(author_ids, list) else list(author_ids)
        out = self._author_code.numbers(author_ids)
        size, known = len(self._posts), len(self._author_code)
        if known > size:
            grow = max(size, known - size)
            for name in ("_posts", "_links", "_repeats", "_last_text", "_author_low", "_bot"):
                column = getattr(self, name)
                setattr(self, name, np.concatenate((column, np.zeros(grow, dtype=column.dtype))))
        return out

    def _count_accounts(
        self,
        seqs: npt.NDArray[np.int64],
        authors: npt.NDArray[np.int64],
        low: npt.NDArray[np.bool_],
        link: npt.NDArray[np.bool_],
        texts: npt.NDArray[np.int64],
    ) -> None:
        """Per account: posts, posts with a link, posts repeating the account's previous text."""
        np.add.at(self._posts, authors, 1)
        np.add.at(self._links, authors[link], 1)  # (adding ones: the fast path of add.at)
        self._author_low[authors] = low
        # the previous text of each post's author: earlier in the batch, or before it (posts by
        # author, then seq: the seqs ascend, so by author, then position, as one sort of
        # distinct keys, several times faster than a stable sort; account numbers stay below
        # 2**24, so the keys fit)
        order = np.argsort(authors * len(authors) + np.arange(len(authors)))
        a, t = authors[order], texts[order]
        first = np.r_[True, a[1:] != a[:-1]]
        previous = np.where(first, self._last_text[a], np.r_[0, t[:-1]])
        repeat = np.empty(len(seqs), dtype=bool)
        repeat[order] = (previous == t) & (self._posts[a] > 1)
        last = np.r_[a[1:] != a[:-1], True]
        self._last_text[a[last]] = t[last]
        self._repeat[seqs % self.max_posts] = repeat
        np.add.at(self._repeats, authors[repeat], 1)

    def _assign(
        self,
        eligible: npt.NDArray[np.intp],
        batch_seqs: npt.NDArray[np.int64],
        batch_ts: npt.NDArray[np.float64],
        signatures: Signatures,
    ) -> set[int]:
        """Cluster the batch's eligible posts (these rows of the batch): LSH candidates,
        verified, joined by components; then the clusters' books."""
        m = len(eligible)
        if m == 0:
            return set()
        cap = self.max_posts
        seqs, ts = batch_seqs[eligible], batch_ts[eligible]
        native = self._buckets.native
        if _LINK_BATCH is not None and native is not None:
            value, old_post, old_label = (np.frombuffer(b, dtype=np.int64) for b in _LINK_BATCH(
                native, eligible, int(batch_seqs[0]), batch_ts, signatures.bands,
                signatures.minhash, self._cluster, self._ts, self._signature, self._oldest,
                self.window, self.threshold))  # fmt: skip
        else:
            value, old_post, old_label = self._link_numpy(
                seqs, ts, signatures.bands[eligible], signatures.minhash[eligible].astype(np.uint32)
            )
        # earlier clusters that this batch joined become one, under the oldest label: an earlier
        # cluster can meet several components of the batch and a component several earlier
        # clusters, so the labels these links join form sets, each under its lowest label
        # (most links join a post to the cluster it is in already: about 70 of 22,000 a batch of
        # 20,000 mock posts join two labels, and only those can change a root)
        joined = value[old_post]
        apart = old_label != joined
        roots = _linked_roots(zip(old_label[apart].tolist(), joined[apart].tolist(), strict=True))
        if roots:
            value = value.copy()  # the compiled core's buffer is read-only
            for label, root in roots.items():
                value[value == label] = root
        self._cluster[seqs % cap] = value
        for gone in sorted(roots):
            self._merge(gone, roots[gone])

        # cluster books: members, distinct accounts, low-reach accounts, earliest post
        slots = seqs % cap
        native_pairs = self._pairs.native
        if _CLUSTER_BOOKS is not None and native_pairs is not None:
            books = _CLUSTER_BOOKS(native_pairs, value, seqs, ts, self._author[slots],
                                   self._low[slots].view(np.uint8), self._ids, slots)  # fmt: skip
            labels, ends, members, _, earliest_slots, accounts, low = (
                np.frombuffer(b, dtype=np.int64).tolist() for b in books
            )
            times = np.frombuffer(books[3], dtype=np.float64).tolist()
            earliest = list(zip(times, map(self._ids.__getitem__, earliest_slots), strict=True))
        else:
            labels, ends, members, earliest, accounts, low = self._books_numpy(value, seqs, ts)
        clusters = self._clusters
        touched: set[int] = set()
        start = 0
        for label, end, first, account_count, low_count in zip(labels, ends, earliest, accounts,
                                                               low, strict=True):  # fmt: skip
            cluster = clusters.get(label)
            if cluster is None:
                cluster = clusters[label] = _Cluster(first)
            elif first < cluster.earliest:
                cluster.earliest = first
                self._renamed.add(label)
            cluster.members += members[start:end]
            cluster.accounts += account_count
            cluster.low += low_count
            touched.add(label)
            start = end
        return touched

    def _books_numpy(
        self,
        value: npt.NDArray[np.int64],
        seqs: npt.NDArray[np.int64],
        ts: npt.NDArray[np.float64],
    ) -> tuple[list[int], list[int], list[int], list[tuple[float, str]], list[int], list[int]]:
        """The books of the batch's clustered posts (labels ``value``), in numpy: the reference
        for the compiled core's ``cluster_books``, and the path without it. Per label, in label
        order: the label, where its segment of members (by label, then seq) ends, its earliest
        (time, id), and the accounts and low-reach accounts it gained."""
        slots = seqs % self.max_posts
        order = np.argsort(value, kind="stable")  # by label, then seq (the seqs ascend)
        labels_sorted = value[order]
        labels, starts, sizes = _runs(labels_sorted)
        ends = starts + sizes
        ts_sorted = ts[order]
        slot_sorted = slots[order].tolist()
        # each segment's earliest post: Python's min of (time, id) over the posts at its lowest
        # time (over all of them when it holds a NaN, which no time equals)
        lowest = np.minimum.reduceat(ts_sorted, starts)
        at_lowest = np.flatnonzero(ts_sorted == np.repeat(lowest, sizes))
        at_list = at_lowest.tolist()
        ids = self._ids
        earliest = []
        for start, end, low_from, low_to, time in zip(
            starts.tolist(), ends.tolist(), np.searchsorted(at_lowest, starts).tolist(),
            np.searchsorted(at_lowest, ends).tolist(), lowest.tolist(), strict=True):  # fmt: skip
            if low_to - low_from == 1:  # alone at the lowest time: the usual case
                earliest.append((time, ids[slot_sorted[at_list[low_from]]]))
            else:
                candidates = at_list[low_from:low_to] or range(start, end)
                candidate_ids = [ids[slot_sorted[at]] for at in candidates]
                earliest.append(min(zip(ts_sorted[candidates].tolist(), candidate_ids,
                                        strict=True)))  # fmt: skip
        # distinct accounts per cluster: (label, account) pairs new to the window count once
        began = self._pairs.enter(labels_sorted << 24 | self._author[slots][order])
        began_low = began & self._low[slots][order]
        accounts = np.add.reduceat(began.astype(np.int64), starts)
        low = np.add.reduceat(began_low.astype(np.int64), starts)
        return (labels.tolist(), ends.tolist(), seqs[order].tolist(), earliest, accounts.tolist(),
                low.tolist())  # fmt: skip

    def _link_numpy(
        self,
        seqs: npt.NDArray[np.int64],
        ts: npt.NDArray[np.float64],
        bands: U64Array,
        sig: npt.NDArray[np.uint32],
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Label the batch's eligible posts (one row each), in numpy: the reference for the
        compiled core's ``link_batch``, and the path without it. Returns each post's cluster
        label, and the posts linked to an earlier cluster with that cluster's label; the buckets
        then keep each band's last post of the batch."""
        m = len(seqs)
        cap = self.max_posts
        keys = bands.ravel()
        post_of_key = np.repeat(np.arange(m), BANDS)
        usable = keys != 0
        # each distinct key is looked up and stored once, however many posts of the batch
        # share it (templates do)
        distinct, group, first_at, last_at = _band_groups(keys)

        # 1. the last kept post of each band, from earlier batches
        hits = self._buckets.last_posts(distinct)[group]
        ok = usable & (hits >= self._oldest) & (hits < seqs[0])
        hit_slot = np.where(ok, hits, 0) % cap
        ok &= self._cluster[hit_slot] >= 0
        ok &= np.abs(self._ts[hit_slot] - ts[post_of_key]) <= self.window
        ok &= _first_in_row(np.where(ok, hits, -1))
        a_post, a_slot = post_of_key[ok], hit_slot[ok]
        close = self._similar(sig, a_post, self._signature, a_slot)
        old_post, old_label = a_post[close], self._cluster[a_slot[close]]

        # 2. posts of this batch sharing a band: each against the first of them
        lead = post_of_key[first_at][group]  # the first post with each position's key
        same = usable & (lead != post_of_key)
        same &= _first_in_row(np.where(same, lead, -1))
        b_post, b_lead = post_of_key[same], lead[same]
        close = self._similar(sig, b_post, sig, b_lead)
        close &= np.abs(ts[b_post] - ts[b_lead]) <= self.window

        # 3. components; an earlier cluster's label (lower) wins, the oldest of several
        value = seqs.copy()
        np.minimum.at(value, old_post, old_label)
        u, v = b_post[close], b_lead[close]
        while len(u):
            low = np.minimum(value[u], value[v])
            before = value.copy()
            np.minimum.at(value, u, low)
            np.minimum.at(value, v, low)
            if np.array_equal(before, value):
                break
        # each band's last post: the batch's last one that has it
        self._buckets.update(distinct, seqs[post_of_key[last_at]])
        return value, old_post, old_label

    def _merge(self, gone: int, into: int) -> None:
        """Fold cluster ``gone`` into ``into``: its kept posts, accounts and earliest post."""
        clusters, pairs, cap = self._clusters, self._pairs, self.max_posts
        source, target = clusters.get(gone), clusters.get(into)
        if source is None or target is None:  # every kept post's label has its cluster
            raise AssertionError(f"merging cluster {gone} into {into}: one of them is gone")
        del clusters[gone]
        members = np.array(source.members, dtype=np.int64)
        members = members[members >= self._oldest]
        slots = members % cap
        self._cluster[slots] = into
        for author, slot in zip(self._author[slots].tolist(), slots.tolist(), strict=True):
            count = pairs.pop(gone << 24 | author)
            if count:
                before = pairs.add(into << 24 | author, count)
                if before == 0:
                    target.accounts += 1
                    target.low += bool(self._low[slot])
        target.members = sorted(target.members + members.tolist())
        if source.earliest < target.earliest:
            target.earliest = source.earliest
            self._renamed.add(into)
        self._merged.append(members)

    def _similar(
        self,
        a: npt.NDArray[np.uint32],
        a_rows: npt.NDArray[np.int64],
        b: npt.NDArray[np.uint32],
        b_rows: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.bool_]:
        """Pair by pair: estimated Jaccard similarity of the signatures ``a[a_rows]`` and
        ``b[b_rows]`` >= threshold (in the compiled core when installed: no rows gathered)."""
        if len(a_rows) == 0:
            return np.zeros(0, dtype=bool)
        if _SIMILAR_ROWS is not None:
            compiled: npt.NDArray[np.bool_] = np.frombuffer(
                _SIMILAR_ROWS(a, a_rows, b, b_rows, self.threshold), dtype=bool
            )
            return compiled
        a, b = a[a_rows], b[b_rows]
        empty = np.uint32(0xFFFFFFFF)
        both_empty = np.count_nonzero((a == empty) & (b == empty), axis=1)
        equal = np.count_nonzero(a == b, axis=1) - both_empty
        close: npt.NDArray[np.bool_] = equal >= self.threshold * np.maximum(BINS - both_empty, 1)
        return close

    def _decide_clusters(self, touched: set[int]) -> tuple[list[int], list[int]]:
        """Recompute the campaign verdict of the clusters the batch added to; return those that
        changed, and the campaigns whose name changed (an earlier post turned up)."""
        changed, renamed = [], []
        for label in touched:
            cluster = self._clusters[label]
            campaign = cluster.accounts >= self.min_accounts and (
                _wilson_lower(cluster.low, cluster.accounts) >= self.low_reach_share
            )
            if campaign != cluster.campaign:
                cluster.campaign = campaign
                changed.append(label)
            elif campaign and label in self._renamed:
                renamed.append(label)
        self._renamed.clear()
        return changed, renamed

    def _decide_accounts(self, authors: npt.NDArray[np.int64]) -> list[int]:
        """Recompute the bot verdict of the accounts that posted in the batch; return changes."""
        posts, links, repeats = self._posts[authors], self._links[authors], self._repeats[authors]
        bot = ((repeats + 1 >= self.repeat_limit) & (2 * (repeats + 1) >= posts)) | (
            self._author_low[authors] & (posts >= self.link_limit) & (5 * links >= 4 * posts)
        )
        changed = authors[bot != self._bot[authors]]
        self._bot[authors] = bot
        return changed.tolist()  # type: ignore[no-any-return]

    # ------------------------------------------------------------------------------ flags

    def _reflag(
        self, seqs: npt.NDArray[np.int64], first_new: int, renamed: list[int]
    ) -> list[Flag]:
        """Recompute the flags of these kept posts; return those of earlier posts that changed."""
        slots = seqs % self.max_posts
        label = self._cluster[slots]
        campaign_labels = [c for c in _distinct(label[label >= 0]).tolist()
                           if self._clusters[c].campaign]  # fmt: skip
        campaign = np.where(np.isin(label, campaign_labels), label, -1)
        spam = (campaign >= 0) | self._bot[self._author[slots]]
        spam |= self._link_only[slots] & self._low[slots]
        changed = (seqs < first_new) & (
            (spam != self._spam[slots])
            | (campaign != self._campaign[slots])
            | np.isin(campaign, renamed)
        )
        self._spam[slots] = spam
        self._campaign[slots] = campaign
        return [self._flag(seq) for seq in seqs[changed].tolist()]

    def _campaign_id(self, label: int) -> str:
        return "c" + self._clusters[label].earliest[1]

    def _flag(self, seq: int) -> Flag:
        slot = seq % self.max_posts
        label = int(self._campaign[slot])
        campaign = self._campaign_id(label) if label >= 0 else None
        return Flag(self._ids[slot], bool(self._spam[slot]), campaign)

    # ------------------------------------------------------------------------------ window

    def _make_room(self, n: int) -> None:
        """Let go of posts older than the window, and of the oldest while the ring is full."""
        horizon = self._newest - self.window
        cap = self.max_posts
        # the oldest posts that no longer fit go whatever their time, then those older than
        # the window up to the first that is not (a scan in chunks, not a loop per post)
        end = max(self._oldest, min(self._seq, self._seq + n - cap))
        while end < self._seq:
            chunk = np.arange(end, min(end + 4096, self._seq), dtype=np.int64)
            inside = np.flatnonzero(self._ts[chunk % cap] >= horizon)
            if len(inside):
                end += int(inside[0])
                break
            end += len(chunk)
        if end == self._oldest:
            return
        seqs = np.arange(self._oldest, end, dtype=np.int64)
        slots = seqs % cap
        authors = self._author[slots]
        np.subtract.at(self._posts, authors, 1)
        np.subtract.at(self._links, authors[self._link[slots]], 1)
        np.subtract.at(self._repeats, authors[self._repeat[slots]], 1)
        clusters = self._clusters
        first = self._oldest % cap  # the ids leave by one or two stretches of the ring
        head = min(len(seqs), cap - first)
        self._index.remove(self._ids, first, first + head)
        self._index.remove(self._ids, 0, len(seqs) - head)
        labels = self._cluster[slots]
        kept = np.flatnonzero(labels >= 0)  # only posts in a cluster have books to update
        # a post that ends its (cluster, account) pair takes the account from the cluster
        ended = self._pairs.leave(labels[kept] << 24 | authors[kept])
        ended_labels = labels[kept][ended]
        order = np.argsort(ended_labels)  # (any order within a label: only sums are taken)
        ended_low = self._low[slots[kept][ended]][order].astype(np.int64)
        gone, runs, accounts = _runs(ended_labels[order])
        low = np.add.reduceat(ended_low, runs) if len(runs) else runs
        for label, account_count, low_count in zip(gone.tolist(), accounts.tolist(),
                                                   low.tolist(), strict=True):  # fmt: skip
            cluster = clusters.get(label)
            if cluster is not None:
                cluster.accounts -= account_count
                cluster.low -= low_count
        # members are in seq order: a cluster whose first member leaves drops all that left
        for label in _distinct(labels[kept]).tolist():
            cluster = clusters.get(label)
            if cluster is None or not cluster.members:
                continue
            head_seq = cluster.members[0]
            if self._oldest <= head_seq < end and self._cluster[head_seq % cap] == label:
                del cluster.members[: bisect.bisect_left(cluster.members, end)]
                if not cluster.members:
                    del clusters[label]
        self._oldest = end
        if len(self._buckets) > 4 * BANDS * max(self._seq - self._oldest, 4096):
            self._buckets.forget_before(end)
        if len(self._author_code) > 2 * max(self.max_posts, 65_536):
            self._forget_authors()

    def _forget_authors(self) -> None:
        """Drop the accounts with no kept post and renumber the others (codes stay < 2**24)."""
        live = np.flatnonzero(self._posts[: len(self._author_code)] > 0)
        renumber = np.full(len(self._posts), -1, dtype=np.int64)
        renumber[live] = np.arange(len(live))
        slots = np.arange(self._oldest, self._seq, dtype=np.int64) % self.max_posts
        self._author[slots] = renumber[self._author[slots]]
        self._author_code.renumber(renumber)
        size = max(1024, 2 * len(live))
        for name in ("_posts", "_links", "_repeats", "_last_text", "_author_low", "_bot"):
            column = getattr(self, name)
            fresh = np.zeros(size, dtype=column.dtype)
            fresh[: len(live)] = column[live]
            setattr(self, name, fresh)
        self._pairs.renumber(renumber)
