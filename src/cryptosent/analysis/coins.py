"""Which coins a tweet mentions: cashtags, hashtags, names and tickers mapped to canonical tickers.

The catalogue (``cryptosent/data/coins.csv``) and the crypto-context words
(``cryptosent/data/coins_context.txt``) are read once at import; after that ``coin_mentions`` is a
pure function. It runs on every tweet, so it never loops over coins: the UTF-8 bytes are
lower-cased and split into words by one ``bytes.translate`` and ``split``, and one set
intersection against every known term finds the candidates, all in C.

Rules, in short:

* ``$BTC`` (any case) always counts; so do unambiguous names (Bitcoin), tickers (btc, ETH),
  aliases (ether) and hashtags (#bitcoin, #eth, #xrparmy).
* Ambiguous words (SOL, LINK, ONE, Optimism) count only when the tweet has crypto context:
  another coin mention, or a crypto word (token, price, hodl, ...). A bare ambiguous ticker must
  also be written in upper case ("SOL", not "sol").
* Multi-word names win over their parts: "Bitcoin Cash" is BCH, not BTC.
* URLs and @mentions never count.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from importlib import resources
from typing import Final

__all__ = ["COINS", "Coin", "CoinMatcher", "coin_mentions", "load_catalogue"]

_CATALOGUE_FILE: Final = "coins.csv"
_CONTEXT_FILE: Final = "coins_context.txt"


@dataclass(frozen=True, slots=True)
class Coin:
    """One row of the coin catalogue."""

    ticker: str
    name: str
    weight: float
    ticker_ambiguous: bool
    name_ambiguous: bool
    aliases: tuple[str, ...]
    hashtags: tuple[str, ...]


class _Rule(IntEnum):
    # Ordered from least to most restrictive, so min() merges two rules for one term.
    ALWAYS = 0
    CONTEXT = 1
    CONTEXT_UPPER = 2


_WORD_SPLIT: Final = re.compile(r"[\W_]+")
# Tokenizing bytes with str.split and bytes.translate is several times faster than re.findall on
# str, which is most of the cost per tweet. Tokens keep their sigil ($, #, @) so that '@bitcoin'
# never equals a term; every other byte that is not [A-Za-z0-9_] separates words, and the same
# translate() lower-cases ASCII. Terms are ASCII.
_WORD_BYTES: Final = bytes(
    ord(chr(c).lower()) if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "$#@_") else 0x20
    for c in range(256)
)
_SPACE_BYTES: Final = bytes(0x20 if chr(c) in " \t\n\r\v\f" else c for c in range(256))
# The host part of a link without a scheme, as in 'x.com/solana'.
_HOST_BEFORE_SLASH: Final = re.compile(rb"\w\.[A-Za-z]{2,}(?::\d+)?/")


def _strip_links(text: bytes) -> bytes:
    """Drop every space-delimited chunk of ``text`` that is a URL (scheme, www. or host/path)."""
    # Links with a scheme are the common case: cut them with C-level find, no regex.
    pos = text.find(b"://")
    while pos != -1:
        start = text.rfind(b" ", 0, pos) + 1
        end = text.find(b" ", pos)
        text = text[:start] if end == -1 else text[:start] + text[end:]
        pos = text.find(b"://", start)
    for marker in (b"/", b"www.", b"WWW."):
        pos = text.find(marker)
        while pos != -1:
            start = text.rfind(b" ", 0, pos) + 1
            end = text.find(b" ", pos)
            if end == -1:
                end = len(text)
            if marker != b"/" or _HOST_BEFORE_SLASH.search(text, start, end):
                text = text[:start] + text[end:]
                pos = text.find(marker, start)
            else:
                pos = text.find(marker, end)
    return text


def _words(term: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(term.lower()) if w]


def _parse_bool(value: str, where: str) -> bool:
    value = value.strip().lower()
    if value in ("yes", "true", "1"):
        return True
    if value in ("no", "false", "0", ""):
        return False
    raise ValueError(f"{where}: expected yes or no, got {value!r}")


def _split_list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split("|") if v.strip())


def load_catalogue(text: str) -> dict[str, Coin]:
    """Parse a coin catalogue in the ``coins.csv`` format (comment lines start with '#')."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    coins: dict[str, Coin] = {}
    for row_number, row in enumerate(csv.DictReader(io.StringIO("\n".join(lines))), start=1):
        where = f"{_CATALOGUE_FILE} row {row_number}"
        ticker = (row.get("ticker") or "").strip().upper()
        name = (row.get("name") or "").strip()
        if not ticker or not name:
            raise ValueError(f"{where}: ticker and name are required")
        if ticker in coins:
            raise ValueError(f"{where}: duplicate ticker {ticker}")
        try:
            weight = float(row.get("weight") or "")
        except ValueError:
            raise ValueError(f"{where}: weight must be a number") from None
        coins[ticker] = Coin(
            ticker=ticker,
            name=name,
            weight=weight,
            ticker_ambiguous=_parse_bool(row.get("ticker_ambiguous") or "", where),
            name_ambiguous=_parse_bool(row.get("name_ambiguous") or "", where),
            aliases=_split_list(row.get("aliases")),
            hashtags=_split_list(row.get("hashtags")),
        )
    return coins


def _load_context_words(text: str) -> frozenset[str]:
    words = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return frozenset(w for w in words if w)


class CoinMatcher:
    """Finds coin mentions in text for one catalogue; build once, call ``mentions`` per tweet."""

    def __init__(self, coins: Mapping[str, Coin], context_words: Iterable[str]) -> None:
        """Index every term of ``coins``; raise ValueError if a term names two coins."""
        terms: dict[bytes, tuple[str, _Rule]] = {}
        phrases: dict[tuple[str, ...], str] = {}

        def add(token: str, ticker: str, rule: _Rule) -> None:
            if not token.isascii():
                raise ValueError(f"coin term {token!r} of {ticker} is not ASCII")
            key = token.encode()
            known = terms.get(key)
            if known is not None and known[0] != ticker:
                raise ValueError(f"coin term {token!r} is claimed by both {known[0]} and {ticker}")
            terms[key] = (ticker, rule if known is None else min(rule, known[1]))

        def add_name(term: str, ticker: str, ambiguous: bool) -> None:
            words = _words(term)
            if not words:
                return
            rule = _Rule.CONTEXT if ambiguous else _Rule.ALWAYS
            joined = "".join(words)
            if len(words) > 1:
                # Multi-word names are rewritten to one token before lookup (see mentions()).
                phrases[tuple(words)] = joined
            add(joined, ticker, rule)
            add("#" + joined, ticker, rule)

        for coin in coins.values():
            low = coin.ticker.lower()
            add("$" + low, coin.ticker, _Rule.ALWAYS)
            add(low, coin.ticker, _Rule.CONTEXT_UPPER if coin.ticker_ambiguous else _Rule.ALWAYS)
            add("#" + low, coin.ticker, _Rule.CONTEXT if coin.ticker_ambiguous else _Rule.ALWAYS)
            add_name(coin.name, coin.ticker, coin.name_ambiguous)
            for alias in coin.aliases:
                add_name(alias.removeprefix("~"), coin.ticker, alias.startswith("~"))
            for tag in coin.hashtags:
                add("#" + "".join(_words(tag)), coin.ticker, _Rule.ALWAYS)

        self._terms: Final = terms
        self._vocab: Final = frozenset(terms)
        words = {w.lower() for w in context_words}
        # Context words are matched as tokens, with or without '#'; non-ASCII ones ("preço")
        # cannot be bytes tokens, so a regex finds them, only when an ambiguous term needs it.
        ascii_words = {w for w in words if w.isascii()}
        self._context: Final = frozenset(
            [w.encode() for w in ascii_words] + [b"#" + w.encode() for w in ascii_words]
        )
        others = sorted(words - ascii_words)
        self._context_re: Final = re.compile(
            r"(?<!\w)#?(?:" + "|".join(map(re.escape, others)) + r")(?!\w)" if others else r"(?!)"
        )
        self._upper: Final = {
            coin.ticker: re.compile(rf"(?<![\w$#@/.]){re.escape(coin.ticker)}(?!\w)")
            for coin in coins.values()
            if coin.ticker_ambiguous
        }
        # Longest phrases first, so "shiba inu coin" wins over "shiba inu".
        by_first: dict[bytes, list[tuple[tuple[bytes, ...], bytes]]] = {}
        for words_ in sorted(phrases, key=lambda p: -len(p)):
            rest = tuple(w.encode() for w in words_[1:])
            for sigil in ("", "#", "$", "@"):
                first = (sigil + words_[0]).encode()
                by_first.setdefault(first, []).append((rest, (sigil + phrases[words_]).encode()))
        self._phrases_by_first: Final = by_first
        self._phrase_first: Final = frozenset(by_first)
        self._phrase_second: Final = frozenset(p[1].encode() for p in phrases)

    def _join_phrases(self, tokens: list[bytes]) -> list[bytes]:
        """Replace multi-word names in ``tokens`` by one token (bitcoin cash -> bitcoincash)."""
        out: list[bytes] = []
        i = 0
        n = len(tokens)
        while i < n:
            token = tokens[i]
            i += 1
            for rest, joined in self._phrases_by_first.get(token, ()):
                if tuple(tokens[i : i + len(rest)]) == rest:
                    token = joined
                    i += len(rest)
                    break
            out.append(token)
        return out

    def mentions(self, text: str) -> list[str]:
        """Canonical tickers mentioned in ``text``, sorted, each once."""
        # surrogatepass: a str may hold lone surrogates, and this must never raise.
        raw = text.encode("utf-8", "surrogatepass")
        if b"/" in raw or b"www." in raw or b"WWW." in raw:
            raw = _strip_links(raw.translate(_SPACE_BYTES))
        tokens = raw.translate(_WORD_BYTES).split()
        if not self._phrase_first.isdisjoint(tokens) and not self._phrase_second.isdisjoint(tokens):
            tokens = self._join_phrases(tokens)
        hits = self._vocab.intersection(tokens)
        if not hits:
            return []
        found: set[str] = set()
        pending: list[tuple[str, _Rule]] = []
        for term in hits:
            ticker, rule = self._terms[term]
            if rule is _Rule.ALWAYS:
                found.add(ticker)
            else:
                pending.append((ticker, rule))
        if pending and (
            found
            or not self._context.isdisjoint(tokens)
            or self._context_re.search(text.lower()) is not None
        ):
            for ticker, rule in pending:
                if rule is _Rule.CONTEXT or self._upper[ticker].search(text):
                    found.add(ticker)
        return sorted(found)


def _read_data(name: str) -> str:
    return resources.files("cryptosent.data").joinpath(name).read_text(encoding="utf-8")


COINS: Final[Mapping[str, Coin]] = load_catalogue(_read_data(_CATALOGUE_FILE))
"""The coin catalogue, ticker -> Coin, in file order (most attention first)."""

_MATCHER: Final = CoinMatcher(COINS, _load_context_words(_read_data(_CONTEXT_FILE)))


def coin_mentions(text: str) -> list[str]:
    """Canonical tickers of the coins ``text`` mentions, sorted, each once; never raises."""
    return _MATCHER.mentions(text)
