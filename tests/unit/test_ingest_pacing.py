"""ingest.produce with an in-memory producer and source: pacing, counts, failures, stop (no
servers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cryptosent.ingest import produce, to_message
from cryptosent.model import Tweet, decode_tweet
from cryptosent.runtime import StopSignal
from cryptosent.sources.base import IteratorSource, Source


class FakeError:
    def __init__(self, text: str) -> None:
        self.text = text

    def str(self) -> str:
        return self.text


class FakeProducer:
    """Acknowledges on poll/flush; keys in `fail_keys` get an error report instead."""

    def __init__(self, fail_keys: set[bytes] | None = None, capacity: int = 10**9) -> None:
        self.pending: list[tuple[bytes, bytes, Any]] = []
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail_keys = fail_keys or set()
        self.capacity = capacity
        self.buffer_errors = 0

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        if len(self.pending) >= self.capacity:
            self.buffer_errors += 1
            raise BufferError("queue full")
        self.pending.append((key, value, on_delivery))
        self.sent.append((topic, key, value))

    def poll(self, timeout: float = 0) -> int:
        pending, self.pending = self.pending, []
        for key, _value, callback in pending:
            callback(FakeError("boom") if key in self.fail_keys else None, None)
        return len(pending)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0

    def purge(self) -> None:
        self.pending.clear()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


def numbered(n: int) -> IteratorSource:
    return IteratorSource("test", (Tweet(str(i), f"text {i}", NOW) for i in range(n)))


class Supplier(Source):
    """A source whose read() calls a function (to act while the loop runs)."""

    name = "supplier"

    def __init__(self, read: Any) -> None:
        self._read = read

    def read(self, n: int) -> list[Tweet]:
        return list(self._read(n))


def test_to_message_is_the_id_and_the_contract_json() -> None:
    tweet = Tweet("42", "$BTC up", NOW)
    key, value = to_message(tweet)
    assert key == b"42"
    assert decode_tweet(value) == tweet


def test_count_is_exact_and_every_message_is_acknowledged() -> None:
    producer = FakeProducer(capacity=700)
    stats = produce((numbered(10_000)), producer=producer, topic="t", count=5000)  # type: ignore[arg-type]
    assert stats.enqueued == stats.delivered == 5000
    assert stats.failed == 0
    assert [key for _, key, _ in producer.sent] == [str(i).encode() for i in range(5000)]
    assert producer.buffer_errors > 0  # a full queue was waited out, not dropped


def test_source_exhaustion_ends_the_run() -> None:
    stats = produce((numbered(123)), producer=FakeProducer(), topic="t")  # type: ignore[arg-type]
    assert stats.delivered == 123


def test_failed_deliveries_are_counted_with_the_reason() -> None:
    producer = FakeProducer(fail_keys={b"3", b"7"})
    stats = produce((numbered(10)), producer=producer, topic="t")  # type: ignore[arg-type]
    assert (stats.delivered, stats.failed, stats.last_error) == (8, 2, "boom")


@pytest.mark.parametrize("rate", [2000 / 60, 10.0, 500.0])
def test_rate_is_held_exactly_by_schedule_and_sleeps_between(rate: float) -> None:
    clock = FakeClock()
    stats = produce(
        numbered(10**6),
        producer=FakeProducer(),  # type: ignore[arg-type]
        topic="t",
        rate_per_s=rate,
        duration_s=60.0,
        clock=clock,
        sleep=clock.sleep,
    )
    expected = rate * 60
    assert abs(stats.delivered - expected) <= max(1.0, expected * 0.001)
    # it waits by sleeping, never in a spin: about one sleep per message, none of them zero
    assert len(clock.sleeps) <= stats.delivered + 2
    assert min(clock.sleeps) > 0


def test_stop_signal_flushes_and_reports_interrupted() -> None:
    stop = StopSignal()
    producer = FakeProducer()
    sent = 0

    def supply(n: int) -> list[Tweet]:
        nonlocal sent
        sent += n
        if sent > 3000:
            stop.set()
        return numbered(n).read(n)

    stats = produce(Supplier(supply), producer=producer, topic="t", stop=stop)  # type: ignore[arg-type]
    assert stats.interrupted
    assert stats.delivered == stats.enqueued == len(producer.sent) > 3000
