"""Exchange pairs <-> canonical coins: ``BTC-USD`` (Coinbase), ``BTC/USD`` or ``XBT/USD``
(Kraken), ``BTCUSDT`` (Binance) all name ``BTC`` in USD.

Only pairs quoted in US dollars count as prices: ``USD`` and the dollar stablecoins ``USDT``
and ``USDC`` (their small deviations from one dollar are ignored). Which tickers exist and which
other names they have (``XBT``, ``MATIC``) is passed in (`relevance.coin_tickers()`), so the
sources follow the coin catalogue without importing the analysis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

USD_QUOTES: Final = ("USDT", "USDC", "USD")
"""Quote currencies whose prices count as USD, longest first (for glued pairs like BTCUSDT)."""
_SEPARATORS: Final = ("-", "/", "_")


class PairMap:
    """Canonical coins of exchange pairs, and pairs for canonical coins."""

    def __init__(self, tickers: Mapping[str, str], extra: Mapping[str, str] | None = None) -> None:
        """``tickers``: every ticker an exchange may write (upper case) -> the canonical one;
        ``extra``: an exchange's own names on top (Kraken's ``XDG`` for DOGE)."""
        self._tickers = {k.upper(): v for k, v in tickers.items()}
        self._coins = frozenset(self._tickers.values())
        for name, coin in (extra or {}).items():
            if coin in self._coins:
                self._tickers.setdefault(name.upper(), coin)

    def is_coin(self, coin: str) -> bool:
        """Whether ``coin`` is a canonical ticker (what ``--coins`` accepts)."""
        return coin in self._coins

    def canonical(self, ticker: str) -> str | None:
        """The canonical ticker of a base currency as an exchange writes it, or None."""
        return self._tickers.get(ticker.upper())

    def split(self, symbol: str) -> tuple[str, str] | None:
        """(base, quote) of ``BTC-USD``, ``BTC/USD``, ``BTC_USDT`` or a glued ``BTCUSDT``
        (upper-cased); None when no USD quote can be found."""
        text = symbol.strip().upper()
        for separator in _SEPARATORS:
            if separator in text:
                base, _, quote = text.partition(separator)
                return (base, quote) if base and quote else None
        for quote in USD_QUOTES:
            if text.endswith(quote) and len(text) > len(quote):
                return text[: -len(quote)], quote
        return None

    def coin_of(self, symbol: str) -> str | None:
        """The canonical coin of a pair quoted in USD/USDT/USDC, or None (another quote, an
        unknown base, an unreadable symbol)."""
        parts = self.split(symbol)
        if parts is None or parts[1] not in USD_QUOTES:
            return None
        return self.canonical(parts[0])
