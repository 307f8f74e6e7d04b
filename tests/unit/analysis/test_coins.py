"""coin_mentions: cashtags, hashtags, names, tickers, ambiguity, links and speed.

The context-aware rules (pairs, renames, other scripts, look-alikes, lists of holdings) are in
test_coin_context.py; quality on the labelled sets is in test_coin_quality.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosent.analysis.coins import COINS, Coin, CoinMatcher, coin_mentions, load_catalogue


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # One coin, many spellings: counted once.
        ("Bitcoin #bitcoin $BTC", ["BTC"]),
        ("$btc $BTC $Btc", ["BTC"]),
        ("#BTC and #eth", ["BTC", "ETH"]),
        ("btc eth doge", ["BTC", "DOGE", "ETH"]),
        ("ETHEREUM and Solana", ["ETH", "SOL"]),
        ("ether is money", ["ETH"]),
        ("Cardano", ["ADA"]),
        # Longest match wins.
        ("Bitcoin Cash is the real bitcoin", ["BCH", "BTC"]),
        ("Bitcoin Cash", ["BCH"]),
        ("BITCOIN CASH", ["BCH"]),
        ("Ethereum Classic vs ethereum", ["ETC", "ETH"]),
        ("Shiba Inu to the moon", ["SHIB"]),
        ("shiba-inu", ["SHIB"]),
        ("#Shiba Inu", ["SHIB"]),
        ("Wrapped Bitcoin on ETH", ["ETH", "WBTC"]),
        ("The Sandbox land sale", ["SAND"]),
        ("fetch.ai and $FET", ["FET"]),
        ("Internet Computer", ["ICP"]),
        # Punctuation and emoji around words.
        ("$ETH's ATH", ["ETH"]),
        ("BTC/USD", ["BTC"]),
        ("(bitcoin), ethereum!", ["BTC", "ETH"]),
        ("moon🚀btc🚀", ["BTC"]),
        ("bitcoins", ["BTC"]),
        # Word-bounded: no mention inside other words.
        ("bitcoinmaxi ethos solar", []),
        ("bitcoin_maxi", []),
        # Ambiguous words need crypto context...
        ("sol y playa", []),
        ("Qué día de sol", []),
        ("LINK in bio", []),
        ("ONE more day", []),
        ("ADA Lovelace was a mathematician", []),
        ("Optimism is great", []),
        ("#SOL", []),
        ("XRP ripple effect", ["XRP"]),
        ("ripple effect", []),
        # ... which another coin or a crypto word provides.
        ("SOL is pumping", ["SOL"]),
        ("ADA chart looks good", ["ADA"]),
        ("Optimism token pumping", ["OP"]),
        ("ripple price", ["XRP"]),
        ("#sol crypto", ["SOL"]),
        ("SOL preço", ["SOL"]),
        ("BTC and SOL", ["BTC", "SOL"]),
        ("$LINK and ONE", ["LINK", "ONE"]),
        # Bare ambiguous tickers must be upper case, even in context.
        ("link your wallet", []),
        ("the sol price", []),
        # Cashtags are always deliberate.
        ("$sol", ["SOL"]),
        ("$ONE $near $Atom", ["ATOM", "NEAR", "ONE"]),
        # Links and @mentions never count.
        ("@bitcoin says hi", []),
        ("hi @solana and @ethereum", []),
        ("https://x.com/solana nice", []),
        ("HTTPS://X.COM/SOLANA", []),
        ("x.com/solana", []),
        ("www.bitcoin.org", []),
        ("bitcoin.org/en", []),
        ("see https://t.co/abc\tsolana price", ["SOL"]),
        ("https://t.co/abc $BTC", ["BTC"]),
        # Nothing.
        ("", []),
        ("gm frens ☕ what are we buying today?", []),
        ("$100 giveaway", []),
    ],
)
def test_coin_mentions(text: str, expected: list[str]) -> None:
    assert coin_mentions(text) == expected


def test_catalogue_loaded() -> None:
    assert len(COINS) >= 60
    assert COINS["BTC"].name == "Bitcoin"
    # XBT is an alternative ticker (matched in pairs such as XBTUSD too), no longer an alias.
    assert COINS["BTC"].aliases[:3] == ("bitcoins", "satoshis", "sats")
    assert COINS["BTC"].other_tickers == ("XBT",)
    assert "~ether" in COINS["ETH"].aliases
    # Renames: the stored ticker is the new one, the old one maps to it.
    assert "MATIC" not in COINS and COINS["POL"].other_tickers == ("MATIC",)
    assert "RNDR" not in COINS and COINS["RENDER"].other_tickers == ("RNDR",)
    assert COINS["SOL"].ticker_ambiguous
    assert not COINS["BTC"].ticker_ambiguous
    assert next(iter(COINS)) == "BTC"
    assert all(coin.weight > 0 for coin in COINS.values())
    assert all(t == coin.ticker == t.upper() for t, coin in COINS.items())


_CSV = """# comment
ticker,name,weight,ticker_ambiguous,name_ambiguous,aliases,hashtags
AAA,Alpha,5,no,no,alfa|~first,alphaarmy
BBB,Beta Coin,1,yes,yes,,
"""


def test_custom_catalogue() -> None:
    coins = load_catalogue(_CSV)
    assert coins["AAA"] == Coin(
        "AAA", "Alpha", 5.0, False, False, ("alfa", "~first"), ("alphaarmy",)
    )
    matcher = CoinMatcher(coins, ["token"])
    assert matcher.mentions("alfa #alphaarmy") == ["AAA"]
    assert matcher.mentions("first") == []
    assert matcher.mentions("first token") == ["AAA"]
    assert matcher.mentions("BBB") == []
    assert matcher.mentions("BBB token") == ["BBB"]
    assert matcher.mentions("Beta Coin") == []
    assert matcher.mentions("Beta Coin token") == ["BBB"]


def test_catalogue_errors() -> None:
    header = "ticker,name,weight,ticker_ambiguous,name_ambiguous,aliases,hashtags\n"
    with pytest.raises(ValueError, match="duplicate ticker AAA"):
        load_catalogue(header + "AAA,A,1,no,no,,\nAAA,B,1,no,no,,\n")
    with pytest.raises(ValueError, match="weight must be a number"):
        load_catalogue(header + "AAA,A,x,no,no,,\n")
    with pytest.raises(ValueError, match="expected yes or no"):
        load_catalogue(header + "AAA,A,1,maybe,no,,\n")
    clash = load_catalogue(header + "AAA,Alpha,1,no,no,,\nBBB,Beta,1,no,no,alpha,\n")
    with pytest.raises(ValueError, match="claimed by both AAA and BBB"):
        CoinMatcher(clash, [])


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    result = coin_mentions(text)
    assert result == sorted(set(result))
    assert all(ticker in COINS for ticker in result)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "$BTC",
                "bitcoin",
                "SOL",
                "sol",
                "#eth",
                "Bitcoin Cash",
                "@bitcoin",
                "https://x.com/",
                "token",
                "🚀",
                "shiba",
                "inu",
                "the",
                "sandbox",
                " ",
                "\n",
                ".",
                "/",
                "$",
                "#",
            ]
        )
    )
)
def test_never_raises_on_crypto_fragments(parts: list[str]) -> None:
    result = coin_mentions("".join(parts))
    assert all(ticker in COINS for ticker in result)
