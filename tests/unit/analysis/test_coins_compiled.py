"""The coin matcher's common case in the compiled core (rust/vader_core/src/coins.rs) decides
exactly as Python does: every labelled post of datasets/coins and the texts where tokenising,
links, pairs and multi-word names are most fragile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosent.analysis import coins
from cryptosent.analysis._native import CORE

DATASETS = Path(__file__).parents[3] / "datasets" / "coins"
FRAGILE = [
    "ETH/USDT near-term", "www.x.com/sol $SOL", "https://t.co/x $BTC", "x.com:8080/a $ETH",
    "a.bc/ $DOGE", "$BTC\twww.a", "bitcoin cash", "#bitcoin cash is up", "@bitcoin cash",
    "shiba inu coin", "shiba inu", "BTCUSDT", "1000PEPE/USDT", "btc_usdt", "ΒΙΤΚΟΙΝ", "비트코인",
    "moon \ud83d $BTC", "sol is up", "$SOL/USDC", "btc-usd", "WWW.foo.com $XRP", "", "/", "://",
    "http://a b://c $ETH", "x.co:/ $BTC", "a.b.cd/e $SOL", "HBAR hedera hashgraph",
    "sold my dot", "near the bottom", "btc, eth, sol", "Bitcoin\u00a0Cash", "preço do bitcoin",
]  # fmt: skip
WORDS = st.sampled_from(
    ["btc", "$eth", "#sol", "sol", "bitcoin", "cash", "shiba", "inu", "coin", "hedera",
     "hashgraph", "usdt", "/", "-", "_", "www.", "https://t.co/x", "x.com/", "near", "dot",
     "the", "moon", "🚀", "эфир", "BTC", "ETH", "link", "one", "1000", ":8080/", " ", "\n"]
)  # fmt: skip

pytestmark = pytest.mark.skipif(
    CORE is None or coins._MATCHER._compiled() is None, reason="no compiled core"
)


def test_compiled_common_case_matches_python_on_every_labelled_post() -> None:
    texts = [
        json.loads(line)["text"]
        for path in sorted(DATASETS.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ] + FRAGILE
    assert len(texts) >= 900
    assert coins.coin_mentions_many(texts) == [coins.coin_mentions(t) for t in texts]
    decided = coins._MATCHER._compiled().mentions_many(texts)
    assert 0 < sum(d is None for d in decided) < len(texts)  # both paths are exercised


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(WORDS, max_size=12).map(" ".join), min_size=1, max_size=8))
def test_compiled_common_case_matches_python_on_fragile_texts(texts: list[str]) -> None:
    assert coins.coin_mentions_many(texts) == [coins.coin_mentions(t) for t in texts]
