"""Which coins a post is about: every candidate mention is weighed against the rest of the post.

The catalogue (``cryptosent/data/coins.csv``), the names in other scripts (``coins_scripts.csv``)
and the evidence weights (``coins_evidence.toml``) are read once at import; after that
``coin_mentions`` is a pure function. It is a transparent scored model, not a learned one: every
number it adds up is in the evidence file.

Each place where a coin's term appears (a candidate) gets a score, and the coin counts when one of
its candidates reaches the threshold:

* a prior for how the term is written: pairs (BTCUSDT, ETH/BTC, BTC-USD) and cashtags ($SOL) are
  strong, unambiguous names and tickers (bitcoin, XMR) and names in other scripts (비트코인) are
  good, words that are also ordinary words (sol, link, one, Optimism, эфир) start below zero;
* words of the whole post: crypto, exchange and DeFi words raise it, words of other fields
  (medicine, law, pets, gaming, stock tickers...) lower it, each side capped;
* the other coins the post surely names, capped;
* for ambiguous words, the words right around the candidate: "sold my dot", "near the bottom",
  "a ton of", a list of holdings ("btc, eth, sol"), a hyphenated compound ("near-term").

Former and alternative tickers map to the canonical one (MATIC -> POL, RNDR -> RENDER, XBT -> BTC);
a stablecoin quoted in a pair (BTC/USDT) is not a mention; words are whole tokens, so "somETHing"
is never ETH; links and @mentions never count.

It runs on every tweet: the text is tokenised by one ``bytes.translate`` and ``split``, one set
intersection finds the candidates, and a post whose candidates are all unambiguous and that has no
word of another field is decided there; only the others are scored in full.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from importlib import resources
from typing import Any, Final

__all__ = [
    "COINS",
    "Coin",
    "CoinMatcher",
    "Evidence",
    "coin_mentions",
    "coin_mentions_many",
    "load_catalogue",
    "load_evidence",
    "load_scripts",
]

_CATALOGUE_FILE: Final = "coins.csv"
_EVIDENCE_FILE: Final = "coins_evidence.toml"
_SCRIPTS_FILE: Final = "coins_scripts.csv"


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
    other_tickers: tuple[str, ...] = ()


class _Form(Enum):
    """How a candidate is written; the value is its key in the evidence file's ``[prior]``."""

    COIN_HASHTAG = "coin_hashtag"
    CASHTAG = "cashtag"
    HASHTAG = "hashtag"
    NAME = "name"
    TICKER = "ticker"
    HASHTAG_AMBIGUOUS = "hashtag_ambiguous"
    TICKER_AMBIGUOUS = "ticker_ambiguous"
    NAME_AMBIGUOUS = "name_ambiguous"


# When one word is two terms of the same coin ("xrp" is XRP's ticker and name), the first of
# these wins: a ticker keeps the case of the word, which says more than a name.
_PRECEDENCE: Final = list(_Form)
_AMBIGUOUS_FORMS: Final = frozenset(
    {_Form.HASHTAG_AMBIGUOUS, _Form.TICKER_AMBIGUOUS, _Form.NAME_AMBIGUOUS}
)
_LOCAL_FORMS: Final = frozenset({_Form.TICKER_AMBIGUOUS, _Form.NAME_AMBIGUOUS})

_WORD_SPLIT: Final = re.compile(r"[\W_]+")
# Tokenizing bytes with str.split and bytes.translate is several times faster than re.findall on
# str, which is most of the cost per tweet. Tokens keep their sigil ($, #, @) so that '@bitcoin'
# never equals a term; every other byte that is not [A-Za-z0-9_] separates words. _WORD_BYTES
# lower-cases ASCII too; _KEEP_BYTES keeps the case (tickers need it), token for token.
_KEEP_BYTES: Final = bytes(
    c if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "$#@_") else 0x20 for c in range(256)
)
_WORD_BYTES: Final = bytes(
    ord(chr(c).lower()) if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "$#@_") else 0x20
    for c in range(256)
)
_SPACE_BYTES: Final = bytes(0x20 if chr(c) in " \t\n\r\v\f" else c for c in range(256))
# The host part of a link without a scheme, as in 'x.com/solana'.
_HOST_BEFORE_SLASH: Final = re.compile(rb"\w\.[A-Za-z]{2,}(?::\d+)?/")
_NUMBER: Final = b"<n>"

# Trading pairs. Quotes that are not mentions (stablecoins, fiat, perpetuals) and coins that are
# also quoted (ETH/BTC names both).
_STABLE_QUOTES: Final = (
    "usdt",
    "usdc",
    "usde",
    "fdusd",
    "busd",
    "tusd",
    "usd",
    "dai",
    "eur",
    "gbp",
    "jpy",
    "krw",
    "try",
    "perp",
)
_COIN_QUOTES: Final = ("btc", "eth", "bnb", "sol", "xbt")
# Quotes of trading pairs glued to their base (BTCUSDT, ETHBTC); the first are not mentions.
_STABLE_SUFFIXES: Final = tuple(q.encode() for q in _STABLE_QUOTES)
_COIN_SUFFIXES: Final = (b"btc", b"eth", b"bnb", b"sol")
# Lead bytes of UTF-8 letters in the scripts of coins_scripts.csv: a cheap test that skips posts
# whose only non-ASCII characters are emoji, punctuation or accented Latin letters. (Accented
# crypto words such as "preço" only add evidence, so they are looked for in _decide().)
_OTHER_SCRIPT_BYTES: Final = re.compile(rb"[\xce-\xd1\xd7-\xdb\xe0\xe3-\xed]")
# Two words joined by '/', '-' or '_': ETH/BTC, BTC-USD, ETH-PERP, and compounds (near-term).
_SEPARATOR: Final = re.compile(rb"[/_-]")
_LEFT_WORD: Final = re.compile(rb"([$#]?[A-Za-z0-9]{1,14}) ?$")
_RIGHT_WORD: Final = re.compile(rb" ?([A-Za-z0-9]{1,14})(?![A-Za-z0-9])")


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


def _csv_rows(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def load_catalogue(text: str) -> dict[str, Coin]:
    """Parse a coin catalogue in the ``coins.csv`` format (comment lines start with '#')."""
    coins: dict[str, Coin] = {}
    for row_number, row in enumerate(_csv_rows(text), start=1):
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
            other_tickers=tuple(t.upper() for t in _split_list(row.get("other_tickers"))),
        )
    return coins


def load_scripts(text: str, coins: Mapping[str, Coin]) -> list[tuple[str, str, bool]]:
    """Parse ``coins_scripts.csv``: (ticker, lower-case name, ambiguous) for known tickers."""
    names: list[tuple[str, str, bool]] = []
    seen: dict[str, str] = {}
    for row_number, row in enumerate(_csv_rows(text), start=1):
        where = f"{_SCRIPTS_FILE} row {row_number}"
        ticker = (row.get("ticker") or "").strip().upper()
        term = " ".join((row.get("term") or "").lower().split())
        if ticker not in coins:
            raise ValueError(f"{where}: ticker {ticker!r} is not in the catalogue")
        if not term:
            raise ValueError(f"{where}: the term is empty")
        if term in seen and seen[term] != ticker:
            raise ValueError(f"{where}: {term!r} is claimed by both {seen[term]} and {ticker}")
        seen[term] = ticker
        names.append((ticker, term, _parse_bool(row.get("ambiguous") or "", where)))
    return names


def _token(word: str, where: str) -> bytes:
    """``word`` as the linker's tokenizer sees it; raise if it is not exactly one token."""
    encoded = word.lower().encode()
    tokens = encoded.translate(_KEEP_BYTES).split()
    if tokens != [encoded]:
        raise ValueError(f"{_EVIDENCE_FILE}: {where}: {word!r} is not one word to the tokenizer")
    return encoded


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{_EVIDENCE_FILE}: {where} must be a number, got {value!r}")
    return float(value)


def _local_table(table: Any, where: str) -> dict[bytes, float]:
    if not isinstance(table, dict):
        raise ValueError(f"{_EVIDENCE_FILE}: {where} must be a table of word = weight")
    out: dict[bytes, float] = {}
    for word, weight in table.items():
        key = _NUMBER if word == "<n>" else _token(word, where)
        out[key] = out.get(key, 0.0) + _number(weight, f"{where}.{word}")
    return out


@dataclass(frozen=True)
class Evidence:
    """The weights of ``coins_evidence.toml`` (see that file for what each one means)."""

    threshold: float
    prior: Mapping[str, float]
    cap_post_positive: float
    cap_post_negative: float
    cap_other_coins: float
    cap_local: float
    other_coin: float
    list_neighbour: float
    list_candidate: float
    list_fillers: frozenset[bytes]
    determiners: frozenset[bytes]
    compound: float
    words: Mapping[bytes, float]
    field_of: Mapping[bytes, int]  # word -> index of its field (groups with a negative weight)
    first_of_field: float  # what the first word of a field counts, as a share of its weight
    apart: tuple[tuple[frozenset[bytes], float], ...]  # groups summed apart, with their cap
    script_words: Mapping[str, float]
    coin_like: frozenset[bytes]
    before: Mapping[bytes, float]
    after: Mapping[bytes, float]
    term_adjust: Mapping[bytes, float] = field(default_factory=dict)
    term_upper: Mapping[bytes, float] = field(default_factory=dict)
    term_before: Mapping[bytes, Mapping[bytes, float]] = field(default_factory=dict)
    term_after: Mapping[bytes, Mapping[bytes, float]] = field(default_factory=dict)
    script_before: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    script_after: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


_PRIOR_KEYS: Final = (
    "cashtag",
    "pair",
    "coin_hashtag",
    "hashtag",
    "hashtag_ambiguous",
    "name",
    "name_ambiguous",
    "ticker_upper",
    "ticker_lower",
    "ticker_upper_ambiguous",
    "ticker_lower_ambiguous",
    "script",
    "script_ambiguous",
)


def load_evidence(text: str) -> Evidence:
    """Parse an evidence file in the ``coins_evidence.toml`` format; raise ValueError if wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{_EVIDENCE_FILE}: {error}") from None
    try:
        prior = {key: _number(data["prior"][key], f"prior.{key}") for key in _PRIOR_KEYS}
        caps, coins = data["caps"], data["coins"]
        words: dict[bytes, float] = {}
        field_of: dict[bytes, int] = {}
        apart: list[tuple[frozenset[bytes], float]] = []
        script_words: dict[str, float] = {}
        owner: dict[str, str] = {}
        coin_like: set[bytes] = set()
        for group_index, (group, spec) in enumerate(data["words"].items()):
            weight = _number(spec["weight"], f"words.{group}.weight")
            if "cap" in spec:
                members = frozenset(_token(w, f"words.{group}") for w in spec["words"])
                apart.append((members, _number(spec["cap"], f"words.{group}.cap")))
            for word in spec["words"]:
                low = word.lower()
                if weight < 0 and low.isascii() and "cap" not in spec:
                    field_of[_token(low, f"words.{group}")] = group_index
                if low in owner:
                    raise ValueError(
                        f"{_EVIDENCE_FILE}: {word!r} is in both words.{owner[low]} "
                        f"and words.{group}"
                    )
                owner[low] = group
                if low.isascii():
                    words[_token(low, f"words.{group}")] = weight
                else:
                    script_words[low] = weight
                if group == "other_coins":
                    coin_like.add(_token(low, f"words.{group}"))
        before: dict[bytes, float] = {}
        after: dict[bytes, float] = {}
        for group in data["local"].values():
            for target, side in ((before, "before"), (after, "after")):
                for key, weight in _local_table(group.get(side, {}), f"local.{side}").items():
                    target[key] = target.get(key, 0.0) + weight
        term_adjust: dict[bytes, float] = {}
        term_upper: dict[bytes, float] = {}
        term_before: dict[bytes, dict[bytes, float]] = {}
        term_after: dict[bytes, dict[bytes, float]] = {}
        script_before: dict[str, dict[str, float]] = {}
        script_after: dict[str, dict[str, float]] = {}
        for term, spec in data.get("terms", {}).items():
            where = f"terms.{term}"
            if term.isascii():
                key = _token(term, where)
                if "adjust" in spec:
                    term_adjust[key] = _number(spec["adjust"], f"{where}.adjust")
                if "upper" in spec:
                    term_upper[key] = _number(spec["upper"], f"{where}.upper")
                if "before" in spec:
                    term_before[key] = _local_table(spec["before"], f"{where}.before")
                if "after" in spec:
                    term_after[key] = _local_table(spec["after"], f"{where}.after")
            else:
                for side, target_s in (("before", script_before), ("after", script_after)):
                    if side in spec:
                        target_s[term.lower()] = {
                            w.lower(): _number(v, f"{where}.{side}.{w}")
                            for w, v in spec[side].items()
                        }
        return Evidence(
            threshold=_number(data["threshold"], "threshold"),
            prior=prior,
            cap_post_positive=_number(caps["post_positive"], "caps.post_positive"),
            cap_post_negative=_number(caps["post_negative"], "caps.post_negative"),
            cap_other_coins=_number(caps["other_coins"], "caps.other_coins"),
            cap_local=_number(caps["local"], "caps.local"),
            other_coin=_number(coins["other_coin"], "coins.other_coin"),
            list_neighbour=_number(coins["list_neighbour"], "coins.list_neighbour"),
            list_candidate=_number(coins["list_candidate"], "coins.list_candidate"),
            list_fillers=frozenset(_token(w, "coins.list_fillers") for w in coins["list_fillers"]),
            determiners=frozenset(_token(w, "coins.determiners") for w in coins["determiners"]),
            compound=_number(coins["compound"], "coins.compound"),
            words=words,
            field_of=field_of,
            first_of_field=_number(caps["first_of_field"], "caps.first_of_field"),
            apart=tuple(apart),
            script_words=script_words,
            coin_like=frozenset(coin_like),
            before=before,
            after=after,
            term_adjust=term_adjust,
            term_upper=term_upper,
            term_before=term_before,
            term_after=term_after,
            script_before=script_before,
            script_after=script_after,
        )
    except KeyError as missing:
        raise ValueError(f"{_EVIDENCE_FILE}: missing {missing}") from None
    except (TypeError, AttributeError) as error:
        raise ValueError(f"{_EVIDENCE_FILE}: malformed ({error})") from None


@dataclass(frozen=True, slots=True)
class _Term:
    """What the matcher knows about one term before it sees a post."""

    ticker: str
    form: _Form
    prior_upper: float  # prior + the term's adjustments, when written in capitals
    prior_lower: float  # ... otherwise (the same for forms other than tickers)
    placed: bool  # its position matters: case, or words around it
    local: bool  # the generic words around it and list neighbours count (ambiguous words)
    before: Mapping[bytes, float]  # its own rules
    after: Mapping[bytes, float]
    own: float  # its weight as a word of the post ("gas"), which is no evidence for itself
    floor: float  # the lowest the words around it can make its score (to skip looking at them)


@dataclass(slots=True)
class _Candidate:
    """One place where a coin's term appears in a post, and the parts of its score."""

    ticker: str
    label: str | bytes  # the term, "pair" or the name in another script (for explain())
    term: _Term | None
    index: int  # position in the token list, -1 when it has none (pairs, other scripts)
    base: float  # prior + the term's own adjustment (and its rules, for other scripts)
    parts: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # base, post, coins, local


_EMPTY: Final[Mapping[bytes, float]] = {}
# The next word after a name in another script, past the rest of its own word (an inflection).
_NEXT_WORD: Final = re.compile(r"\w*\W+(\w+)")
# Scripts whose words are separated by spaces and inflected at the end: a name must start a word.
_WORD_START_SCRIPTS: Final = re.compile(r"[\u0370-\u052f\u0900-\u097f\u1100-\u11ff\uac00-\ud7af]")


class CoinMatcher:
    """Finds coin mentions in text for one catalogue; build once, call ``mentions`` per post."""

    def __init__(
        self,
        coins: Mapping[str, Coin],
        context_words: Iterable[str] = (),
        *,
        evidence: Evidence | None = None,
        scripts: Iterable[tuple[str, str, bool]] = (),
    ) -> None:
        """Index every term of ``coins``; raise ValueError if a term names two coins.

        ``context_words`` are extra crypto words (weighted like the evidence file's ``coin``);
        ``evidence`` defaults to the package's ``coins_evidence.toml``; ``scripts`` are names in
        other scripts as ``load_scripts`` returns them.
        """
        ev = evidence if evidence is not None else _EVIDENCE
        if context_words:
            crypto = dict(ev.words)
            weight = ev.words.get(b"coin", 1.0)
            for word in context_words:
                crypto.setdefault(_token(word, "context word"), weight)
            ev = replace(ev, words=crypto)
        self._ev: Final = ev
        forms: dict[bytes, tuple[str, _Form]] = {}
        phrases: dict[tuple[str, ...], str] = {}

        def add(token: str, ticker: str, form: _Form) -> None:
            if not token.isascii():
                raise ValueError(f"coin term {token!r} of {ticker} is not ASCII")
            key = token.encode()
            known = forms.get(key)
            if known is not None and known[0] != ticker:
                raise ValueError(f"coin term {token!r} is claimed by both {known[0]} and {ticker}")
            if known is None or _PRECEDENCE.index(form) < _PRECEDENCE.index(known[1]):
                forms[key] = (ticker, form)

        def add_name(term: str, ticker: str, ambiguous: bool) -> None:
            words = _words(term)
            if not words:
                return
            joined = "".join(words)
            if len(words) > 1:
                # Multi-word names are rewritten to one token before lookup (see mentions()).
                phrases[tuple(words)] = joined
            add(joined, ticker, _Form.NAME_AMBIGUOUS if ambiguous else _Form.NAME)
            add("#" + joined, ticker, _Form.HASHTAG_AMBIGUOUS if ambiguous else _Form.HASHTAG)

        pair_bases: dict[bytes, str] = {}
        for coin in coins.values():
            for symbol in (coin.ticker, *coin.other_tickers):
                low = symbol.lower()
                pair_bases[low.encode()] = coin.ticker
                ambiguous = coin.ticker_ambiguous and symbol == coin.ticker
                add("$" + low, coin.ticker, _Form.CASHTAG)
                add(low, coin.ticker, _Form.TICKER_AMBIGUOUS if ambiguous else _Form.TICKER)
                add(
                    "#" + low,
                    coin.ticker,
                    _Form.HASHTAG_AMBIGUOUS if ambiguous else _Form.HASHTAG,
                )
            add_name(coin.name, coin.ticker, coin.name_ambiguous)
            for alias in coin.aliases:
                add_name(alias.removeprefix("~"), coin.ticker, alias.startswith("~"))
            for tag in coin.hashtags:
                add("#" + "".join(_words(tag)), coin.ticker, _Form.COIN_HASHTAG)

        stables = frozenset(q.encode() for q in _STABLE_QUOTES)
        terms: dict[bytes, _Term] = {}
        quick: set[bytes] = set()
        rule_words: dict[bytes, frozenset[bytes]] = {}
        for key, (ticker, form) in forms.items():
            bare_word = key.removeprefix(
                b"#"
            )  # a hashtag is the same word; a cashtag is deliberate
            bare = form is not _Form.CASHTAG
            adjust = ev.term_adjust.get(bare_word, 0.0) if bare else 0.0
            before = ev.term_before.get(key, _EMPTY) if form is not _Form.CASHTAG else _EMPTY
            after = ev.term_after.get(key, _EMPTY) if form is not _Form.CASHTAG else _EMPTY
            if form in (_Form.TICKER, _Form.TICKER_AMBIGUOUS):
                ambiguous = form is _Form.TICKER_AMBIGUOUS
                upper = ev.prior["ticker_upper_ambiguous" if ambiguous else "ticker_upper"]
                lower = ev.prior["ticker_lower_ambiguous" if ambiguous else "ticker_lower"]
                upper += adjust + ev.term_upper.get(bare_word, 0.0)
                lower += adjust
            else:
                upper = lower = ev.prior[form.value] + adjust
            local = form in _LOCAL_FORMS
            placed = local or bool(before or after) or form is _Form.TICKER
            own = ev.words.get(key, 0.0)
            floor = min(before.values(), default=0.0) + min(after.values(), default=0.0)
            floor = min(floor, 0.0) - (ev.cap_local if local else 0.0)
            terms[key] = _Term(ticker, form, upper, lower, placed, local, before, after, own, floor)
            rules = frozenset(before) | frozenset(after)
            if (
                form not in _AMBIGUOUS_FORMS
                and min(upper, lower) >= ev.threshold
                and _NUMBER not in rules
            ):
                # Decided without scoring when the post has no word of another field and none
                # of the term's own rules (see mentions()).
                quick.add(key)
                if rules:
                    rule_words[key] = rules
        # Glued pairs are whole tokens: every catalogue ticker (and former one) with every quote,
        # with the '_' some exchanges write and the '1000' prefix of small-priced perpetuals.
        # A stablecoin quote is not a mention (BTCUSDT is BTC); a coin quote is (ETHBTC), and
        # then the pair must be written in capitals, since "opeth" is a band, not OP/ETH.
        glued: dict[bytes, tuple[str, bytes | None]] = {}
        for base, base_ticker in pair_bases.items():
            for prefix in (b"", b"1000"):
                for sep in (b"", b"_"):
                    for quote in _STABLE_SUFFIXES:
                        glued.setdefault(prefix + base + sep + quote, (base_ticker, None))
                    for quote in _COIN_SUFFIXES:
                        if quote != base and quote in pair_bases:
                            glued.setdefault(prefix + base + sep + quote, (base_ticker, quote))
        for key in list(glued):
            if key in forms:
                del glued[key]  # a term of its own (none today), which wins
        self._glued: Final = {
            key: (base, None if quote is None else pair_bases[quote])
            for key, (base, quote) in glued.items()
        }
        self._glued_keys: Final = frozenset(glued)
        self._terms: Final = terms
        self._vocab: Final = frozenset(terms)
        self._quick: Final = frozenset(quick)
        self._stable_terms: Final = frozenset(
            key for key, term in terms.items() if term.ticker.lower().encode() in stables
        )
        self._rule_words: Final = rule_words
        self._ruled: Final = frozenset(rule_words)
        self._ticker_of: Final = {key: term.ticker for key, term in terms.items()}
        self._pair_bases: Final = pair_bases
        self._stable_quotes: Final = stables
        self._coin_quotes: Final = frozenset(q.encode() for q in _COIN_QUOTES)
        self._negative: Final = frozenset(w for w, weight in ev.words.items() if weight < 0)
        self._weighted: Final = frozenset(ev.words)
        self._neighbours: Final = self._vocab | ev.coin_like

        # Longest phrases first, so "shiba inu coin" wins over "shiba inu".
        by_first: dict[bytes, list[tuple[tuple[bytes, ...], bytes]]] = {}
        for words_ in sorted(phrases, key=lambda p: -len(p)):
            rest = tuple(w.encode() for w in words_[1:])
            # '@' joins too, so that '@bitcoin cash' is one handle, not a mention of Bitcoin.
            for sigil in ("", "#", "@"):
                first = (sigil + words_[0]).encode()
                by_first.setdefault(first, []).append((rest, (sigil + phrases[words_]).encode()))
        self._phrases_by_first: Final = by_first
        self._phrase_first: Final = frozenset(by_first)
        self._phrase_second: Final = frozenset(p[1].encode() for p in phrases)
        self._lookup: Final = self._vocab.union(
            self._weighted,
            self._phrase_first,
            self._phrase_second,
            self._glued_keys,
            *rule_words.values(),
        )

        # Other scripts: names and crypto words, found from their first character (a character
        # class scan in C), then compared in full. Words of Latin script with accents (preço)
        # are found in a post that has such letters at all.
        self._script_names: Final = {term: (ticker, amb) for ticker, term, amb in scripts}
        script_by_first: dict[str, list[tuple[str, bool]]] = {}
        latin: list[str] = []
        for term in sorted({*self._script_names, *ev.script_words}, key=lambda t: -len(t)):
            if term[0].isascii():
                latin.append(term)
                continue
            anchored = _WORD_START_SCRIPTS.match(term) is not None
            script_by_first.setdefault(term[0], []).append((term, anchored))
        firsts = {c for first in script_by_first for c in (first, first.upper())}
        self._script_by_first: Final = script_by_first
        self._script_hint_chars: Final = frozenset(c for chars in firsts for c in chars)
        self._latin_terms: Final = tuple(latin)
        self._script_hint: Final = re.compile(
            "[" + "".join(re.escape(c) for c in sorted(firsts)) + "]" if firsts else r"(?!)"
        )
        self._latin_re: Final = re.compile(
            r"(?<!\w)(?:" + "|".join(map(re.escape, latin)) + r")" if latin else r"(?!)"
        )
        self._quick_core: Any = False  # not built yet (see _compiled)

    def mentions_many(self, texts: list[str]) -> list[list[str]]:
        """``mentions`` of each text, in order: the compiled core decides the common case
        (rust/vader_core/src/coins.rs, when installed) and hands every other post back here."""
        quick = self._compiled()
        if quick is None:
            return [self.mentions(text) for text in texts]
        mentions = self.mentions
        return [
            decided if decided is not None else mentions(text)
            for decided, text in zip(quick.mentions_many(texts), texts, strict=True)
        ]

    def _compiled(self) -> Any:
        """The compiled common case over this matcher's tables (built once), or None."""
        if self._quick_core is False:
            from cryptosent.analysis._native import CORE

            words = []
            for word in self._lookup:
                bits = sum(
                    1 << bit
                    for bit, words_ in enumerate(
                        (self._vocab, self._quick, self._negative, self._stable_terms,
                         self._phrase_first, self._phrase_second, self._glued_keys)
                    )
                    if word in words_
                )  # fmt: skip
                rules = self._rule_words.get(word)
                words.append((word, bits, self._ticker_of.get(word), rules and list(rules)))
            phrases = [
                (first, [(list(rest), joined) for rest, joined in names])
                for first, names in self._phrases_by_first.items()
            ]
            core = getattr(CORE, "CoinQuick", None)
            self._quick_core = core(words, phrases, self._scoring()) if core is not None else None
        return self._quick_core

    def _scoring(self) -> dict[str, Any]:
        """The terms and the evidence weights for the compiled ``_decide`` (see coins.rs)."""
        ev = self._ev
        apart_group = {word: i for i, (members, _) in enumerate(ev.apart) for word in members}
        return {
            "terms": [
                (
                    key,
                    t.ticker,
                    t.prior_upper,
                    t.prior_lower,
                    t.placed,
                    t.local,
                    list(t.before.items()),
                    list(t.after.items()),
                    t.own,
                    t.floor,
                )
                for key, t in self._terms.items()
            ],
            "words": [
                (word, weight, ev.field_of.get(word), apart_group.get(word))
                for word, weight in ev.words.items()
            ],
            "neighbours": list(self._neighbours),
            "glued": [(key, base, quote) for key, (base, quote) in self._glued.items()],
            "pair_bases": list(self._pair_bases.items()),
            "stable_quotes": list(self._stable_quotes),
            "coin_quotes": list(self._coin_quotes),
            "before": list(ev.before.items()),
            "after": list(ev.after.items()),
            "apart_caps": [cap for _, cap in ev.apart],
            "determiners": list(ev.determiners),
            "list_fillers": list(ev.list_fillers),
            "threshold": ev.threshold,
            "pair": ev.prior["pair"],
            "cap_post_positive": ev.cap_post_positive,
            "cap_post_negative": ev.cap_post_negative,
            "cap_other_coins": ev.cap_other_coins,
            "cap_local": ev.cap_local,
            "other_coin": ev.other_coin,
            "list_neighbour": ev.list_neighbour,
            "list_candidate": ev.list_candidate,
            "compound": ev.compound,
            "first_of_field": ev.first_of_field,
            **self._script_tables(),
        }

    def _script_tables(self) -> dict[str, Any]:
        """``_scripts``' terms for the compiled core, with Python's Unicode rules where they
        decide a match: which characters lower-case to a term's, which are ``\\w``."""
        ev = self._ev
        anchored = {term: a for entries in self._script_by_first.values() for term, a in entries}
        terms = sorted({*self._script_names, *ev.script_words}, key=lambda t: (-len(t), t))
        index = {term: i for i, term in enumerate(terms)}
        rows: list[tuple[str, bool, str | None, float, bool]] = []
        for term in terms:
            known = self._script_names.get(term)
            if known is None:
                rows.append((term, anchored.get(term, False), None, ev.script_words[term], False))
                continue
            ticker, ambiguous = known
            prior = ev.prior["script_ambiguous" if ambiguous else "script"]
            ruled = term in ev.script_before or term in ev.script_after
            rows.append((term, anchored.get(term, False), ticker, prior, ruled))
        hints = [
            (c, [index[term] for term, _ in self._script_by_first[c.lower()]])
            for c in sorted(self._script_hint_chars)
            if c.lower() in self._script_by_first
        ]
        lower_of = [
            (upper, c)
            for c in sorted({c for term in terms for c in term})
            for upper in sorted({c, *c.upper(), *c.title()})
            if not upper.isascii() and upper.lower() == c
        ]
        plane = "".join(map(chr, range(0x10000)))
        word_ranges = [(m.start(), m.end()) for m in re.finditer(r"\w+", plane)]
        latin = sorted(self._latin_terms, key=lambda t: (-len(t), t))
        return {
            "scripts": rows,
            "hints": hints,
            "latin": [index[term] for term in latin],
            "lower_of": lower_of,
            "word_ranges": word_ranges,
        }

    def _phrase_spans(
        self, tokens: list[bytes], firsts: Iterable[bytes]
    ) -> list[tuple[int, int, bytes]]:
        """(start, length, joined token) of each multi-word name in ``tokens``, left to right;
        ``firsts`` are the first words of names that occur in it."""
        spans: list[tuple[int, int, bytes]] = []
        for first in firsts:
            start = 0
            while True:
                try:
                    i = tokens.index(first, start)
                except ValueError:
                    break
                start = i + 1
                # Longest names first, so "shiba inu coin" wins over "shiba inu".
                for rest, joined in self._phrases_by_first[first]:
                    if tuple(tokens[i + 1 : i + 1 + len(rest)]) == rest:
                        spans.append((i, 1 + len(rest), joined))
                        break
        spans.sort()
        return spans

    @staticmethod
    def _join(tokens: list[bytes], spans: list[tuple[int, int, bytes]]) -> list[bytes]:
        """``tokens`` with each span replaced by its joined token (overlaps: the first wins)."""
        out: list[bytes] = []
        done = 0
        for start, length, joined in spans:
            if start < done:
                continue
            out.extend(tokens[done:start])
            out.append(joined)
            done = start + length
        out.extend(tokens[done:])
        return out

    def explain(self, text: str) -> list[dict[str, object]]:
        """Every candidate of ``text`` with the parts of its score, for people tuning the
        evidence file: ticker, term, prior, post, coins, local, score, counted."""
        trace: list[_Candidate] = []
        self.mentions(text, trace)
        return [
            {
                "ticker": c.ticker,
                "term": c.label.decode() if isinstance(c.label, bytes) else c.label,
                "prior": c.parts[0],
                "post": c.parts[1],
                "coins": c.parts[2],
                "local": c.parts[3],
                "score": sum(c.parts),
                "counted": sum(c.parts) >= self._ev.threshold,
            }
            for c in trace
        ]

    def mentions(self, text: str, trace: list[_Candidate] | None = None) -> list[str]:
        """Canonical tickers of the coins ``text`` is about, sorted, each once."""
        # surrogatepass: a str may hold lone surrogates, and this must never raise.
        raw = text.encode("utf-8", "surrogatepass")
        if b"/" in raw or b"www." in raw or b"WWW." in raw:
            raw = _strip_links(raw.translate(_SPACE_BYTES))
        words = raw.translate(_WORD_BYTES).split()
        tokens = words
        # One pass over the words finds every word the matcher cares about: coin terms, words of
        # other fields, first and second words of multi-word names, the terms' own rule words.
        found = self._lookup.intersection(tokens)
        hits = found & self._vocab
        spans: list[tuple[int, int, bytes]] = []
        if not self._phrase_second.isdisjoint(found) and not self._phrase_first.isdisjoint(found):
            spans = self._phrase_spans(words, found & self._phrase_first)
            if spans:
                tokens = self._join(words, spans)
                hits = self._vocab.intersection(tokens)
                found = found | hits
        glued = not self._glued_keys.isdisjoint(found)
        other_script = not raw.isascii() and _OTHER_SCRIPT_BYTES.search(raw) is not None
        if not (hits or glued or other_script):
            return []
        if (
            trace is None
            and hits <= self._quick
            and not glued
            and not other_script
            and self._negative.isdisjoint(found)
            and (
                self._stable_terms.isdisjoint(hits)
                or not (b"/" in raw or b"-" in raw or b"_" in raw)
            )
            and (
                self._ruled.isdisjoint(hits)
                or all(self._rule_words[t].isdisjoint(found) for t in hits & self._ruled)
            )
        ):
            # The common case: only unambiguous terms in a post with no word of another field.
            ticker_of = self._ticker_of
            return sorted({ticker_of[term] for term in hits})
        joined = b"/" in raw or b"-" in raw or b"_" in raw
        kept = raw.translate(_KEEP_BYTES)
        cased = kept.split()
        if spans:
            cased = self._join(cased, spans)
        return self._decide(
            text, raw, kept, tokens, cased, hits, found, glued, joined, other_script, trace
        )

    def _decide(
        self,
        text: str,
        raw: bytes,
        kept: bytes,
        tokens: list[bytes],
        cased: list[bytes],
        hits: frozenset[bytes],
        found: frozenset[bytes],
        glued: bool,
        joined: bool,
        other_script: bool,
        trace: list[_Candidate] | None,
    ) -> list[str]:
        """Score every candidate of one post; the tickers of those that reach the threshold."""
        ev = self._ev
        candidates: list[_Candidate] = []
        quoted: set[int] = set()  # token positions of stablecoins quoted in a pair
        compounds: set[tuple[bytes, bytes]] = set()
        for ticker in self._pairs(raw, tokens, cased, glued, joined, quoted, compounds):
            candidates.append(_Candidate(ticker, "pair", None, -1, ev.prior["pair"]))

        shouting = kept.isupper()  # a post in capitals says nothing by its case
        for key in hits:
            term = self._terms[key]
            if not term.placed:
                candidates.append(_Candidate(term.ticker, key, term, -1, term.prior_lower))
                continue
            start = 0
            while True:
                try:
                    i = tokens.index(key, start)
                except ValueError:
                    break
                start = i + 1
                if i in quoted:
                    continue
                upper = not shouting and cased[i].isupper()
                prior = term.prior_upper if upper else term.prior_lower
                candidates.append(_Candidate(term.ticker, key, term, i, prior))

        script_context = (
            self._scripts(text, raw, candidates, other_script)
            if other_script or b"\xc3" in raw
            else []
        )
        if not candidates:
            return []

        post_words = found & self._weighted
        apart = 0.0
        for members, cap in ev.apart:
            if not members.isdisjoint(post_words):
                in_group = members.intersection(post_words)
                post_words = post_words - in_group
                total = sum(ev.words[w] for w in in_group)
                apart += max(total, cap) if cap < 0 else min(total, cap)
        positive = sum(script_context)
        negative = 0.0
        fields: set[int] = set()
        for w in post_words:
            weight = ev.words[w]
            if weight > 0:
                positive += weight
            else:
                field_index = ev.field_of[w]
                # One stray word of another field is weak evidence; two of the same are not.
                negative += weight if field_index in fields else weight * ev.first_of_field
                fields.add(field_index)

        cap_positive, cap_negative, threshold = (
            ev.cap_post_positive,
            ev.cap_post_negative,
            ev.threshold,
        )
        post_all = min(positive, cap_positive) + max(negative, cap_negative) + apart
        confirmed: set[str] = set()
        pending = candidates
        # A coin confirmed in one round is evidence for the others in the next ("btc, eth, sol").
        # Rounds see the coins confirmed before them only, so the order of candidates (a set's)
        # cannot change the result.
        for _ in range(4):
            new = False
            settled = frozenset(confirmed)
            others = min(ev.other_coin * len(settled), ev.cap_other_coins)
            for c in pending:
                if c.ticker in settled:
                    continue
                own = c.term.own if c.term is not None else 0.0
                if own:
                    post = (
                        min(positive - max(own, 0.0), cap_positive)
                        + max(negative - min(own, 0.0), cap_negative)
                        + apart
                    )
                else:
                    post = post_all
                score = c.base + post + others
                if c.index < 0 or (
                    c.term is not None and trace is None and score + c.term.floor >= threshold
                ):
                    local = 0.0  # counted whatever the words around it say
                else:
                    local = self._local(c, tokens, settled, compounds)
                c.parts = (c.base, post, others, local)
                if score + local >= threshold:
                    confirmed.add(c.ticker)
                    new = True
            if not new:
                break
            pending = [c for c in pending if c.ticker not in confirmed]
            if not pending:
                break
        if trace is not None:
            trace.extend(candidates)
        return sorted(confirmed)

    def _local(
        self,
        c: _Candidate,
        tokens: list[bytes],
        confirmed: frozenset[str],
        compounds: set[tuple[bytes, bytes]],
    ) -> float:
        """What the words around candidate ``c`` say (its term's own rules are not capped)."""
        ev = self._ev
        term = c.term
        if term is None:
            return 0.0
        i = c.index
        key = tokens[i]
        prev = tokens[i - 1] if i > 0 else b""
        nxt = tokens[i + 1] if i + 1 < len(tokens) else b""
        prev_key = _NUMBER if prev[:1].isdigit() else prev
        next_key = _NUMBER if nxt[:1].isdigit() else nxt
        rules = term.before.get(prev_key, 0.0) + term.after.get(next_key, 0.0)
        if nxt == b"s" and i + 2 < len(tokens):
            # Through a possessive: "Kusama's pumpkins", "Cardano's formula".
            rules += term.after.get(tokens[i + 2], 0.0)
        if not term.local:
            return rules
        score = ev.before.get(prev_key, 0.0) + ev.after.get(next_key, 0.0)
        if prev in ev.determiners and i > 1:
            # "sold my dot": the verb before the determiner says what the word is.
            score += max(ev.before.get(tokens[i - 2], 0.0), 0.0)
        if compounds and ((prev, key) in compounds or (key, nxt) in compounds):
            score += ev.compound
        for step in (-1, 1):
            j = i + step
            skipped = 0
            while (
                0 <= j < len(tokens)
                and skipped < 2
                and (tokens[j] in ev.list_fillers or tokens[j][:1].isdigit())
            ):
                j += step
                skipped += 1
            if not 0 <= j < len(tokens):
                continue
            neighbour = tokens[j]
            if neighbour == key or neighbour not in self._neighbours:
                continue
            known = self._terms.get(neighbour)
            if known is not None and known.ticker == c.ticker:
                continue
            if known is not None and known.ticker in confirmed:
                score += ev.list_neighbour
            else:
                score += ev.list_candidate
        return rules + max(-ev.cap_local, min(score, ev.cap_local))

    def _pairs(
        self,
        raw: bytes,
        tokens: list[bytes],
        cased: list[bytes],
        glued: bool,
        joined: bool,
        quoted: set[int],
        compounds: set[tuple[bytes, bytes]],
    ) -> set[str]:
        """Tickers named in trading pairs; marks quoted stablecoins and hyphenated compounds."""
        found: set[str] = set()
        if glued:
            for i, token in enumerate(tokens):
                pair = self._glued.get(token)
                if pair is None:
                    continue
                base, quote = pair
                if quote is None:
                    found.add(base)
                elif cased[i].isupper():
                    found.add(base)
                    found.add(quote)
        if not joined:
            return found
        stables: set[bytes] = set()
        for m in _SEPARATOR.finditer(raw):
            # The words on either side of '/', '-' or '_': ETH/BTC, BTC-USD, near-term.
            pos = m.start()
            left_m = _LEFT_WORD.search(raw, max(0, pos - 17), pos)
            right_m = _RIGHT_WORD.match(raw, pos + 1)
            if left_m is None or right_m is None:
                continue
            written = left_m.group(1)
            left = written.lower().lstrip(b"$#")
            right = right_m.group(1).lower()
            left_coin = self._pair_bases.get(left.removeprefix(b"1000") if len(left) > 5 else left)
            if left_coin is not None and right in self._stable_quotes:
                found.add(left_coin)
                stables.add(right)
            elif (
                left_coin is not None
                and right in self._coin_quotes
                and right in self._pair_bases
                and written[:1] not in b"$#"
            ):
                found.add(left_coin)
                found.add(self._pair_bases[right])
            elif m.group() == b"-":
                compounds.add((left, right))
        if stables:
            # A stablecoin quoted in a pair (BTC/USDT) is not a mention of it.
            for i, token in enumerate(tokens):
                if token in stables and i > 0 and tokens[i - 1].lstrip(b"$#") in self._pair_bases:
                    quoted.add(i)
        return found

    def _scripts(
        self, text: str, raw: bytes, candidates: list[_Candidate], other_script: bool
    ) -> list[float]:
        """Add the coin names written in other scripts (비트코인, эфир) to ``candidates``;
        return the weights of the crypto words of other scripts in ``text``."""
        ev = self._ev
        context: list[float] = []
        found: list[tuple[str, int, int]] = []
        free = 0
        for m in self._script_hint.finditer(text) if other_script else ():
            pos = m.start()
            if pos < free:
                continue
            for term, anchored in self._script_by_first.get(text[pos].lower(), ()):
                end = pos + len(term)
                if text[pos:end].lower() != term:
                    continue
                if anchored and pos and (text[pos - 1].isalnum() or text[pos - 1] == "_"):
                    continue
                found.append((term, pos, end))
                free = end
                break
        if b"\xc3" in raw:
            found.extend(
                (m.group(), m.start(), m.end()) for m in self._latin_re.finditer(text.lower())
            )
        for name, start, end in found:
            known = self._script_names.get(name)
            if known is None:
                context.append(ev.script_words[name])
                continue
            ticker, ambiguous = known
            prior = ev.prior["script_ambiguous" if ambiguous else "script"]
            before = ev.script_before.get(name)
            if before:
                words = text[max(0, start - 40) : start].lower().split()
                prior += before.get(words[-1] if words else "", 0.0)
            after = ev.script_after.get(name)
            if after:
                following = _NEXT_WORD.match(text.lower(), end)
                prior += after.get(following.group(1) if following else "", 0.0)
            candidates.append(_Candidate(ticker, name, None, -1, prior))
        return context


def _read_data(name: str) -> str:
    return resources.files("cryptosent.data").joinpath(name).read_text(encoding="utf-8")


COINS: Final[Mapping[str, Coin]] = load_catalogue(_read_data(_CATALOGUE_FILE))
"""The coin catalogue, ticker -> Coin, in file order (most attention first)."""

_EVIDENCE: Final = load_evidence(_read_data(_EVIDENCE_FILE))
_MATCHER: Final = CoinMatcher(
    COINS, evidence=_EVIDENCE, scripts=load_scripts(_read_data(_SCRIPTS_FILE), COINS)
)


def coin_mentions(text: str) -> list[str]:
    """Canonical tickers of the coins ``text`` is about, sorted, each once; never raises."""
    return _MATCHER.mentions(text)


def coin_mentions_many(texts: list[str]) -> list[list[str]]:
    """``coin_mentions`` of each text, in order (the common case in the compiled core)."""
    return _MATCHER.mentions_many(texts)
