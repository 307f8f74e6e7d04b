"""The coin matcher in the compiled core (rust/vader_core/src/coins.rs) decides exactly as Python
does: on mock posts, on every labelled post of datasets/, and on the texts where tokenising,
links, pairs, multi-word names, the words around ambiguous terms and other scripts are most
fragile. Where it cannot be sure it hands the post back (None), and Python decides."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosent.analysis import coins
from cryptosent.analysis._native import CORE
from cryptosent.sources.mock import MockGenerator

DATASETS = Path(__file__).parents[3] / "datasets"
# Measured: the compiled matcher decides 100.0% of MockGenerator(seed=1)'s posts.
MOCK_DECIDED_AT_LEAST = 0.99
FRAGILE = [
    "ETH/USDT near-term", "www.x.com/sol $SOL", "https://t.co/x $BTC", "x.com:8080/a $ETH",
    "a.bc/ $DOGE", "$BTC\twww.a", "bitcoin cash", "#bitcoin cash is up", "@bitcoin cash",
    "shiba inu coin", "shiba inu", "BTCUSDT", "1000PEPE/USDT", "btc_usdt", "ΒΙΤΚΟΙΝ", "비트코인",
    "moon \ud83d $BTC", "sol is up", "$SOL/USDC", "btc-usd", "WWW.foo.com $XRP", "", "/", "://",
    "http://a b://c $ETH", "x.co:/ $BTC", "a.b.cd/e $SOL", "HBAR hedera hashgraph",
    "sold my dot", "near the bottom", "btc, eth, sol", "Bitcoin\u00a0Cash", "preço do bitcoin",
]  # fmt: skip
# One or more texts for each rule of CoinMatcher._decide and _scripts that coins.rs ports.
HARD = [
    # look-alike words and the words around them (local tables, determiners, possessives)
    "sol y playa", "el sol de la tarde", "bought more sol today", "sold my dot at the top",
    "near the bottom of the range", "NEAR protocol is up", "the link in bio", "LINK 15 staking",
    "one more day", "ONE is pumping", "Harmony one", "gas fees on eth", "neo gas", "GAS price",
    "Kusama's pumpkins", "Cardano's formula", "op ed", "op-ed about ada", "ADA lovelace",
    "etc etc", "ETC to the moon", "sat down with btc", "10 sat/vB", "ether is money",
    "diethyl ether in the lab",
    # lists of holdings, fillers and numbers between
    "btc, eth, sol", "btc 50 / eth 20 / sol 30", "eth and sol and dot", "ada or dot", "sol sol",
    # pairs, glued pairs, quoted stablecoins, compounds
    "ETHBTC", "opeth", "OPETH", "1000PEPEUSDT", "btc_usdt", "BTC-USD", "$ETH/BTC", "#eth/btc",
    "near-term", "dot-com", "sol-y", "ETH/USDT\n-dot", "usdt usdc dai", "BTC / USDT",
    "ETH -\nBTC", "word\n-near", "abcdefghijklmnop/usdt", "$BTC-usdt link",
    # words of other fields, apart groups (stocks), capitals
    "$LINK earnings beat, dividend up", "SOL nasdaq shares", "my cat ate the sol",
    "DOT DOT DOT", "BTC AND SOL", "the patient got a dot", "uni halls at my uni",
    # multi-word names, hashtags, cashtags, handles
    "Bitcoin Cash and bitcoin", "#shiba inu army", "@shiba inu", "Shiba Inu puppies",
    "Internet Computer", "$sol #sol @sol sol", "#link #one",
    # other scripts, case, accents, emoji, links
    "비트코인 가즈아", "오늘비트코인", "ビットコイン最高値", "比特币 牛市", "БИТКОИН растёт",
    "эфир по 3000", "эфир", "биткоин и эфир", "ΣΟΛ", "ΜΠΙΤΚΌΙΝ", "ΜΠΙΤΚΌΙΣ sol", "İbitcoin preço",
    "İ sol preço", "Kryptowährung", "KRYPTOWÄHRUNG sol", "🚀비트코인", "🚀preço do sol",
    "🚀 preço do sol", "\U00020000비트코인", "é비트코인",
    "Cotação do sol hoje", "preço", "x.com/비트코인 sol", "https://t.co/preço sol",
    "\u212aryptowährung sol", "sol\u00a0price", "SOL🚀🚀", "sol…price",
]  # fmt: skip
WORDS = st.sampled_from(
    ["btc", "$eth", "#sol", "sol", "bitcoin", "cash", "shiba", "inu", "coin", "hedera",
     "hashgraph", "usdt", "/", "-", "_", "www.", "https://t.co/x", "x.com/", "near", "dot",
     "the", "moon", "🚀", "эфир", "BTC", "ETH", "link", "one", "1000", ":8080/", " ", "\n",
     "my", "sold", "and", "7", "'s", "price", "earnings", "patient", "ETHBTC", "opeth",
     "비트코인", "ビットコイン", "БИТКОИН", "Σ", "İ", "preço", "PREÇO", "é", "가", "\U0001f680"]
)  # fmt: skip

pytestmark = pytest.mark.skipif(
    CORE is None or coins._MATCHER._compiled() is None, reason="no compiled core"
)


def _labelled_texts() -> list[str]:
    return [
        json.loads(line)["text"]
        for path in sorted(DATASETS.glob("*/*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _assert_same(texts: list[str]) -> list[list[str] | None]:
    decided: list[list[str] | None] = coins._MATCHER._compiled().mentions_many(texts)
    for text, mentions in zip(texts, decided, strict=True):
        if mentions is not None:
            assert mentions == coins.coin_mentions(text), text
    assert coins.coin_mentions_many(texts) == [coins.coin_mentions(t) for t in texts]
    return decided


def test_compiled_matcher_equals_python_on_every_labelled_post() -> None:
    texts = _labelled_texts() + FRAGILE
    assert len(texts) >= 7000
    decided = _assert_same(texts)
    assert sum(d is not None for d in decided) / len(texts) >= 0.99


def test_compiled_matcher_decides_mock_posts_as_python() -> None:
    texts = [tweet.text for tweet in MockGenerator(seed=1).tweets(50_000)]
    decided = _assert_same(texts)
    assert sum(d is not None for d in decided) / len(texts) >= MOCK_DECIDED_AT_LEAST


def test_compiled_matcher_decides_the_hard_cases_as_python() -> None:
    decided = dict(zip(HARD, _assert_same(HARD), strict=True))
    # The compiled matcher is sure of these without Python...
    for text in ("sold my dot at the top", "ETHBTC", "$LINK earnings beat, dividend up",
                 "비트코인 가즈아", "KRYPTOWÄHRUNG sol", "btc 50 / eth 20 / sol 30", "ΜΠΙΤΚΌΙΝ",
                 "🚀 preço do sol", "오늘비트코인"):  # fmt: skip
        assert decided[text] is not None, text
    # ... and leaves these to it: a capital sigma where a name could be, a dotted capital I, a
    # character outside the Basic Multilingual Plane glued to a name, a name with its own rules
    # in another script, the Kelvin sign (lower-cased to the 'k' of a term, not its capital).
    for text in ("ΜΠΙΤΚΌΙΣ sol", "İ sol preço", "\U00020000비트코인", "эфир по 3000",
                 "\u212aryptowährung sol"):  # fmt: skip
        assert decided[text] is None, text


def test_a_repeated_text_is_decided_as_its_first_copy_with_a_list_of_its_own() -> None:
    # a batch's repeats (retweets, a bot farm's copies) are decided once: each copy gets what
    # the text gets alone, undecided ones (handed to Python) and lone surrogates included
    texts = FRAGILE + HARD[:20]
    repeated = [t for pair in zip(texts, texts[::-1], strict=True) for t in pair] + texts
    decided = _assert_same(repeated)
    assert decided[-len(texts) :] == _assert_same(texts)
    assert any(d is None for d in decided) and any(d for d in decided)
    lists = [d for d in decided if d]
    assert len({id(d) for d in lists}) == len(lists)  # no list shared between copies


def test_lower_case_keeps_word_characters() -> None:
    # coins.rs looks behind an accented Latin word at the character as written, not lowered.
    changed = [
        c
        for c in map(chr, range(sys.maxunicode + 1))
        if c.lower() != c
        and (len(c.lower()) != 1 or bool(re.match(r"\w", c)) != bool(re.match(r"\w", c.lower())))
    ]
    assert changed == ["\u0130"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(WORDS, max_size=12).map(" ".join), min_size=1, max_size=8))
def test_compiled_matcher_equals_python_on_fragile_texts(texts: list[str]) -> None:
    _assert_same(texts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(WORDS, max_size=12).map("".join), min_size=1, max_size=8))
def test_compiled_matcher_equals_python_on_glued_texts(texts: list[str]) -> None:
    _assert_same(texts)
