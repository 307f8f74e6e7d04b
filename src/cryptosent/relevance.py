"""What the live sources keep, from the coin catalogue: what counts as a post about crypto, and
which tickers the exchanges' pairs may name.

Sources never import the analysis: the CLI builds these from the catalogue and passes them in
(`JetstreamSource(accept=crypto_filter())`, `XFilteredStream(rules=build_rules(x_track_terms()))`,
`PairMap(coin_tickers())` for the price sources), so Bluesky's filter, X's stream rules and the
exchanges' pairs follow the same `data/coins.csv`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from cryptosent.analysis.coins import COINS, Coin, coin_mentions

GENERIC_KEYWORDS: Final[tuple[str, ...]] = (
    "crypto",
    "cryptocurrency",
    "cryptocurrencies",
    "altcoin",
    "altcoins",
    "memecoin",
    "memecoins",
    "stablecoin",
    "stablecoins",
)
"""Generic crypto words that count on top of coin mentions (which come from the catalogue)."""

X_GENERIC_TERMS: Final[tuple[str, ...]] = ("crypto", "cryptocurrency")
X_TRACKED_COINS: Final = 20
"""How many coins (the most talked about first) X's stream rules track; with their cashtags and
names they fit one rule of the smallest plan (512 characters)."""


def keyword_matcher(keywords: Iterable[str]) -> Callable[[str], bool]:
    """A case-insensitive, word-bounded test for any of ``keywords`` (``$`` cashtags allowed)."""
    terms = sorted({k.strip().lower() for k in keywords if k.strip()}, key=len, reverse=True)
    if not terms:
        return lambda text: False
    pattern = re.compile(
        r"(?<![\w$])(?:" + "|".join(re.escape(t) for t in terms) + r")(?!\w)", re.IGNORECASE
    )
    return lambda text: pattern.search(text) is not None


def crypto_filter(keywords: Iterable[str] = GENERIC_KEYWORDS) -> Callable[[str], bool]:
    """True for a text that mentions a coin of the catalogue or one of ``keywords``."""
    matches_keyword = keyword_matcher(keywords)
    return lambda text: matches_keyword(text) or bool(coin_mentions(text))


def x_track_terms(
    coins: Mapping[str, Coin] = COINS,
    *,
    count: int = X_TRACKED_COINS,
    generic: Iterable[str] = X_GENERIC_TERMS,
) -> list[str]:
    """Terms for X's filtered stream: cashtags and unambiguous names of the first ``count``
    coins of the catalogue (most attention first), then ``generic``. Bare tickers are left out
    on purpose: "SOL", "DOT", "LINK" or "ADA" match far too much unrelated English."""
    terms: list[str] = []
    for coin in list(coins.values())[:count]:
        terms.append(f"${coin.ticker}")
        if not coin.name_ambiguous and coin.name.lower() != coin.ticker.lower():
            terms.append(coin.name.lower())
    terms += [term for term in generic if term not in terms]
    return terms


def coin_tickers(coins: Mapping[str, Coin] = COINS) -> dict[str, str]:
    """Every ticker an exchange may write for a coin of the catalogue -> the canonical ticker:
    the ticker itself and the coin's other tickers (``XBT`` -> ``BTC``, ``MATIC`` -> ``POL``)."""
    tickers: dict[str, str] = {}
    for coin in coins.values():
        for other in coin.other_tickers:
            tickers.setdefault(other.upper(), coin.ticker)
    for coin in coins.values():
        tickers[coin.ticker.upper()] = coin.ticker
    return tickers
