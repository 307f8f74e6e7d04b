"""Any source -> its Kafka topic: the Kafka message of a record, rate control, an idempotent
producer, delivery accounting.

This is the one place that turns records into Kafka messages (`to_message`): a `Tweet` keyed by
its id (value `model.encode_tweet`, topic `tweets`), a `PriceTick` keyed by its coin (value
`model.encode_price`, topic `prices`, so one coin's prices stay in order on one partition).
Sources (`cryptosent.sources`) only yield records; `produce` asks a source for exactly the
number of records that are due, which keeps timestamps honest at low rates (a tweet is made when
it is sent, not seconds before).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from confluent_kafka import KafkaError, Message, Producer

from cryptosent import kafka
from cryptosent.config import Settings
from cryptosent.model import PriceTick, Tweet, encode_price, encode_tweet
from cryptosent.runtime import StopSignal
from cryptosent.sources.base import Source

log = logging.getLogger(__name__)

KeyValue = tuple[bytes, bytes]

MAX_BATCH: Final = 2000  # records asked of a source at once at --rate max
PROGRESS_EVERY_S: Final = 0.25
FLUSH_TIMEOUT_S: Final = 60.0
"""Default wait for the last acknowledgements (the setting `producer_flush_seconds`)."""
QUEUE_DRAINED: Final = 10_000
"""Unacknowledged messages below which a full queue counts as moving again (said anew next time)."""


def to_message(record: Tweet | PriceTick) -> KeyValue:
    """A record as a Kafka message (the message contracts): a tweet keyed by its id, a price
    keyed by its coin; the value is the record's JSON."""
    if isinstance(record, PriceTick):
        return record.coin.encode(), encode_price(record)
    return record.id.encode(), encode_tweet(record)


def open_producer(
    settings: Settings, topic: str | None = None, stop: StopSignal | None = None
) -> Producer:
    """An idempotent producer for the configured cluster, after checking that Kafka answers and
    the topic (default: the tweets topic) exists (one line otherwise; a stop ends the check).
    librdkafka's chatter stays out of stderr: the progress line and the summary say what matters
    (delivered, failed, why)."""
    producer = Producer(kafka.producer_config(settings), logger=kafka.quiet_logger("producer"))
    kafka.check_topic(producer, topic or settings.topic, settings.kafka_bootstrap, stop=stop)
    return producer


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
    # the producer's queue is at its bound (queue.buffering.max.*): Kafka is not taking messages
    queue_full: bool = False

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


def produce(
    source: Source[Tweet] | Source[PriceTick],
    *,
    producer: Producer,
    topic: str,
    rate_per_s: float | None = None,
    count: int | None = None,
    duration_s: float | None = None,
    on_progress: Callable[[IngestStats], None] | None = None,
    stop: StopSignal | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] | None = None,
    flush_timeout_s: float = FLUSH_TIMEOUT_S,
) -> IngestStats:
    """Send the records of source to topic at rate_per_s (None = as fast as possible).

    Stops after count records, after duration_s, when the source is exhausted or on a stop
    (Ctrl-C, SIGTERM, its deadline); then flushes, so every message is either acknowledged or
    counted as failed (after flush_timeout_s). Pacing waits on the stop; once stopped, the flush
    gets the stop's grace. A broker that stops taking messages holds the producer at its queue's
    bound, said in one warning, never beyond it.
    """
    stats = IngestStats(started=clock())
    pause = sleep or (stop.wait if stop is not None else time.sleep)

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
                pause(min(max(next_due - now, 0.0005), 0.25))
                producer.poll(0)
                continue
            want = min(due, MAX_BATCH)
        if remaining is not None:
            want = min(want, remaining)
        records = source.read(want)
        if not records:
            break
        messages = [to_message(record) for record in records]
        _enqueue(producer, topic, messages, delivered, stats, stop, on_progress)
        producer.poll(0)
        if stats.queue_full and stats.in_flight < QUEUE_DRAINED:
            stats.queue_full = False  # Kafka takes messages again; a new outage is said again
        if on_progress is not None and now - last_progress >= PROGRESS_EVERY_S:
            last_progress = now
            on_progress(stats)
    # Ctrl-C, SIGTERM or code; reaching --duration is how the command was meant to end
    stats.interrupted = stop is not None and stop.interrupted
    _flush(producer, stats, stop, flush_timeout_s)
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
    stop: StopSignal | None = None,
    on_progress: Callable[[IngestStats], None] | None = None,
) -> None:
    for key, value in batch:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=callback)
                break
            except BufferError:
                # local queue full (a slow or absent broker): let librdkafka send and serve
                # delivery reports, then retry; a stop ends the wait (the rest was never sent)
                if stop is not None and stop.is_set:
                    return
                if not stats.queue_full:
                    stats.queue_full = True
                    log.warning(
                        "Kafka is not taking messages: the producer's queue is full (%s not "
                        "acknowledged); holding there until the broker answers (Ctrl-C stops)",
                        f"{stats.in_flight:,}",
                    )
                producer.poll(0.05)
                if on_progress is not None:
                    on_progress(stats)
        stats.enqueued += 1


def _flush(
    producer: Producer,
    stats: IngestStats,
    stop: StopSignal | None,
    timeout_s: float = FLUSH_TIMEOUT_S,
) -> None:
    """Wait for every enqueued message's delivery report, up to timeout_s or, once stopped,
    the stop's grace; what is left is purged and counts as failed."""
    if stats.in_flight > 0:
        kafka.flush_until(producer, timeout_s, stop)
    if stats.in_flight > 0:
        # still queued (broker gone, or no time left): purge so the reports arrive as failures
        producer.purge()
        producer.flush(0.5)
    unreported = stats.in_flight
    if unreported > 0:
        stats.failed += unreported
        stats.last_error = stats.last_error or f"{unreported} messages without a delivery report"
