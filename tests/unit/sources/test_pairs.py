"""Exchange pairs -> canonical coins: separators, glued pairs, other tickers, USD quotes only."""

from __future__ import annotations

import pytest

from cryptosent.relevance import coin_tickers
from cryptosent.sources.exchanges.kraken import KRAKEN_NAMES
from cryptosent.sources.exchanges.pairs import PairMap

PAIRS = PairMap(coin_tickers(), KRAKEN_NAMES)


@pytest.mark.parametrize(
    ("symbol", "coin"),
    [
        ("BTC-USD", "BTC"), ("XBT/USD", "BTC"), ("BTCUSDT", "BTC"), ("btcusdt", "BTC"),
        ("ETH_USDC", "ETH"), ("XDG/USD", "DOGE"), ("MATICUSDT", "POL"), ("RNDR-USD", "RENDER"),
        ("1INCHUSDT", "1INCH"), ("USDCUSDT", "USDC"), ("POL-USD", "POL"),
        ("ETH-EUR", None), ("BTC/ETH", None), ("ETHBTC", None), ("FOO-USD", None),
        ("USDT", None), ("-USD", None), ("", None),
    ],
)  # fmt: skip
def test_coin_of(symbol: str, coin: str | None) -> None:
    assert PAIRS.coin_of(symbol) == coin


def test_coins_and_extra_names() -> None:
    assert PAIRS.is_coin("BTC") and not PAIRS.is_coin("XBT") and not PAIRS.is_coin("btc")
    assert PairMap(coin_tickers()).coin_of("XDG/USD") is None  # Kraken's name only for Kraken
    assert PairMap({"BTC": "BTC"}, {"ZZZ": "NOPE"}).canonical("ZZZ") is None
