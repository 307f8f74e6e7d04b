"""The compiled transform (the batch decoded into columns and scored by rust/vader_core) against
the pure-Python one (msgspec's `Tweet` objects, the Python analyzers):
the same table, column for column and row for row, on 50,000 generated posts (the mock feed with
campaigns, as `cryptosent generate` makes it) and on hostile input, and the same dead letters."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from fakes import FakeMessage

from cryptosent.analysis import sentiment
from cryptosent.analysis._native import CORE
from cryptosent.analysis.learned.analyzers import LearnedAnalyzer
from cryptosent.analysis.sentiment import CryptoAnalyzer, VaderAnalyzer
from cryptosent.ingest import to_message
from cryptosent.model import Author, Tweet
from cryptosent.processor.transform import Decoded, Scorer, decode
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import CampaignMock

COUNT = 50_000
BATCH = 5_000
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T = "2026-11-23T10:00:00Z"

pytestmark = pytest.mark.skipif(CORE is None, reason="the compiled core is not installed")


def _json(id_: str, text: str, **extra: object) -> bytes:
    return json.dumps({"id": id_, "text": text, "created_at": T, **extra},
                      ensure_ascii=False).encode()  # fmt: skip


# what tests/integration/test_hostile_input.py sends, and texts where tokenisers differ
HOSTILE = [
    b"hello, I am not JSON", b'{"id":"t1","text":"abc', b'{"id":7,"text":"t","created_at":"x"}',
    _json("", "empty id"), _json("n2", "a\x00b"), _json("c3", "t").replace(b"Z", b""),
    _json("s1", "x").replace(b'"x"', b'"\\ud800"'), b"[1,2,3]", b"null", b"",
    _json("big", "y" * 65_500), _json("f1", "$BTC", created_at="9999-12-31T23:59:59Z"),
    _json("h1", "t", author={"followers": 10**30}),
    _json("c4", "t", created_at="0001-01-01T00:00:00+01:00"),
    _json("e1", "🚀🌕💎🙌📈📉🩸❤️👍🏽👨‍👩‍👧‍👦"), _json("r1", "بيتكوين إلى القمر 🚀 ‮$BTC‬ עולה"),
    _json("z1", "$B\u200bTC \u200d\ufeff\u2060 moon\u200c"), _json("v3", ""),
    _json("k1", "".join(chr(c) for c in range(1, 32)) + "\x7f\x85\u2028\u2029 $BTC"),
    _json("l1", "🚀 moon " * 6_000), _json("u2", "x", lang="xx-weird"),
    _json("g1", "ΒΙΤΚΟΙΝ ΣΤΟ ΦΕΓΓΑΡΙ 🚀 $ETH", lang="el"),
    _json("g2", "ビットコイン最高！ $BTC 🚀"),
    _json("g3", "Биткоин растёт, эфир тоже NOT BAD!!! 👍🏽", lang="ru"),
    _json("g4", "ETH/USDT near-term pump and dump?? rug pull... HODL :) not bad $SOL"),
    _json("g8", "www.x.com/sol https://t.co/abc $ETH-PERP BTC-USD 1000PEPE/USDT"),
    _json("g5", "İstanbul'da ŞOK: bitcoin düştü 📉 ﬁne", lang="tr"), _json("g6", "x", lang="th"),
    _json("g7", "Ａｂｃ　ＢＴＣ　ｍｏｏｎ 🌕", author={"id": "a", "verified": True}),
    _json("u3", "x" * 30 + " $doge to the moon 🐕🚀🚀🚀", author={"username": "u", "followers": 0}),
]  # fmt: skip


def messages() -> list[FakeMessage]:
    """50,000 mock posts with campaigns, then the hostile corpus, as consumed messages."""
    step = [0]

    def clock() -> datetime:
        return START + timedelta(seconds=step[0])

    feed = CampaignMock(MockGenerator(seed=14, clock=clock), 0.05, clock=clock)
    values = []
    while len(values) < COUNT:
        values += [to_message(t)[1] for t in feed.read(BATCH)]
        step[0] += 1
    values += HOSTILE
    return [FakeMessage(0, offset, value) for offset, value in enumerate(values)]


def pure_python(monkeypatch: pytest.MonkeyPatch) -> Scorer:
    """A scorer whose analyzers never touch the compiled core (the shared crypto analyzer,
    which the learned one consults, included): call it after the compiled scorer is done."""
    monkeypatch.setitem(sentiment._ANALYZERS, "crypto", CryptoAnalyzer(native=False))
    return Scorer(LearnedAnalyzer(native=False), VaderAnalyzer(native=False))


def scored(scorer: Scorer, batches: list[Decoded]) -> tuple[pa.Table, list[tuple[int, str]]]:
    """The scorer's table over all batches, and the dead letters (offset, reason)."""
    tables = []
    dead = []
    for decoded in batches:
        decoded = copy.deepcopy(decoded)
        tables.append(scorer(decoded).table)
        dead += [(m.offset(), reason) for m, reason in decoded.dead]
    return pa.concat_tables(tables), dead


def test_compiled_and_pure_python_transforms_store_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumed = messages()

    def batches(compiled: bool) -> list[Decoded]:
        now = START + timedelta(days=1)
        return [
            decode(consumed[first : first + BATCH], now=now, compiled=compiled)
            for first in range(0, len(consumed), BATCH)
        ]

    by_columns, by_tweets = batches(True), batches(False)
    # the compiled decoder took every batch by columns, msgspec the other
    assert all(d.columns is not None and not d.tweets for d in by_columns)
    assert all(d.columns is None for d in by_tweets)
    compiled = Scorer()
    assert compiled.default.columns([], [], compiled.vader) is not None  # the compiled path runs
    a, dead_a = scored(compiled, by_columns)
    b, dead_b = scored(pure_python(monkeypatch), by_tweets)
    assert a.num_rows == b.num_rows == COUNT + 16
    assert a.schema.equals(b.schema)
    for name in a.schema.names:
        assert a.column(name).equals(b.column(name)), name
    assert dead_a == dead_b
    assert [offset for offset, _ in dead_a] == list(range(COUNT, COUNT + 14))
    assert {reason.split(":")[0].split(" (")[0] for _, reason in dead_a} == {
        "not JSON", "schema", "created_at in the future",
        "message is 65563 bytes, over the 65536-byte limit",
    }  # fmt: skip
    # the mock feed exercises every label, and most posts name a coin
    assert set(a.column("label").to_pylist()) == {"positive", "neutral", "negative", "unscored"}
    assert sum(len(c) > 0 for c in a.column("coins").to_pylist()) > COUNT // 2


def test_lone_surrogates_are_dead_lettered_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    # msgspec refuses lone surrogates in JSON, but a Tweet built in Python may hold one: the
    # compiled core hands it to the Python path, and neither path can store it (no UTF-8)
    texts = [("moon \ud83d great", None), ("$BTC up", "en"), ("\udc00", "xx"), ("ok", "en")]
    tweets = [
        Tweet(id=f"t{i}", text=text, created_at=START, author=Author(id="a"), lang=lang)
        for i, (text, lang) in enumerate(texts)
    ]
    messages = [FakeMessage(0, i, b"{}") for i in range(4)]
    batch = Decoded(tweets, [b"{}"] * 4, [0] * 4, list(range(4)), messages, {0: (0, 3)})
    compiled = Scorer()
    scores = compiled.default.columns([t for t, _ in texts], [g for _, g in texts], compiled.vader)
    a, dead_a = scored(compiled, [batch])
    b, dead_b = scored(pure_python(monkeypatch), [batch])
    assert a.equals(b)
    assert a.column("id").to_pylist() == ["t1", "t3"]
    assert dead_a == dead_b
    assert [offset for offset, _ in dead_a] == [0, 2]
    assert scores is not None and scores.labels[2] == 3  # unscored (a foreign language)
