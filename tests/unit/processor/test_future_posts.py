"""Time sanity: a post dated more than the margin after its message reached Kafka is a dead
letter (`created_at in the future`); old dates stay valid. The arrival time is the Kafka
message timestamp, or the processor's clock when there is none or it is ahead of that clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
)
from fakes import Broker, FakeConsumer, FakeMessage, FakeProducer, MemorySink, Store, processor

from cryptosent.analysis._native import CORE
from cryptosent.model import (
    FUTURE_MARGIN,
    IN_THE_FUTURE,
    InvalidTweet,
    check_not_future,
    decode_tweet,
)
from cryptosent.processor.transform import decode, received_at

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def post(created_at: str, id_: str = "t1") -> bytes:
    return json.dumps({"id": id_, "text": "$BTC", "created_at": created_at}).encode()


def millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def message(value: bytes, offset: int = 0, kafka_time: datetime | None = None) -> FakeMessage:
    stamp = (TIMESTAMP_NOT_AVAILABLE, -1) if kafka_time is None else (
        TIMESTAMP_CREATE_TIME, millis(kafka_time))  # fmt: skip
    return FakeMessage(0, offset, value, stamp)


def test_the_default_margin_is_ten_minutes() -> None:
    assert timedelta(minutes=10) == FUTURE_MARGIN


@pytest.mark.parametrize(
    "created_at",
    ["2026-11-28T12:10:00Z", "2026-11-28T12:09:59Z", "2026-11-28T11:00:00Z",
     "1600-01-01T00:00:00Z", "0001-01-01T00:00:00Z"],
)  # fmt: skip
def test_up_to_the_margin_ahead_and_any_old_date_are_valid(created_at: str) -> None:
    check_not_future(decode_tweet(post(created_at)), NOW, FUTURE_MARGIN)


@pytest.mark.parametrize(
    "created_at", ["2026-11-28T12:10:00.000001Z", "2026-11-28T13:00:00Z", "2999-01-01T00:00:00Z",
                   "9999-12-31T23:59:59Z", "2026-11-29T01:00:00+12:00"],
)  # fmt: skip
def test_beyond_the_margin_is_in_the_future(created_at: str) -> None:
    with pytest.raises(InvalidTweet) as refused:
        check_not_future(decode_tweet(post(created_at)), NOW, FUTURE_MARGIN)
    reason = str(refused.value)
    assert reason.startswith(IN_THE_FUTURE) and IN_THE_FUTURE == "created_at in the future"
    assert "received 2026-11-28T12:00:00+00:00" in reason and "margin 600 s" in reason
    assert "\n" not in reason


def test_a_zero_margin_allows_nothing_ahead() -> None:
    check_not_future(decode_tweet(post("2026-11-28T12:00:00Z")), NOW, timedelta(0))
    with pytest.raises(InvalidTweet):
        check_not_future(decode_tweet(post("2026-11-28T12:00:01Z")), NOW, timedelta(0))


def test_received_at_is_the_kafka_timestamp_unless_missing_or_ahead_of_the_clock() -> None:
    earlier = NOW - timedelta(days=3)
    create = FakeMessage(0, 0, b"", (TIMESTAMP_CREATE_TIME, millis(earlier)))
    append = FakeMessage(0, 0, b"", (TIMESTAMP_LOG_APPEND_TIME, millis(earlier)))
    assert received_at(create, NOW) == earlier
    assert received_at(append, NOW) == earlier
    assert received_at(FakeMessage(0, 0, b"", (TIMESTAMP_NOT_AVAILABLE, 0)), NOW) == NOW
    assert received_at(FakeMessage(0, 0, b"", (TIMESTAMP_CREATE_TIME, -1)), NOW) == NOW
    # a producer whose clock runs ahead cannot move the limit into the future
    ahead = FakeMessage(0, 0, b"", (TIMESTAMP_CREATE_TIME, millis(NOW + timedelta(days=1))))
    assert received_at(ahead, NOW) == NOW


# both decoders: msgspec's `Tweet` objects and, when installed, the compiled core's columns
DECODERS = [False, *([True] if CORE is not None else [])]


@pytest.mark.parametrize("compiled", DECODERS)
def test_decode_dead_letters_future_posts_and_keeps_old_ones(compiled: bool) -> None:
    messages = [
        message(post("2999-01-01T00:00:00Z", "future"), 0),
        message(post("1600-01-01T00:00:00Z", "old"), 1),
        message(post("2026-11-28T12:05:00Z", "soon"), 2),
        message(post("2026-11-28T12:11:00Z", "late"), 3),
    ]
    decoded = decode(messages, FUTURE_MARGIN, now=NOW, compiled=compiled)
    assert decoded.tweet_columns().ids == ["old", "soon"]
    assert decoded.offsets == [1, 2]
    assert [(m.offset(), r.split(" (")[0]) for m, r in decoded.dead] == [
        (0, IN_THE_FUTURE), (3, IN_THE_FUTURE)]  # fmt: skip
    # every message counts for the offsets, dead or not
    assert decoded.ranges == {0: (0, 3)}


@pytest.mark.parametrize("compiled", DECODERS)
def test_decode_judges_by_the_kafka_timestamp_so_a_replay_decides_the_same(
    compiled: bool,
) -> None:
    # produced three days ago dated 11 minutes after that: in the future when it arrived,
    # although long past by the time a backlog or a replay reaches it
    sent = NOW - timedelta(days=3)
    late = post((sent + timedelta(minutes=11)).isoformat(), "late")
    fine = post((sent + timedelta(minutes=9)).isoformat(), "fine")
    decoded = decode(
        [message(late, 0, sent), message(fine, 1, sent)], FUTURE_MARGIN, now=NOW, compiled=compiled
    )
    assert decoded.tweet_columns().ids == ["fine"]
    assert decoded.dead[0][1].startswith(IN_THE_FUTURE)


@pytest.mark.parametrize("compiled", DECODERS)
def test_decode_without_a_margin_accepts_any_date(compiled: bool) -> None:
    decoded = decode([message(post("2999-01-01T00:00:00Z"))], None, now=NOW, compiled=compiled)
    assert decoded.tweet_columns().ids == ["t1"] and not decoded.dead


def test_the_processor_sends_future_posts_to_the_dead_letter_topic() -> None:
    broker = Broker.filled(partitions=1, per_partition=5)
    broker.partitions[0][2] = post("2999-01-01T00:00:00Z", "p0-2")
    pg, lake = Store(), Store()
    producer = FakeProducer()
    sinks = [MemorySink("postgres", pg, mode="background"), MemorySink("lake", lake)]
    stats = processor(FakeConsumer(broker), sinks, producer).run()
    assert stats.dlq == 1
    [(topic, value, headers)] = producer.sent
    assert topic == "tweets.dlq" and value == broker.partitions[0][2]
    assert dict(headers)["error"].startswith(IN_THE_FUTURE.encode())
    assert sorted(pg.ids()) == ["p0-0", "p0-1", "p0-3", "p0-4"]
    assert pg.offsets == {0: 5}
