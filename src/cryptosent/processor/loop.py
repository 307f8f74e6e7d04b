"""The consumer loop: one member of the processor consumer group.

Each turn consumes up to `batch_size` messages, decodes and scores them (`transform`), sends
dead letters (`dead_letters`), hands the batch to the checkpoint (which trims it for and gives
it to every sink), flushes and commits when a sink is due (`checkpoint`), runs periodic jobs
(the alerts) and reports progress. Rebalances go through the checkpoint too: revoked
partitions are flushed and committed before they move, lost ones are dropped, assigned ones
start from the offsets the sinks stored.

Exactly-once effect: each sink stores its offsets with its data, a member seeks to the lowest
of them and each sink skips what it already has, so a crash at any point replays without loss
and without double counting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, TopicPartition

from cryptosent.kafka import KafkaUnavailable
from cryptosent.metrics import ProcessorMetrics
from cryptosent.model import FUTURE_MARGIN
from cryptosent.processor.checkpoint import Checkpoint
from cryptosent.processor.dead_letters import DeadLetters
from cryptosent.processor.transform import Message, Scorer, decode
from cryptosent.runtime import ForeignRaise, Retry, StopSignal, until_stopped
from cryptosent.sinks.base import Sink, Written

log = logging.getLogger("cryptosent.process")


@dataclass(frozen=True)
class ProcessorOptions:
    """Tuning knobs of the consumer loop."""

    batch_size: int = 40_000
    poll_timeout_s: float = 0.25
    until_idle: bool = False
    idle_check_s: float = 1.0
    progress_every_s: float = 0.5
    # a post dated more than this after its message reached Kafka is dead-lettered
    future_margin: timedelta = FUTURE_MARGIN


@dataclass
class ProcessStats:
    """Counters since the start, for the status line and the exit summary."""

    consumed: int = 0
    dlq: int = 0
    batches: int = 0
    retries: int = 0
    lag: int | None = None
    # per sink: rows written, of them new, objects written
    rows: dict[str, int] = field(default_factory=dict)
    new: dict[str, int] = field(default_factory=dict)
    objects: dict[str, int] = field(default_factory=dict)
    # per job: what it produced (alerts raised)
    jobs: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def stored(self) -> int:
        """New tweets stored in PostgreSQL."""
        return self.new.get("postgres", 0)

    @property
    def duplicates(self) -> int:
        """Tweets PostgreSQL skipped because their id was stored already."""
        return self.rows.get("postgres", 0) - self.stored

    @property
    def lake_objects(self) -> int:
        """Objects written to the lake."""
        return self.objects.get("lake", 0)

    @property
    def alerts(self) -> int:
        """New alerts raised."""
        return self.jobs.get("alerts", 0)

    @property
    def rate_per_s(self) -> float:
        """Consumed messages per second since the start."""
        elapsed = time.monotonic() - self.started
        return self.consumed / elapsed if elapsed > 0 else 0.0

    def count(self, sink: Sink, written: Written) -> None:
        """Add one sink write to the counters."""
        self.rows[sink.name] = self.rows.get(sink.name, 0) + written.rows
        self.new[sink.name] = self.new.get(sink.name, 0) + written.new
        self.objects[sink.name] = self.objects.get(sink.name, 0) + written.objects


class Job(Protocol):
    """Periodic work beside the stream (the alerts): runs when due, and once at the end."""

    name: str

    def due(self, now: float) -> bool: ...

    def run(self) -> int: ...

    def close(self) -> None: ...


class Processor:
    """One member of the processor consumer group; see the module docstring."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        topic: str,
        checkpoint: Checkpoint,
        dead_letters: DeadLetters,
        retry: Retry,
        scorer: Callable[..., Any] | None = None,
        jobs: Sequence[Job] = (),
        options: ProcessorOptions = ProcessorOptions(),
        metrics: ProcessorMetrics | None = None,
        stats: ProcessStats | None = None,
        stop: StopSignal | None = None,
        on_progress: Callable[[ProcessStats], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.checkpoint = checkpoint
        self.dead_letters = dead_letters
        self.retry = retry
        self.scorer = scorer or Scorer()
        self.jobs = list(jobs)
        self.options = options
        self.metrics = metrics or ProcessorMetrics(None)
        self.stats = stats or ProcessStats()
        self.stop = stop or StopSignal()
        self.on_progress = on_progress
        self.assignment_seen = False
        self.rebalancing = False
        # what the sinks write is counted here (stats, metrics)
        self.checkpoint.on_written = self.written

    # ---- group membership -----------------------------------------------------------------------
    def subscribe(self) -> None:
        """Join the group; partitions arrive through the rebalance callbacks."""
        self.consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )  # fmt: skip

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        start = self.checkpoint.resume([tp.partition for tp in partitions])
        offsets = [TopicPartition(self.topic, number, offset) for number, offset in start.items()]
        consumer.assign(offsets)
        self.assignment_seen = True
        self.rebalancing = False
        log.info("assigned partitions %s", ",".join(f"{t.partition}@{t.offset}" for t in offsets))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # until the next assignment arrives, an empty assignment does not mean "caught up"
        self.rebalancing = True
        # flush before the partitions move, so the next owner starts from stored offsets
        self.checkpoint.flush()
        consumer.unassign()
        self.checkpoint.forget([tp.partition for tp in partitions])

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # another member may already own them: drop unflushed data, its owner will redo it
        # (a write still in flight is refused by the offsets check if the owner got there first)
        self.rebalancing = True
        self.checkpoint.discard([tp.partition for tp in partitions])

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> ProcessStats:
        """Consume until stopped (or, with until_idle, until caught up); flush and commit."""
        self.subscribe()
        last_idle_check = 0.0
        last_progress = 0.0
        try:
            while not self.stop.is_set:
                messages = self.consumer.consume(
                    self.options.batch_size, timeout=self.options.poll_timeout_s
                )
                if messages:
                    self.handle(messages)
                if self.checkpoint.rewind_needed:
                    self._rewind()
                now = time.monotonic()
                self.checkpoint.tick(now)
                for job in self.jobs:
                    if job.due(now):
                        self._run_job(job)
                if now - last_progress >= self.options.progress_every_s:
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
            self.checkpoint.flush()
            for job in self.jobs:
                self._run_job(job)
        except BaseException:
            # background retries (the writer thread) give up instead of keeping us here
            self.stop.set()
            raise
        finally:
            self.checkpoint.close()
            for job in self.jobs:
                job.close()
            self._close_consumer()
        if self.on_progress is not None:
            self.on_progress(self.stats)
        return self.stats

    def _close_consumer(self) -> None:
        """Leave the group. With the broker down, close() waits 30 s for the commit in flight:
        once stopped it gets the stop's grace and is then left behind (the sinks' stored offsets
        keep the truth; the group drops this member after its session timeout). A close that
        fails (librdkafka torn down under it while a rebalance reads committed offsets) is
        logged: everything consumed is stored already."""
        try:
            until_stopped(
                self.stop, self.consumer.close, what="close the consumer",
                stopped=lambda: KafkaUnavailable(
                    f"the consumer did not leave the group within the stop's grace "
                    f"({self.stop.reason}): the group drops it after its session timeout; "
                    "the sinks' stored offsets keep the truth"
                ),
            )  # fmt: skip
        except (KafkaUnavailable, KafkaException, ForeignRaise) as err:
            log.warning("%s", err)

    def handle(self, messages: Sequence[Message]) -> None:
        """Process one consumed batch: dead letters first, then every sink."""
        started = time.monotonic()
        decoded = decode(messages, self.options.future_margin)
        self.stats.consumed += len(messages)
        self.metrics.consumed.inc(len(messages))
        if not decoded.ranges:
            return
        batch = self.scorer(decoded)
        dead = [
            (message, reason)
            for message, reason in decoded.dead
            if self.checkpoint.dead_letter_needed(message.partition() or 0, message.offset() or 0)
        ]
        if dead:
            self.retry("dead letters", lambda: self.dead_letters.send(dead))
            self.stats.dlq += len(dead)
            self.metrics.dlq.inc(len(dead))
        self.checkpoint.add(batch)
        self.stats.batches += 1
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    def written(self, sink: Sink, written: Written) -> None:
        """Account for one sink write (the checkpoint's callback)."""
        self.stats.count(sink, written)
        self.metrics.sink_seconds.labels(sink=sink.name).observe(written.seconds)
        if sink.name == "postgres":
            self.metrics.stored.inc(written.new)
            if written.batch is not None:
                self.metrics.observe_freshness(written.batch.table)

    def _rewind(self) -> None:
        for number, offset in self.checkpoint.rewind().items():
            self.consumer.seek(TopicPartition(self.topic, number, offset))

    def _run_job(self, job: Job) -> None:
        self.stats.jobs[job.name] = self.stats.jobs.get(job.name, 0) + job.run()

    # ---- lag and idleness -----------------------------------------------------------------------
    def _positions(self, cached: bool = True) -> list[tuple[int, int, int]]:
        """(partition, position, high watermark) of each assigned partition.

        Cached watermarks come free with every fetch response; uncached ones cost a broker
        round trip per partition, so they only confirm that we caught up.
        """
        result = []
        tps = [TopicPartition(self.topic, p) for p in sorted(self.checkpoint.assigned)]
        positions = self.consumer.position(tps)
        if cached:
            highs = [self.consumer.get_watermark_offsets(tp, cached=True)[1] for tp in positions]
        elif self.stop.is_set:
            # a broker round trip each, up to a second when it is down: not after a stop
            raise RuntimeError("stopped")
        else:
            highs = self._ask_highs(positions)
        for tp, high in zip(positions, highs, strict=True):
            lowest = self.checkpoint.lowest(tp.partition)
            position = tp.offset if tp.offset >= 0 else (-1 if lowest is None else lowest)
            result.append((tp.partition, position, high))
        return result

    def _caught_up(self) -> bool:
        if not self.assignment_seen or self.rebalancing:
            # still joining the group, or between a revocation and the next assignment: an
            # empty poll (or an empty assignment) means nothing yet, unless the topic holds
            # nothing at all. A member that stopped polling holds the group's rebalance for its
            # max.poll.interval.ms (10 min): an empty prices topic kept --until-idle that long.
            return self._topic_empty()
        try:
            if not all(p >= high for _n, p, high in self._positions() if high > 0):
                return False
            # a cached high watermark is unknown (negative) until the partition's first fetch,
            # which looked like an empty partition: a slow first fetch (a broker just started)
            # made --until-idle exit having consumed nothing; ask the broker before saying yes
            return all(p >= high for _n, p, high in self._positions(cached=False) if high > 0)
        except Exception:
            return False

    def _ask_highs(self, tps: Sequence[TopicPartition], latest: bool = True) -> list[int]:
        """The high (or, with latest False, low) watermark of each partition, asked of the broker
        in one request: a ListOffsets for the latest (earliest) offset of every partition, the
        question `get_watermark_offsets` asks one partition at a time. Each of those queues
        behind the consumer's long-poll fetch on the broker's connection (`fetch.wait.max.ms`,
        0.1 s), so one by one they cost 0.6 s for 6 partitions at the end of every
        --until-idle run; together 0.1 s."""
        batched = getattr(self.consumer, "offsets_for_times", None)
        if batched is None:  # a consumer without it (a test double): one partition at a time
            index = 1 if latest else 0
            return [
                self.consumer.get_watermark_offsets(tp, timeout=1, cached=False)[index]
                for tp in tps
            ]
        which = OFFSET_END if latest else OFFSET_BEGINNING
        asked = [TopicPartition(self.topic, tp.partition, which) for tp in tps]
        answered = {}
        for tp in batched(asked, timeout=1):
            if tp.error is not None:
                raise KafkaException(tp.error)
            answered[tp.partition] = tp.offset
        return [answered[tp.partition] for tp in tps]

    def _topic_empty(self) -> bool:
        """No partition of the topic holds a message (asked of the broker; False if unsure)."""
        if self.stop.is_set:
            return False
        try:
            info = self.consumer.list_topics(self.topic, timeout=1).topics[self.topic]
            if info.error is not None or not info.partitions:
                return False
            tps = [TopicPartition(self.topic, number) for number in info.partitions]
            highs = self._ask_highs(tps)
            if any(
                high > low for low, high in zip(self._ask_highs(tps, False), highs, strict=True)
            ):
                return False
        except Exception:
            return False
        return True

    def _update_lag(self) -> None:
        if not self.checkpoint.assigned:
            return
        try:
            lag = sum(max(0, high - max(position, 0)) for _p, position, high in self._positions())
        except Exception:
            return
        self.stats.lag = lag
        self.metrics.lag.set(lag)
