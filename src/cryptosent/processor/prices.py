"""The price stream: `cryptosent process` consumes the `prices` topic beside `tweets`.

A second member of its own consumer group (`<consumer group>.prices`, so neither stream's
rebalances disturb the other) runs the same loop and checkpoint as the tweets on a thread of
the same process: messages -> valid trades (`decode_prices`, `model.decode_price`) and dead
letters (to the prices dead-letter topic, with the reason) -> one `ScoredBatch` of
`sinks.prices.PRICE_SCHEMA` rows -> `price_minute` and the lake's `prices/` layer, each with its
offsets (sinks/prices.py). One stop ends both; `--until-idle` returns once both caught up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError

from cryptosent import kafka
from cryptosent.analysis.coins import COINS
from cryptosent.batch import Ranges, ScoredBatch
from cryptosent.config import Settings
from cryptosent.errors import TransientError
from cryptosent.metrics import ProcessorMetrics
from cryptosent.model import FUTURE_MARGIN, InvalidPrice, decode_price
from cryptosent.processor.checkpoint import Checkpoint
from cryptosent.processor.dead_letters import DeadLetters
from cryptosent.processor.loop import Processor, ProcessorOptions, ProcessStats
from cryptosent.processor.transform import DeadLetter, Message, received_at
from cryptosent.runtime import Backoff, Retry, StopSignal
from cryptosent.sinks.base import Sink, Written
from cryptosent.sinks.prices import PRICE_SCHEMA, open_price_sinks

log = logging.getLogger("cryptosent.process.prices")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 30.0
JOIN_AFTER_FAILURE_S = 10.0


def price_group(settings: Settings) -> str:
    """The price stream's consumer group (Kafka's and the stored offsets')."""
    return f"{settings.consumer_group}.prices"


@dataclass
class DecodedPrices:
    """One consumed batch of price messages: the valid trades as a batch, and dead letters."""

    batch: ScoredBatch
    dead: list[DeadLetter] = field(default_factory=list)


def decode_prices(
    messages: Sequence[Message],
    known_coins: Container[str] = COINS,
    future_margin: timedelta | None = FUTURE_MARGIN,
    now: datetime | None = None,
) -> DecodedPrices:
    """Validate each message against the price contract (`model.decode_price`) and, unless
    future_margin is None, refuse trades dated more than future_margin after they reached Kafka;
    invalid ones become dead letters with their reason, consumer errors are logged and skipped."""
    now = now or datetime.now(UTC)
    now_us = (now - _EPOCH) // _MICROSECOND
    margin_us = None if future_margin is None else future_margin // _MICROSECOND
    cols: dict[str, list[object]] = {name: [] for name in PRICE_SCHEMA.names}
    raw: list[bytes] = []
    ranges: Ranges = {}
    dead: list[DeadLetter] = []
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", error.str())
            continue
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        ranges[partition] = (ranges.get(partition, (offset, offset))[0], offset)
        value = message.value()
        if value is None:
            dead.append((message, "empty message (no value)"))
            continue
        try:
            tick = decode_price(value, known_coins)
            ts_us = (tick.ts - _EPOCH) // _MICROSECOND
            if margin_us is not None:
                # `received_at` in integers (a few times cheaper than datetimes, per message)
                kind, millis = message.timestamp()
                unknown = kind == TIMESTAMP_NOT_AVAILABLE or millis < 0
                if ts_us - (now_us if unknown else min(millis * 1000, now_us)) > margin_us:
                    assert future_margin is not None
                    received = received_at(message, now)
                    raise InvalidPrice(
                        f"ts in the future ({tick.ts.isoformat()}, received "
                        f"{received.isoformat()}, margin {future_margin.total_seconds():.0f} s)"
                    )
        except InvalidPrice as invalid:
            dead.append((message, str(invalid)))
            continue
        cols["coin"].append(tick.coin)
        cols["ts"].append(ts_us)
        cols["price"].append(tick.price)
        cols["size"].append(tick.size)
        cols["source"].append(tick.source)
        cols["kafka_partition"].append(partition)
        cols["kafka_offset"].append(offset)
        raw.append(value)
    table = pa.Table.from_pydict(cols, schema=PRICE_SCHEMA)
    return DecodedPrices(ScoredBatch(table, raw, ranges), dead)


class PriceProcessor(Processor):
    """The consumer loop of the tweets (rebalances, checkpoint, idleness, stop) on the prices
    topic: only a batch's handling differs."""

    known_coins: Container[str] = COINS
    # wall-clock seconds of the first batch's start and the last batch's end (the busy window)
    busy_since: float | None = None
    busy_until: float | None = None
    # CPU seconds of the thread that ran the loop (the Python work; librdkafka has its own)
    cpu_s: float = 0.0

    def run(self) -> ProcessStats:
        """The consumer loop (`Processor.run`), its thread's CPU time counted."""
        started = time.thread_time()
        try:
            return super().run()
        finally:
            self.cpu_s = time.thread_time() - started
            log.info(
                "price stream: %d messages, %.2f CPU s on its thread, %.0f messages/s while busy",
                self.stats.consumed, self.cpu_s, self.sustained_rate,
            )  # fmt: skip

    @property
    def sustained_rate(self) -> float:
        """Messages handled per second from the first batch's start to the last one's end."""
        if self.busy_since is None or self.busy_until is None:
            return 0.0
        return self.stats.consumed / max(self.busy_until - self.busy_since, 1e-6)

    def handle(self, messages: Sequence[Message]) -> None:
        """Dead letters first, then every sink (as for tweets)."""
        started = time.monotonic()
        if self.busy_since is None:
            self.busy_since = time.time()
        decoded = decode_prices(messages, self.known_coins, self.options.future_margin)
        self.stats.consumed += len(messages)
        self.metrics.consumed.inc(len(messages))
        if not decoded.batch.ranges:
            return
        dead = [
            (message, reason)
            for message, reason in decoded.dead
            if self.checkpoint.dead_letter_needed(message.partition() or 0, message.offset() or 0)
        ]
        if dead:
            self.retry("dead letters", lambda: self.dead_letters.send(dead))
            self.stats.dlq += len(dead)
            self.metrics.dlq.inc(len(dead))
        self.checkpoint.add(decoded.batch)
        self.stats.batches += 1
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        self.busy_until = time.time()

    def written(self, sink: Sink, written: Written) -> None:
        """Account for one sink write (rows: trades; new: minute rows merged)."""
        self.stats.count(sink, written)


def build_price_processor(
    settings: Settings,
    *,
    until_idle: bool = False,
    sinks: Sequence[str] = ("postgres", "lake"),
    stop: StopSignal | None = None,
) -> PriceProcessor:
    """Wire the price stream to the configured Kafka, PostgreSQL and lake."""
    from confluent_kafka import Consumer, Producer

    stop = stop or StopSignal()
    stats = ProcessStats()

    def counted(_what: str, _err: TransientError, _delay: float) -> None:
        stats.retries += 1

    def retry() -> Retry:
        return Retry(
            Backoff.exponential(initial=RETRY_INITIAL_S, maximum=RETRY_MAX_S),
            stop=stop, on_retry=counted,
        )  # fmt: skip

    group = price_group(settings)
    consumer = Consumer(kafka.consumer_config(settings, group=group))
    producer = Producer(kafka.producer_config(settings))
    checkpoint = Checkpoint(
        open_price_sinks(settings, group, retry, sinks), consumer, settings.prices_topic
    )
    return PriceProcessor(
        consumer=consumer,
        topic=settings.prices_topic,
        checkpoint=checkpoint,
        dead_letters=DeadLetters(producer, settings.prices_dlq_topic, settings.prices_topic, stop),
        retry=retry(),
        scorer=_no_scorer,
        options=ProcessorOptions(
            batch_size=settings.batch_size,
            until_idle=until_idle,
            future_margin=timedelta(seconds=settings.future_margin_seconds),
        ),
        metrics=ProcessorMetrics(None),
        stats=stats,
        stop=stop,
    )


def _no_scorer(decoded: object) -> object:
    # prices are not scored; Processor's default would load the sentiment models
    return decoded


def run_beside(main: Processor, prices: PriceProcessor | None) -> tuple[ProcessStats, float]:
    """Run main here and prices on a thread until both end; re-raise the first failure.
    Returns main's stats and the price stream's sustained rate (0 without one).

    Each run sets the shared stop when it fails, so the other ends too (with what it flushed)."""
    if prices is None:
        return main.run(), 0.0
    failures: list[BaseException] = []

    def run_prices() -> None:
        try:
            prices.run()
        except BaseException as err:  # re-raised on the main thread
            failures.append(err)

    thread = threading.Thread(target=run_prices, name="prices", daemon=True)
    thread.start()
    try:
        stats = main.run()
    except BaseException:
        thread.join(JOIN_AFTER_FAILURE_S)
        raise
    thread.join()
    if failures:
        raise failures[0]
    return stats, prices.sustained_rate
