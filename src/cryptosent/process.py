"""The processor: consume `tweets` in batches -> validate -> score -> sinks -> commit.

Exactly-once effect: each sink keeps its own next offset per partition in PostgreSQL (the
PostgreSQL sink in the same transaction as its rows; the lake right after its objects are
durable). On assignment the consumer seeks to the lowest of them and each sink skips what it
already has, so a crash at any point replays without loss and without double counting. Kafka's
committed offsets follow (the lowest over sinks) for lag monitoring and as a fallback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from cryptosent.analysis.alerts import MINUTE, AlertRules, detect
from cryptosent.analysis.sentiment import get_analyzer
from cryptosent.backoff import Backoff
from cryptosent.batch import ScoredBatch, score_tweets
from cryptosent.config import Settings
from cryptosent.ingest import StopSignal
from cryptosent.metrics import ProcessorMetrics
from cryptosent.model import InvalidTweet, Tweet, decode_tweet
from cryptosent.sinks.lake import Lake, LakeBuffer, LakeError, render
from cryptosent.sinks.postgres import LAKE, POSTGRES, PostgresSink, StaleBatch

log = logging.getLogger("cryptosent.process")

Ranges = dict[int, tuple[int, int]]

# bytes of an invalid message's value kept in its dead letter (the rest is cut, see `truncated`)
DLQ_VALUE_LIMIT = 512 * 1024


@dataclass(frozen=True)
class ProcessorOptions:
    """Tuning knobs of the consumer loop."""

    batch_size: int = 5000
    poll_timeout_s: float = 0.25
    lake_flush_interval_s: float = 60.0
    lake_flush_rows: int = 200_000
    until_idle: bool = False
    idle_check_s: float = 1.0
    retry_max_s: float = 30.0
    alert_rules: AlertRules = field(default_factory=AlertRules)
    alert_check_s: float = 10.0
    alert_lookback_minutes: int = 5


@dataclass
class ProcessStats:
    """Counters since the start, for the status line and the exit summary."""

    consumed: int = 0
    stored: int = 0
    duplicates: int = 0
    dlq: int = 0
    lake_objects: int = 0
    alerts: int = 0
    batches: int = 0
    retries: int = 0
    lag: int | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def rate_per_s(self) -> float:
        """Consumed messages per second since the start."""
        elapsed = time.monotonic() - self.started
        return self.consumed / elapsed if elapsed > 0 else 0.0


def consumer_config(kafka: dict[str, str], group: str) -> dict[str, Any]:
    """Consumer settings: manual commits after the sinks, read from the start of a new group."""
    return {
        **kafka,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        # a sink outage is waited out with retries; stay in the group meanwhile
        "max.poll.interval.ms": 600_000,
        "session.timeout.ms": 30_000,
        "fetch.min.bytes": 1,
        # a long-poll fetch holds the broker connection; keep it short so offset queries for
        # lag and --until-idle are not stuck behind it
        "fetch.wait.max.ms": 100,
        "queued.max.messages.kbytes": 256 * 1024,
    }


@dataclass
class _PendingWrite:
    """A batch the writer thread is storing in PostgreSQL."""

    future: Future[int]
    batch: ScoredBatch
    pg_batch: ScoredBatch
    pg_ranges: Ranges
    submitted: float


class Processor:
    """One member of the processor consumer group."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        topic: str,
        dlq_topic: str,
        dlq: Producer,
        alerts_topic: str | None = None,
        postgres: PostgresSink,
        lake: Lake | None,
        options: ProcessorOptions = ProcessorOptions(),
        metrics: ProcessorMetrics | None = None,
        stop: StopSignal | None = None,
        on_progress: Callable[[ProcessStats], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.dlq = dlq
        self.alerts_topic = alerts_topic
        self.last_alert_check = 0.0
        self.postgres = postgres
        self.lake = lake
        self.options = options
        self.metrics = metrics or ProcessorMetrics(None)
        self.stop = stop
        self.on_progress = on_progress
        self.stats = ProcessStats()
        self.crypto = get_analyzer("crypto")
        self.vader = get_analyzer("vader")
        self.assigned: set[int] = set()
        self.assignment_seen = False
        self.rebalancing = False
        # per partition, the next offset each sink still needs
        self.pg_next: dict[int, int] = {}
        self.lake_next: dict[int, int] = {}
        self.buffer = LakeBuffer()
        self.last_flush = time.monotonic()
        self.retry = Backoff.exponential(initial=0.5, maximum=options.retry_max_s)
        # one writer thread: PostgreSQL works on batch N while this thread scores batch N+1
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-writer")
        self._pending: _PendingWrite | None = None

    # ---- group membership -----------------------------------------------------------------------
    def subscribe(self) -> None:
        """Join the group; partitions arrive through the rebalance callbacks."""
        self.consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )  # fmt: skip

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drain()
        numbers = [tp.partition for tp in partitions]
        self._with_retry("resume", lambda: self._prepare_partitions(numbers))
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=30)}
        start: list[TopicPartition] = []
        for number in numbers:
            pg, lk = self.pg_next.get(number), self.lake_next.get(number)
            kafka = committed.get(number, OFFSET_INVALID)
            if pg is not None and lk is not None:
                offset = min(pg, lk)
            elif kafka is not None and kafka >= 0:
                offset = kafka
            else:
                # a sink without any stored offset needs the partition from its beginning
                offset = OFFSET_BEGINNING
            start.append(TopicPartition(self.topic, number, offset))
        consumer.assign(start)
        self.assigned = set(numbers)
        self.assignment_seen = True
        self.rebalancing = False
        log.info("assigned partitions %s", ",".join(f"{t.partition}@{t.offset}" for t in start))

    def _prepare_partitions(self, numbers: list[int]) -> None:
        """Load each sink's offsets and delete lake objects a crashed writer left behind."""
        stored = self.postgres.stored_offsets(numbers)
        for number in numbers:
            sinks = stored.get(number, {})
            self.pg_next[number] = sinks.get(POSTGRES, -1)
            self.lake_next[number] = sinks.get(LAKE, -1) if self.lake else self.pg_next[number]
            if self.pg_next[number] < 0:
                self.pg_next.pop(number)
            if self.lake_next.get(number, 0) < 0:
                self.lake_next.pop(number)
        if self.lake is not None:
            for intent, keys in self.postgres.abandoned_lake_writes(numbers):
                self.lake.delete(keys)
                self.postgres.forget_lake_write(intent)
                log.info("deleted %d lake objects of an unfinished write", len(keys))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # until the next assignment arrives, an empty assignment does not mean "caught up"
        self.rebalancing = True
        # flush before the partitions move, so the next owner starts from stored offsets
        self._flush_lake(force=True)
        self._commit_kafka()
        consumer.unassign()
        self._forget([tp.partition for tp in partitions])

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # another member may already own them: drop unflushed data, its owner will redo it
        # (a write still in flight is refused by the offsets check if the owner got there first)
        self.rebalancing = True
        self._drain()
        self.buffer.clear()
        self._forget([tp.partition for tp in partitions])

    def _forget(self, numbers: list[int]) -> None:
        for number in numbers:
            self.assigned.discard(number)
            self.pg_next.pop(number, None)
            self.lake_next.pop(number, None)

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> ProcessStats:
        """Consume until stopped (or, with until_idle, until caught up); flush and commit."""
        self.subscribe()
        last_idle_check = 0.0
        last_progress = 0.0
        try:
            while not (self.stop is not None and self.stop.is_set):
                messages = self.consumer.consume(
                    self.options.batch_size, timeout=self.options.poll_timeout_s
                )
                if messages:
                    self.handle(messages)
                now = time.monotonic()
                if self._lake_due(now):
                    self._flush_lake()
                    self._commit_kafka()
                if now - self.last_alert_check >= self.options.alert_check_s:
                    self.last_alert_check = now
                    self._check_alerts()
                if now - last_progress >= 0.5:
                    last_progress = now
                    self._update_lag()
                    if self.on_progress is not None:
                        self.on_progress(self.stats)
                if (
                    self.options.until_idle
                    and not messages
                    and now - last_idle_check >= self.options.idle_check_s
                ):
                    last_idle_check = now
                    if self._caught_up():
                        break
            self._flush_lake(force=True)
            self._commit_kafka()
            self._check_alerts()
        finally:
            self._writer.shutdown(wait=True)
            self.consumer.close()
            self.postgres.close()
        if self.on_progress is not None:
            self.on_progress(self.stats)
        return self.stats

    def handle(self, messages: list[Message]) -> None:
        """Process one consumed batch through every sink."""
        started = time.monotonic()
        tweets: list[Tweet] = []
        raws: list[bytes] = []
        partitions: list[int] = []
        offsets: list[int] = []
        ranges: Ranges = {}
        dead: list[tuple[Message, str]] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", error.str())
                continue
            partition, offset = message.partition(), message.offset()
            assert partition is not None and offset is not None
            first = ranges.get(partition, (offset, offset))[0]
            ranges[partition] = (first, offset)
            raw = message.value()
            if raw is None:
                dead.append((message, "empty message (no value)"))
                continue
            try:
                tweets.append(decode_tweet(raw))
            except InvalidTweet as invalid:
                dead.append((message, str(invalid)))
                continue
            raws.append(raw)
            partitions.append(partition)
            offsets.append(offset)
        self.stats.consumed += len(messages)
        self.metrics.consumed.inc(len(messages))
        if not ranges:
            return
        table = score_tweets(tweets, partitions, offsets, self.crypto, self.vader)
        batch = ScoredBatch(table, raws, ranges)
        self._store(batch, dead)
        self.stats.batches += 1
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    def _store(self, batch: ScoredBatch, dead: list[tuple[Message, str]]) -> None:
        """Hand the batch to the PostgreSQL writer thread (after the previous one finished), so
        this thread decodes and scores the next batch while PostgreSQL works on this one."""
        self._drain()
        pg_batch, pg_ranges = _trim(batch, self.pg_next)
        if not pg_ranges:
            self._to_lake(batch)
            return
        dead = [
            (m, r) for m, r in dead if (m.offset() or 0) >= self.pg_next.get(m.partition() or 0, -1)
        ]
        future = self._writer.submit(self._write_postgres, pg_batch, pg_ranges, dead)
        self._pending = _PendingWrite(future, batch, pg_batch, pg_ranges, time.monotonic())

    def _write_postgres(
        self, pg_batch: ScoredBatch, pg_ranges: Ranges, dead: list[tuple[Message, str]]
    ) -> int:
        """Writer thread: dead letters first (durable before offsets move), then the rows."""
        if dead:
            self._dead_letter(dead)
        inserted: int = self._with_retry(
            "PostgreSQL", lambda: self.postgres.write(pg_batch.table, pg_ranges)
        )
        return inserted

    def _drain(self) -> None:
        """Wait for the batch in the writer thread and account for it. Called before anything
        else touches PostgreSQL or the offsets, so the connection is never shared mid-batch."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            inserted = pending.future.result()
        except StaleBatch as stale:
            log.warning("skipping a batch another processor already stored: %s", stale)
            self._reseek(list(pending.batch.ranges))
            return
        self.metrics.sink_seconds.labels(sink="postgres").observe(
            time.monotonic() - pending.submitted
        )
        self.stats.stored += inserted
        self.stats.duplicates += pending.pg_batch.size - inserted
        self.metrics.stored.inc(inserted)
        self.metrics.observe_freshness(pending.pg_batch.table)
        for partition, (_first, last) in pending.pg_ranges.items():
            self.pg_next[partition] = last + 1
        self._to_lake(pending.batch)

    def _to_lake(self, batch: ScoredBatch) -> None:
        if self.lake is None:
            for partition, (_first, last) in batch.ranges.items():
                self.lake_next[partition] = last + 1
            return
        lake_batch, lake_ranges = _trim(batch, self.lake_next)
        if lake_ranges:
            self.buffer.add(lake_batch, lake_ranges)

    def _dead_letter(self, dead: list[tuple[Message, str]]) -> None:
        failures: list[str] = []

        def delivered(err: KafkaError | None, _message: Message) -> None:
            if err is not None:
                failures.append(err.str())

        for message, reason in dead:
            headers: list[tuple[str, str | bytes | None]] = [
                ("error", reason.encode()),
                ("source.topic", self.topic.encode()),
                ("source.partition", str(message.partition()).encode()),
                ("source.offset", str(message.offset()).encode()),
            ]
            value = message.value()
            if value is not None and len(value) > DLQ_VALUE_LIMIT:
                # a message near the broker's size limit no longer fits once headers are added
                # (the producer refused it and the processor died on it, again after every
                # restart): keep its head, and say how long it was
                headers.append(("truncated", str(len(value)).encode()))
                value = value[:DLQ_VALUE_LIMIT]
            self.dlq.produce(
                self.dlq_topic, value, message.key(), headers=headers, on_delivery=delivered
            )
        # durable before the offsets move past them
        remaining = self.dlq.flush(30)
        if remaining or failures:
            raise RuntimeError(
                f"{remaining + len(failures)} dead letters not acknowledged by Kafka"
                + (f": {failures[0]}" if failures else "")
            )
        self.stats.dlq += len(dead)
        self.metrics.dlq.inc(len(dead))

    def _reseek(self, numbers: list[int]) -> None:
        self._prepare_partitions(numbers)
        for number in numbers:
            pg, lk = self.pg_next.get(number), self.lake_next.get(number)
            offset = min(pg, lk) if pg is not None and lk is not None else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(self.topic, number, offset))

    # ---- lake -----------------------------------------------------------------------------------
    def _lake_due(self, now: float) -> bool:
        if self.lake is None or self.buffer.empty:
            return False
        return (
            self.buffer.rows >= self.options.lake_flush_rows
            or now - self.last_flush >= self.options.lake_flush_interval_s
        )

    def _flush_lake(self, force: bool = False) -> None:
        self._drain()
        self.last_flush = time.monotonic()
        if self.lake is None or self.buffer.empty:
            return
        lake = self.lake
        pending = render(self.buffer, self.topic)
        started = time.monotonic()

        intent: int | None = None

        def write() -> None:
            nonlocal intent
            # one intent for all retries: a new one per attempt would leave the earlier ones
            # behind, and the next assignment would delete these very objects as "unfinished"
            if intent is None:
                intent = self.postgres.begin_lake_write(list(pending.blobs), pending.ranges)
            lake.put_all(pending.blobs)
            try:
                self.postgres.finish_lake_write(intent, pending.ranges, list(pending.blobs))
            except StaleBatch as stale:
                # a member that lost these partitions without noticing (a zombie) raced the new
                # owner: keep the objects (same names hold the same rows) and drop the intent
                log.warning("lake range already stored by another processor: %s", stale)
                self.postgres.forget_lake_write(intent)

        self._with_retry("the lake", write)
        self.metrics.sink_seconds.labels(sink="lake").observe(time.monotonic() - started)
        for partition, (_first, last) in pending.ranges.items():
            self.lake_next[partition] = last + 1
        self.stats.lake_objects += len(pending.blobs)
        self.buffer.clear()

    # ---- alerts ---------------------------------------------------------------------------------
    def _check_alerts(self) -> None:
        """Evaluate the last few closed minutes; store and publish the alerts that are new.

        Every check looks at all of them again, not only at minutes it has not seen: a minute
        checked before its tweets were processed (a backlog after a restart, lag) is caught
        at a later check; the (coin, minute, kind) key keeps each alert single."""
        self._drain()
        current = datetime.now(UTC).replace(second=0, microsecond=0)
        last_closed = current - MINUTE
        first = last_closed - (self.options.alert_lookback_minutes - 1) * MINUTE
        rules = self.options.alert_rules
        try:
            rows = self.postgres.coin_minutes(first - rules.window_minutes * MINUTE, last_closed)
            found = []
            minute = first
            while minute <= last_closed:
                found += detect(rows, minute, rules)
                minute += MINUTE
            new = self.postgres.insert_alerts(found)
        except _pg_errors() as err:
            log.warning("alert check skipped (PostgreSQL: %s)", str(err).strip()[:200])
            self.postgres.reset()
            return
        for alert in new:
            log.info("alert: %s", alert.message)
            if self.alerts_topic:
                payload = {
                    "coin": alert.coin, "minute": alert.minute.isoformat(), "kind": alert.kind,
                    "value": alert.value, "baseline": alert.baseline, "message": alert.message,
                }  # fmt: skip
                self.dlq.produce(self.alerts_topic, orjson.dumps(payload), alert.coin.encode())
        if new:
            self.dlq.flush(10)
        self.stats.alerts += len(new)

    # ---- commits, lag, idleness -----------------------------------------------------------------
    def _commit_kafka(self) -> None:
        self._drain()
        offsets = []
        for number in self.assigned:
            pg, lk = self.pg_next.get(number), self.lake_next.get(number)
            if pg is None or lk is None:
                continue
            offsets.append(TopicPartition(self.topic, number, min(pg, lk)))
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as err:
                log.warning("Kafka offset commit failed (PostgreSQL keeps the truth): %s", err)

    def _positions(self, cached: bool = True) -> list[tuple[int, int, int]]:
        """(partition, position, high watermark) of each assigned partition.

        Cached watermarks come free with every fetch response; uncached ones cost a broker
        round trip per partition, so they only confirm that we caught up.
        """
        result = []
        tps = [TopicPartition(self.topic, p) for p in sorted(self.assigned)]
        for tp in self.consumer.position(tps):
            if cached:
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            else:
                _low, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            position = tp.offset if tp.offset >= 0 else self.pg_next.get(tp.partition, -1)
            result.append((tp.partition, position, high))
        return result

    def _caught_up(self) -> bool:
        if not self.assignment_seen or self.rebalancing:
            # still joining the group, or between a revocation and the next assignment: an
            # empty poll (or an empty assignment) means nothing yet
            return False
        try:
            if not all(p >= high for _n, p, high in self._positions() if high > 0):
                return False
            # a cached high watermark is unknown (negative) until the partition's first fetch,
            # which looked like an empty partition: a slow first fetch (a broker just started)
            # made --until-idle exit having consumed nothing; ask the broker before saying yes
            return all(p >= high for _n, p, high in self._positions(cached=False) if high > 0)
        except Exception:
            return False

    def _update_lag(self) -> None:
        if not self.assigned:
            return
        try:
            lag = sum(max(0, high - max(position, 0)) for _p, position, high in self._positions())
        except Exception:
            return
        self.stats.lag = lag
        self.metrics.lag.set(lag)

    # ---- retries --------------------------------------------------------------------------------
    def _with_retry(self, what: str, action: Callable[[], Any]) -> Any:
        """Run action until it works; a sink outage pauses consumption, it never drops data."""
        while True:
            try:
                result = action()
            except StaleBatch:
                raise
            except (LakeError, OSError, _pg_errors()) as err:
                delay = self.retry.next_delay()
                self.stats.retries += 1
                self.metrics.retries.labels(sink=what).inc()
                first_line = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                # the lake's bookkeeping lives in PostgreSQL: name the server that failed
                failed = "PostgreSQL" if isinstance(err, _pg_errors()) else what
                log.warning("%s unavailable (%s); retrying in %.1f s", failed, first_line, delay)
                self.postgres.reset()
                if self.stop is not None and self.stop.event.wait(delay):
                    raise
                if self.stop is None:
                    time.sleep(delay)
                continue
            self.retry.reset()
            return result


def build_processor(
    settings: Settings,
    *,
    until_idle: bool = False,
    with_lake: bool = True,
    metrics_port: int | None = None,
    stop: StopSignal | None = None,
    on_progress: Callable[[ProcessStats], None] | None = None,
) -> Processor:
    """Wire a processor to the configured Kafka, PostgreSQL and lake."""
    from cryptosent.ingest import producer_config
    from cryptosent.sinks.lake import open_lake

    lake = None
    if with_lake:
        key, secret = settings.aws_access_key_id, settings.aws_secret_access_key
        lake = Lake(
            open_lake(
                settings.lake_url,
                endpoint_url=settings.s3_endpoint_url,
                access_key=key.get_secret_value() if key else None,
                secret_key=secret.get_secret_value() if secret else None,
                region=settings.aws_region,
            )
        )
    return Processor(
        consumer=Consumer(consumer_config(settings.kafka_config(), settings.consumer_group)),
        topic=settings.topic,
        dlq_topic=settings.dlq_topic,
        dlq=Producer(producer_config(settings.kafka_config())),
        alerts_topic=settings.alerts_topic,
        postgres=PostgresSink(
            settings.database_dsn(), group=settings.consumer_group, topic=settings.topic
        ),
        lake=lake,
        options=ProcessorOptions(
            batch_size=settings.batch_size,
            lake_flush_interval_s=settings.lake_flush_seconds,
            lake_flush_rows=settings.lake_flush_rows,
            until_idle=until_idle,
            alert_rules=AlertRules(
                window_minutes=settings.alert_window_minutes,
                min_tweets=settings.alert_min_tweets,
                volume_factor=settings.alert_volume_factor,
                sentiment_swing=settings.alert_sentiment_swing,
            ),
        ),
        metrics=ProcessorMetrics(settings.metrics_port if metrics_port is None else metrics_port),
        stop=stop,
        on_progress=on_progress,
    )


def _pg_errors() -> type[Exception]:
    import psycopg

    return psycopg.OperationalError


def _trim(batch: ScoredBatch, next_offsets: dict[int, int]) -> tuple[ScoredBatch, Ranges]:
    """The part of batch a sink still needs (offsets >= its next offset per partition)."""
    ranges: Ranges = {}
    trimmed = False
    for partition, (first, last) in batch.ranges.items():
        need = next_offsets.get(partition, -1)
        if last < need:
            trimmed = True
            continue
        if first < need:
            trimmed = True
            first = need
        ranges[partition] = (first, last)
    if not trimmed:
        return batch, ranges
    import pyarrow as pa
    import pyarrow.compute as pc

    table = batch.table
    mask = [
        offset >= next_offsets.get(partition, -1)
        for partition, offset in zip(
            table.column("kafka_partition").to_pylist(),
            table.column("kafka_offset").to_pylist(),
            strict=True,
        )
    ]
    keep = pc.indices_nonzero(pa.array(mask, pa.bool_()))
    raw = [batch.raw[i] for i in keep.to_pylist()]
    return ScoredBatch(table.take(keep), raw, ranges), ranges
