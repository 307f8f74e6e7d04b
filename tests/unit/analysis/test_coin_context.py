"""coin_mentions weighs each candidate against the post: pairs, renames, other scripts,
ecosystem words, look-alikes, lists of holdings; and the evidence file's loader."""

from __future__ import annotations

import pytest

from cryptosent.analysis.coins import (
    COINS,
    CoinMatcher,
    coin_mentions,
    load_catalogue,
    load_evidence,
    load_scripts,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Trading pairs: a stablecoin or fiat quote is not a mention, a coin quote is.
        ("BTCUSDT 1h bull flag", ["BTC"]),
        ("btcusdt funding flipped", ["BTC"]),
        ("btc_usdt longs", ["BTC"]),
        ("BTC/USDT breakout", ["BTC"]),
        ("$BTC/USDT breakout", ["BTC"]),
        ("BTC-USD reclaimed the 200 day", ["BTC"]),
        ("ETH-PERP funding at 0.03%", ["ETH"]),
        ("ETH/BTC keeps bleeding", ["BTC", "ETH"]),
        ("ETHBTC ratio at a low", ["BTC", "ETH"]),
        ("1000SHIBUSDT shorts squeezed", ["SHIB"]),
        ("XBTUSD on bitmex", ["BTC"]),
        ("SOLUSDT perp open interest at ATH", ["SOL"]),
        ("HYPE/USDC spot keeps grinding", ["HYPE"]),
        ("USDT depeg risk is overblown", ["USDT"]),
        ("opeth played a great show", []),  # a band, not OP/ETH: cross pairs are in capitals
        # Word boundaries: never inside another word.
        ("somETHing happened", []),
        ("methods and teeth", []),
        # Renames: the old ticker counts as the new one.
        ("MATIC is dead, long live POL", ["POL"]),
        ("still have matic in an old wallet", ["POL"]),
        ("$MATIC", ["POL"]),
        ("MATICUSDT delisted", ["POL"]),
        ("RNDR → RENDER migration done", ["RENDER"]),
        ("$RNDR", ["RENDER"]),
        # Other scripts.
        ("비트코인 10만불 가즈아", ["BTC"]),
        ("비트코인이랑 이더리움 반반", ["BTC", "ETH"]),
        ("ビットコインとイーサリアム", ["BTC", "ETH"]),
        ("比特币减半之后", ["BTC"]),
        ("狗狗币又涨了", ["DOGE"]),
        ("биткоина стало больше", ["BTC"]),
        ("Биткоин или эфир?", ["BTC", "ETH"]),
        ("сегодня в прямом эфире новости спорта", []),
        ("트리플 크라운", []),  # 리플 inside another Korean word is not XRP
        # Ecosystem words.
        ("just bought my first 50k sats", ["BTC"]),
        ("fees at 1 sat/vB", ["BTC"]),
        ("he sat down next to me", []),
        ("0.5 gwei right now", ["ETH"]),
        ("lamports per signature dropped", ["SOL"]),
        ("the xrp army is loud", ["XRP"]),
        # Look-alikes outside crypto.
        ("gas is $4.19 a gallon here now", []),
        ("near the station there's a great ramen place", []),
        ("one pot pasta for a weeknight", []),
        ("link your library card to the app", []),
        ("the ADA requires a ramp at every entrance", []),
        ("polka dot dress for the wedding", []),
        ("the DOT physical went fine, blood pressure ok", []),
        ("took the cat to the vet, she needed vaccines", []),
        ("3d render of the kitchen", []),
        ("ETH Zurich ranked top 10 again", []),
        ("diethyl ether in the lab all day", []),
        ("LTC Harris takes command of the battalion", []),
        ("$VET Vermilion Energy cut the dividend again", []),
        ("DOGE cuts hit the park service", []),
        ("my shiba refuses to walk in the rain", []),
        ("Trump signed another executive order", []),
        ("canon eos r5 for sale", []),
        ("sol y playa", []),
        ("ripple effect", []),
        # Look-alikes next to real coins.
        ("gas fees on eth are insane", ["ETH"]),
        ("one more $BTC dip and I'm out", ["BTC"]),
        ("just sent the link to the $ETH dashboard", ["ETH"]),
        ("near the lows on $AVAX, adding slowly", ["AVAX"]),
        ("sol y playa this weekend, no charts, no $ETH", ["ETH"]),
        ("three tokens folded into one: $FET", ["FET"]),
        # Lower-case tickers in crypto sentences and lists of holdings.
        ("sold my dot at a loss and bought more eth", ["DOT", "ETH"]),
        ("bags: btc, eth, sol, link, dot", ["BTC", "DOT", "ETH", "LINK", "SOL"]),
        ("L2 bag: arb op strk mnt imx", ["ARB", "IMX", "MNT", "OP", "STRK"]),
        ("portfolio: 50% btc / 25% eth / 25% near", ["BTC", "ETH", "NEAR"]),
        ("bought btc, eth, sol etc. in 2020", ["BTC", "ETH", "SOL"]),  # etc. is not ETC
        ("link staking pool filled in minutes", ["LINK"]),
        ("ton wallet inside telegram is easy", ["TON"]),
        # Related coins side by side.
        ("ETH and ETC were one chain", ["ETC", "ETH"]),
        ("BCH vs BSV vs BTC", ["BCH", "BSV", "BTC"]),
        ("NEO vs GAS this week: GAS pumped harder", ["GAS", "NEO"]),
    ],
)
def test_context(text: str, expected: list[str]) -> None:
    assert coin_mentions(text) == expected


def test_explain_shows_the_parts_of_each_score() -> None:
    from cryptosent.analysis import coins

    rows = coins._MATCHER.explain("sold my dot at a loss and bought more eth")
    by_term = {row["term"]: row for row in rows}
    assert set(by_term) == {"dot", "eth"}
    dot = by_term["dot"]
    assert dot["counted"] is True
    assert dot["score"] == pytest.approx(
        float(dot["prior"]) + float(dot["post"]) + float(dot["coins"]) + float(dot["local"])
    )
    assert float(dot["prior"]) < 0 < float(dot["local"])  # ambiguous, rescued by "sold my"


def test_scripts_must_name_catalogue_coins() -> None:
    coins = load_catalogue(
        "ticker,name,weight,ticker_ambiguous,name_ambiguous,aliases,hashtags\nAAA,Alpha,1,no,no,,\n"
    )
    assert load_scripts("ticker,term,ambiguous,language\nAAA,альфа,no,ru\n", coins) == [
        ("AAA", "альфа", False)
    ]
    with pytest.raises(ValueError, match="not in the catalogue"):
        load_scripts("ticker,term,ambiguous,language\nZZZ,зед,no,ru\n", coins)
    scripts = load_scripts("ticker,term,ambiguous\nAAA,альфакоин,no\n", coins)
    matcher = CoinMatcher(coins, scripts=scripts)
    assert matcher.mentions("купил альфакоина") == ["AAA"]  # a name starts a word, any ending
    assert matcher.mentions("суперальфакоин") == []


_EVIDENCE = """
threshold = 0.5
[prior]
cashtag = 5.0
pair = 6.0
coin_hashtag = 5.0
hashtag = 4.0
hashtag_ambiguous = -1.0
name = 5.0
name_ambiguous = -1.5
ticker_upper = 4.0
ticker_lower = 3.0
ticker_upper_ambiguous = -0.5
ticker_lower_ambiguous = -2.0
script = 4.0
script_ambiguous = -1.0
[caps]
post_positive = 3.0
post_negative = -4.5
other_coins = 3.0
local = 3.0
first_of_field = 0.5
[coins]
other_coin = 1.5
list_neighbour = 2.0
list_candidate = 1.0
compound = -3.0
list_fillers = ["and"]
determiners = ["my"]
[words.crypto]
weight = 1.5
words = ["token"]
[words.pets]
weight = -1.5
words = ["puppy", "leash"]
[local.generic]
before = { "the" = -1.5 }
after = { "price" = 2.0 }
"""


def test_custom_evidence() -> None:
    evidence = load_evidence(_EVIDENCE)
    coins = load_catalogue(
        "ticker,name,weight,ticker_ambiguous,name_ambiguous,aliases,hashtags\n"
        "AAA,Alpha,1,yes,no,,\n"
    )
    matcher = CoinMatcher(coins, evidence=evidence)
    assert matcher.mentions("aaa") == []
    assert matcher.mentions("aaa token") == []  # -2.0 + 1.5
    assert matcher.mentions("aaa price token") == ["AAA"]  # -2.0 + 1.5 + 2.0
    assert matcher.mentions("AAA token") == ["AAA"]  # -0.5 + 1.5
    # The first word of another field counts half (-0.75), the second in full (-1.5).
    assert matcher.mentions("aaa price token puppy") == ["AAA"]  # -2.0 + 0.75 + 2.0
    assert matcher.mentions("aaa price token puppy leash") == []  # -2.0 - 0.75 + 2.0
    assert matcher.mentions("$aaa puppy leash") == ["AAA"]
    assert matcher.mentions("Alpha puppy leash") == ["AAA"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.replace('words = ["puppy", "leash"]', 'words = ["puppy", "token"]'),
            "'token' is in both words.crypto and words.pets",
        ),
        (lambda t: t.replace('"leash"]', '"dog leash"]'), "is not one word"),
        (lambda t: t.replace("threshold = 0.5", ""), "missing 'threshold'"),
        (
            lambda t: t.replace("cashtag = 5.0", 'cashtag = "high"'),
            "prior.cashtag must be a number",
        ),
        (lambda t: t.replace("[caps]", "[caps"), "coins_evidence.toml"),
    ],
)
def test_evidence_errors_are_one_clear_line(change: object, message: str) -> None:
    assert callable(change)
    with pytest.raises(ValueError, match=message):
        load_evidence(change(_EVIDENCE))


def test_other_scripts_cover_the_top_coins() -> None:
    from cryptosent.analysis import coins

    names = load_scripts(coins._read_data("coins_scripts.csv"), COINS)
    languages: dict[str, set[str]] = {}
    for row in coins._csv_rows(coins._read_data("coins_scripts.csv")):
        languages.setdefault(row["ticker"], set()).add(row["language"])
    for ticker in ("BTC", "ETH", "XRP", "SOL", "DOGE"):
        assert {"ko", "ja", "zh", "ru"} <= languages[ticker], ticker
    assert len({ticker for ticker, _, _ in names}) >= 30
