"""Any source -> the `tweets` topic: rate control, idempotent producer, delivery accounting.

A source is a *batch supplier*: ``supply(n)`` returns up to ``n`` ready messages (key, value)
and an empty list once it is exhausted. Asking for exactly the number of messages that are due
keeps ``created_at`` honest at low rates (a tweet is made when it is sent, not seconds before).
"""

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer

from cryptosent.model import Tweet, encode_tweet

log = logging.getLogger(__name__)

KeyValue = tuple[bytes, bytes]
BatchSupplier = Callable[[int], list[KeyValue]]

MAX_BATCH: Final = 2000  # messages asked of a source at once at --rate max
PROGRESS_EVERY_S: Final = 0.25
FLUSH_TIMEOUT_S: Final = 60.0


def producer_config(kafka: dict[str, str]) -> dict[str, Any]:
    """Producer settings: idempotent, acks=all, lz4, batched; on top of the connection config."""
    return {
        **kafka,
        "enable.idempotence": True,  # implies acks=all and ordered, de-duplicated retries
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "delivery.timeout.ms": 120_000,
        "statistics.interval.ms": 0,
    }


@dataclass
class IngestStats:
    """What happened to the messages handed to the producer."""

    enqueued: int = 0
    delivered: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    last_error: str | None = None
    interrupted: bool = False

    @property
    def in_flight(self) -> int:
        """Enqueued but neither acknowledged nor failed yet."""
        return self.enqueued - self.delivered - self.failed

    @property
    def elapsed(self) -> float:
        """Seconds since the start (until the end once finished)."""
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate_per_s(self) -> float:
        """Acknowledged messages per second so far."""
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0


def iterator_supplier(messages: Iterable[KeyValue], max_batch: int | None = None) -> BatchSupplier:
    """Adapt an iterable of messages to a batch supplier.

    Use max_batch=1 for paced or live iterables, whose next item may take a while: each
    message is then sent as soon as it exists instead of waiting for a full batch.
    """
    iterator = iter(messages)
    if max_batch is None:
        return lambda n: list(itertools.islice(iterator, n))
    return lambda n: list(itertools.islice(iterator, min(n, max_batch)))


def encoded(tweets: Iterable[Tweet]) -> Iterator[KeyValue]:
    """Tweets as Kafka messages: key = id, value = the JSON codec's bytes."""
    for tweet in tweets:
        yield tweet.id.encode(), encode_tweet(tweet)


class KafkaUnavailable(RuntimeError):
    """The broker cannot be reached or the topic does not exist; ``str(err)`` is one line."""


def check_topic(producer: Producer, topic: str, bootstrap: str, timeout_s: float = 10.0) -> int:
    """Fail fast with one line if Kafka is unreachable or topic is missing; return partitions."""
    try:
        metadata = producer.list_topics(topic, timeout=timeout_s)
    except Exception as err:  # librdkafka raises KafkaException with a transport error
        raise KafkaUnavailable(
            f"Kafka unreachable at {bootstrap}: {err} (start the local stack with "
            "`cryptosent stack up`, or set CRYPTOSENT_KAFKA_BOOTSTRAP)"
        ) from None
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise KafkaUnavailable(
            f"Kafka topic {topic!r} does not exist at {bootstrap} "
            "(`cryptosent stack up` creates it; on your own cluster create it first)"
        )
    return len(info.partitions)


class StopSignal:
    """Set by SIGINT/SIGTERM so the loop can stop, flush and report instead of dying."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def is_set(self) -> bool:
        """Whether a stop was requested."""
        return self.event.is_set()


def produce(
    supply: BatchSupplier,
    *,
    producer: Producer,
    topic: str,
    rate_per_s: float | None = None,
    count: int | None = None,
    duration_s: float | None = None,
    on_progress: Callable[[IngestStats], None] | None = None,
    stop: StopSignal | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestStats:
    """Send messages from supply to topic at rate_per_s (None = as fast as possible).

    Stops after count messages, after duration_s, when the source is exhausted or on a stop
    signal; then flushes, so every message is either acknowledged or counted as failed.
    """
    stats = IngestStats(started=clock())

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            stats.delivered += 1
        else:
            stats.failed += 1
            stats.last_error = err.str()

    start = stats.started
    last_progress = start
    while True:
        now = clock()
        if stop is not None and stop.is_set:
            stats.interrupted = True
            break
        if duration_s is not None and now - start >= duration_s:
            break
        remaining = None if count is None else count - stats.enqueued
        if remaining is not None and remaining <= 0:
            break
        if rate_per_s is None:
            want = MAX_BATCH
        else:
            # schedule-based pacing: message i is due at start + i / rate, so the rate over any
            # window stays exact without drifting, and we sleep (not spin) until the next one
            # (the epsilon keeps float rounding from making a message due a hair too late)
            due = int((now - start) * rate_per_s + 1e-6) + 1 - stats.enqueued
            if due <= 0:
                next_due = start + stats.enqueued / rate_per_s
                sleep(min(max(next_due - now, 0.0005), 0.25))
                producer.poll(0)
                continue
            want = min(due, MAX_BATCH)
        if remaining is not None:
            want = min(want, remaining)
        batch = supply(want)
        if not batch:
            break
        _enqueue(producer, topic, batch, delivered, stats)
        producer.poll(0)
        if on_progress is not None and now - last_progress >= PROGRESS_EVERY_S:
            last_progress = now
            on_progress(stats)
    _flush(producer, stats, stop)
    stats.finished = clock()
    if on_progress is not None:
        on_progress(stats)
    return stats


def _enqueue(
    producer: Producer,
    topic: str,
    batch: list[KeyValue],
    callback: Callable[[KafkaError | None, Message], None],
    stats: IngestStats,
) -> None:
    for key, value in batch:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=callback)
                break
            except BufferError:
                # local queue full: let librdkafka send and serve delivery reports, then retry
                producer.poll(0.05)
        stats.enqueued += 1


def _flush(producer: Producer, stats: IngestStats, stop: StopSignal | None) -> None:
    """Wait for every enqueued message's delivery report (bounded); leftovers count as failed."""
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    while stats.in_flight > 0 and time.monotonic() < deadline:
        producer.flush(0.5)
    if stats.in_flight > 0:
        # still queued after the timeout (broker gone): purge so the reports arrive as failures
        producer.purge()
        producer.flush(5)
    unreported = stats.in_flight
    if unreported > 0:
        stats.failed += unreported
        stats.last_error = stats.last_error or f"{unreported} messages without a delivery report"
