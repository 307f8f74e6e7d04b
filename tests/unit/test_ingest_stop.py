"""ingest under a stop, with an in-memory producer whose broker is down: the topic check, pacing,
a full local queue and the final flush each end within the stop's grace; what was never
acknowledged counts as failed (no servers)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from cryptosent.ingest import produce
from cryptosent.kafka import KafkaUnavailable, check_topic, flush_until
from cryptosent.model import Tweet
from cryptosent.runtime import StopSignal
from cryptosent.sources.base import IteratorSource

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
BOUND_S = StopSignal.GRACE_S + 0.5


def endless() -> IteratorSource:
    def tweets() -> Any:
        n = 0
        while True:
            n += 1
            yield Tweet(str(n), f"$BTC {n}", NOW)

    return IteratorSource("endless", tweets())


class DownProducer:
    """A producer whose broker never answers: nothing is acknowledged, the queue fills up."""

    def __init__(self, capacity: int = 10**9) -> None:
        self.queued = 0
        self.capacity = capacity
        self.purged = False
        self.callbacks: list[Any] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        if self.queued >= self.capacity:
            raise BufferError("queue full")
        self.queued += 1
        self.callbacks.append(on_delivery)

    def poll(self, timeout: float = 0) -> int:
        time.sleep(timeout)
        return 0

    def flush(self, timeout: float = -1) -> int:
        if self.purged:
            for callback in self.callbacks:
                callback(_Purged(), None)
            self.callbacks.clear()
            self.queued = 0
        else:
            time.sleep(timeout)
        return self.queued

    def purge(self) -> None:
        self.purged = True

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        time.sleep(timeout)
        raise RuntimeError("KafkaError{code=_TRANSPORT}: Broker transport failure")


class _Purged:
    def str(self) -> str:
        return "Local: Purged in queue"


def stop_after(seconds: float, stop: StopSignal) -> float:
    """Set stop after seconds (on a timer); when, on the monotonic clock."""
    at = time.monotonic() + seconds
    threading.Timer(seconds, stop.set, args=("SIGINT",)).start()
    return at


def test_the_topic_check_ends_at_the_stop_with_what_was_unreachable() -> None:
    stop = StopSignal()
    at = stop_after(0.5, stop)
    with pytest.raises(KafkaUnavailable, match=r"unreachable at h:1: .*stopped: SIGINT") as err:
        check_topic(DownProducer(), "tweets", "h:1", timeout_s=60, stop=stop)
    assert time.monotonic() - at < 0.5
    assert "\n" not in str(err.value)


def test_the_topic_check_ends_at_the_deadline() -> None:
    stop = StopSignal(0.5)
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match="stopped: duration"):
        check_topic(DownProducer(), "tweets", "h:1", timeout_s=60, stop=stop)
    assert time.monotonic() - started < 1.0


def test_a_stop_while_the_broker_is_down_flushes_for_the_grace_then_counts_failures() -> None:
    stop = StopSignal()
    producer = DownProducer()
    at = stop_after(0.5, stop)
    stats = produce(endless(), producer=producer, topic="t", rate_per_s=200, stop=stop)  # type: ignore[arg-type]
    took = time.monotonic() - at
    assert StopSignal.GRACE_S - 0.2 < took < BOUND_S
    assert stats.interrupted and stats.delivered == 0
    assert stats.failed == stats.enqueued > 0 and stats.in_flight == 0
    assert stats.last_error == "Local: Purged in queue"


def test_a_stop_ends_the_wait_on_a_full_local_queue() -> None:
    stop = StopSignal()
    producer = DownProducer(capacity=100)
    at = stop_after(0.5, stop)
    stats = produce(endless(), producer=producer, topic="t", stop=stop)  # type: ignore[arg-type]
    assert time.monotonic() - at < BOUND_S
    assert stats.enqueued == 100 == stats.failed


def test_the_deadline_ends_pacing_and_is_not_an_interruption() -> None:
    stop = StopSignal(0.6)
    producer = DownProducer()
    started = time.monotonic()
    stats = produce(endless(), producer=producer, topic="t", rate_per_s=0.1, stop=stop)  # type: ignore[arg-type]
    # the first post goes at once, the next is due in 10 s: the deadline ends that wait
    assert time.monotonic() - started < 0.6 + BOUND_S
    assert stats.enqueued == 1 and not stats.interrupted


def test_flush_until_gives_a_stopping_command_only_the_grace() -> None:
    stop = StopSignal()
    stop.set()
    started = time.monotonic()
    assert flush_until(DownProducer(), 60, stop) == 0  # nothing queued: done at once
    producer = DownProducer()
    producer.queued = 5
    assert flush_until(producer, 60, stop) == 5
    assert time.monotonic() - started < BOUND_S
