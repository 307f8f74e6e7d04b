"""The compiled decoder (rust/vader_core/src/decode.rs: message bytes -> Arrow columns) against
msgspec's (`model.decode_tweet`): the same tweets, columns, campaign-detector view and dead
letters, on mock posts, the hostile corpus and thousands of messages mutated the ways other
producers write JSON (key order, spacing, escapes, offsets, nulls, duplicates, bad bytes)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fakes import FakeMessage
from test_transform_paths import HOSTILE

from cryptosent.analysis._native import CORE
from cryptosent.ingest import to_message
from cryptosent.processor.campaigns import post_columns
from cryptosent.processor.transform import Decoded, decode
from cryptosent.sources.mock import MockGenerator

pytestmark = pytest.mark.skipif(CORE is None, reason="the compiled core is not installed")

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

DATES = [
    "2026-11-23T10:00:00Z", "2026-11-23T10:00:00.5Z", "2026-11-23T10:00:00.123456Z",
    "2026-11-23T10:00:00.1234567Z", "2026-11-23T10:00:00.000000001Z", "2026-11-23T10:00:00+00:00",
    "2026-11-23T11:00:00+01:00", "2026-11-23T04:30:00-05:30", "2026-11-23t10:00:00z",
    "2026-11-23 10:00:00Z", "2026-02-30T10:00:00Z", "2024-02-29T23:59:59.999999Z",
    "2026-11-23T24:00:00Z", "2026-11-23T23:59:60Z", "0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59.9Z", "2026-11-23T10:00Z", "2026-11-23", "2026-11-23T10:00:00.Z",
    "2026-11-23T10:00:00-00:00", "+2026-11-23T10:00:00Z", "2026-11-23T12:09:59Z",
    "2026-11-23T12:10:01Z", "9999-12-31T23:59:59Z", "2026-11-23T10:00:00", "",
]  # fmt: skip

AUTHORS = [
    None, {}, {"id": ""}, {"id": "", "username": "u"}, {"username": ""},
    {"id": "a", "username": "b"},
    {"followers": 2**63 - 1}, {"followers": 2**63}, {"followers": -1}, {"followers": 1.0},
    {"followers": -0}, {"verified": 1}, {"verified": None, "followers": None}, {"id": "a\u0000"},
    {"id": 5}, {"nick": "x"}, [], "a",
]  # fmt: skip

METRICS = [
    None, {}, {"likes": 1, "retweets": 2, "replies": 3, "quotes": 4}, {"likes": 2**63},
    {"likes": -1}, {"views": 3}, {"likes": 1e3},
]  # fmt: skip

VERSIONS = [1, 2, None, "1", 1.0, 2**63, -(2**63), 0]


def mutate(post: dict[str, object], rng: random.Random) -> bytes:
    """One mock post written the way some other producer might write it, valid or not."""
    post = dict(post)
    kind = rng.randrange(16)
    if kind == 0:
        post["created_at"] = rng.choice(DATES)
    elif kind == 1:
        post["author"] = rng.choice(AUTHORS)
    elif kind == 2:
        post["metrics"] = rng.choice(METRICS)
    elif kind == 3:
        post["v"] = rng.choice(VERSIONS)
    elif kind == 4:
        post[rng.choice(["lang", "source", "retweet_of", "reply_to"])] = rng.choice(
            [None, "", "en", "x\u0000", 3, "ja"]
        )
    elif kind == 5:
        post[rng.choice(["id", "text", "created_at"])] = rng.choice([None, "", 7, "a\u0000b"])
    elif kind == 6:
        del post[rng.choice(["id", "text", "created_at"])]
    elif kind == 7:
        post[rng.choice(["extra", "ID", "Text", "metrics_"])] = {"deep": [1, 2, {"x": None}]}
    elif kind == 8:
        post["text"] = rng.choice(
            ['quote " back\\slash \n tab\t', "\u2028\u2029", "🚀" * 3, "\x7f\x1f", "é" * 2, ""]
        )
    items = list(post.items())
    if rng.random() < 0.3:
        rng.shuffle(items)
    body = json.dumps(
        dict(items),
        ensure_ascii=rng.random() < 0.3,
        separators=rng.choice([(",", ":"), (", ", ": "), (" ,\n", " :\t")]),
    ).encode()
    if kind == 9:  # a field twice, the later one different
        body = body[:-1] + b', "id": "dup"}'
    elif kind == 10:  # an escaped key or an escaped date
        body = body.replace(b'"id"', b'"i\\u0064"').replace(b'"20', b'"\\u00320', 1)
    elif kind == 11:  # bytes that are not UTF-8, a BOM, or trailing bytes
        body = rng.choice([body.replace(b"e", b"\xff", 1), b"\xef\xbb\xbf" + body, body + b" x",
                           body + b" \r\n\t", body[:-1]])  # fmt: skip
    elif kind == 12:  # surrogates, lone and paired
        body = body.replace(b'"text": "', b'"text": "\\ud800', 1).replace(
            b'"text":"', rng.choice([b'"text":"\\udc00', b'"text":"\\ud83d\\ude80']), 1
        )
    elif kind == 13:
        body = rng.choice([b"[" + body + b"]", b"null", b"{}", b'{"id":"x"}', b"1"])
    elif kind == 14:
        body = body[:-1] + b', "pad": "' + b"y" * 70_000 + b'"}'
    return body


def messages(count: int, seed: int) -> list[FakeMessage]:
    rng = random.Random(seed)
    clock = iter(NOW - timedelta(hours=2) + timedelta(seconds=s) for s in range(10**9))
    mock = MockGenerator(seed=seed, clock=lambda: next(clock))
    values = [
        mutate(json.loads(to_message(tweet)[1]), rng)
        if rng.random() < 0.5
        else to_message(tweet)[1]
        for tweet in mock.tweets(count)
    ]
    values += HOSTILE
    return [
        FakeMessage(i % 3, i, value, (1, int((NOW - timedelta(minutes=30)).timestamp() * 1000)))
        for i, value in enumerate(values)
    ]


def same(a: Decoded, b: Decoded) -> None:
    """Both decodes hold the same tweets, columns, detector view and dead letters."""
    assert a.columns is not None and b.columns is None
    ca, cb = a.tweet_columns(), b.tweet_columns()
    for name, array in cb.arrays.items():
        assert ca.arrays[name].equals(array), name
    assert (ca.texts, ca.langs, ca.ids, ca.authors) == (cb.texts, cb.langs, cb.ids, cb.authors)
    assert (a.raw, a.partitions, a.offsets) == (b.raw, b.partitions, b.offsets)
    assert [m.offset() for m in a.messages] == [m.offset() for m in b.messages]
    assert [(m.offset(), r) for m, r in a.dead] == [(m.offset(), r) for m, r in b.dead]
    pa_, pb = post_columns(a), post_columns(b)
    for x, y in zip(pa_, pb, strict=True):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y)
        else:
            assert x == y
    a.materialize()
    assert a.tweets == b.tweets and a.columns is None


@pytest.mark.parametrize("seed", range(6))
def test_compiled_decoder_matches_msgspec_on_mutated_messages(seed: int) -> None:
    consumed = messages(3_000, seed)
    for first in range(0, len(consumed), 1_000):
        part = consumed[first : first + 1_000]
        same(decode(part, now=NOW, compiled=True), decode(part, now=NOW, compiled=False))


def test_compiled_decoder_keeps_message_order_of_dead_letters_and_empty_values() -> None:
    good = to_message(MockGenerator(seed=1, clock=lambda: NOW).tweets(1)[0])[1]
    values = [None, b"nope", good, None, good.replace(b'"id"', b'"ID"'), good, b"{"]
    consumed = [FakeMessage(0, i, v) for i, v in enumerate(values)]
    a, b = decode(consumed, now=NOW, compiled=True), decode(consumed, now=NOW, compiled=False)
    same(a, b)
    assert [m.offset() for m, _ in a.dead] == [0, 1, 3, 4, 6]
    assert a.offsets == [2, 5] and a.ranges == {0: (0, 6)}


def test_a_valid_post_the_core_does_not_take_is_read_in_msgspec_s_canonical_form() -> None:
    # another offset and a lower-case separator: msgspec takes them, the core hands them back
    raw = b'{"text":"$BTC up","created_at":"2026-11-23t11:00:00.1234567+01:00","id":"x"}'
    a = decode([FakeMessage(0, 0, raw)], now=NOW, compiled=True)
    same(a, decode([FakeMessage(0, 0, raw)], now=NOW, compiled=False))
    assert a.raw == [raw]  # the lake keeps the received bytes


def test_far_dates_give_the_detector_python_s_timestamps() -> None:
    # past 2**53 microseconds a float64 does not hold every microsecond
    posts = [
        json.dumps({"id": f"d{i}", "text": "t", "created_at": date}).encode()
        for i, date in enumerate(["9999-12-31T23:59:59.999999Z", "2300-01-01T00:00:00.000001Z"])
    ]
    consumed = [FakeMessage(0, i, v) for i, v in enumerate(posts)]
    same(
        decode(consumed, None, now=NOW, compiled=True),
        decode(consumed, None, now=NOW, compiled=False),
    )
