"""The checkpoint: the one owner of "flush the sinks, then commit".

Per assigned partition it knows the next offset each sink has durably stored (read from the
sinks on assignment, advanced by what they report as written). It trims every batch to what
each sink still needs, flushes the sinks when one is due (or on revocation and at the end), and
only then commits to Kafka (asynchronously), per partition, the lowest offset any sink still
needs. Kafka's
committed offsets are therefore never ahead of what is stored; the stored offsets stay the
truth (a restarted member starts from them), Kafka's serve lag tools and are the fallback for
a sink that has stored nothing yet.

A sink that reports `StaleBatch` (another member stored part of a batch first: a rebalance
raced us) sets `rewind_needed`; `rewind()` then drops what every sink holds unflushed, asks
the sinks where they are, and returns the offsets the consumer must seek to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from cryptosent.batch import ScoredBatch
from cryptosent.sinks.base import Sink, Written
from cryptosent.sinks.offsets import StaleBatch

log = logging.getLogger(__name__)

BEGINNING = OFFSET_BEGINNING
"""Start offset of a partition no sink (and no Kafka commit) knows: its first message."""


class Checkpoint:
    """Offsets per sink and partition; trims, flushes, commits (see the module docstring)."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        consumer: Consumer,
        topic: str,
        *,
        on_written: Callable[[Sink, Written], None] | None = None,
        commit_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not sinks:
            raise ValueError("a checkpoint needs at least one sink")
        self.sinks = list(sinks)
        self.consumer = consumer
        self.topic = topic
        self.on_written = on_written
        self.commit_interval_s = commit_interval_s
        self._clock = clock
        # sink name -> partition -> next offset the sink has not durably stored
        self.next: dict[str, dict[int, int]] = {sink.name: {} for sink in self.sinks}
        self.assigned: set[int] = set()
        self.rewind_needed = False
        self._committed: dict[int, int] = {}
        self._last_commit = clock()

    # ---- assignment ------------------------------------------------------------------------------
    def resume(self, partitions: Sequence[int]) -> dict[int, int]:
        """Ask every sink where it stopped; the offset each partition must start from: the
        lowest over the sinks, else Kafka's committed offset, else the beginning."""
        numbers = list(partitions)
        for sink in self.sinks:
            stored = self._guard(sink, lambda sink=sink: sink.resume(numbers))  # type: ignore[misc]
            offsets = self.next[sink.name]
            for number in numbers:
                offsets.pop(number, None)
            offsets.update({p: o for p, o in (stored or {}).items() if o >= 0})
        committed = self._kafka_committed(numbers)
        start: dict[int, int] = {}
        for number in numbers:
            needs = [self.next[s.name][number] for s in self.sinks if number in self.next[s.name]]
            if len(needs) == len(self.sinks):
                start[number] = min(needs)
            elif committed.get(number, -1) >= 0:
                start[number] = committed[number]
            else:
                # a sink without any stored offset needs the partition from its beginning
                start[number] = BEGINNING
        self.assigned.update(numbers)
        return start

    def forget(self, partitions: Collection[int]) -> None:
        """Stop tracking partitions (revoked after a flush, or lost)."""
        for number in partitions:
            self.assigned.discard(number)
            self._committed.pop(number, None)
            for offsets in self.next.values():
                offsets.pop(number, None)

    def discard(self, partitions: Collection[int]) -> None:
        """Partitions were lost: every sink forgets what it holds unflushed for them."""
        for sink in self.sinks:
            self._guard(sink, lambda sink=sink: sink.discard(partitions))  # type: ignore[misc]
        self.forget(partitions)

    def rewind(self) -> dict[int, int]:
        """After a stale batch: drop every sink's unflushed data of the assigned partitions and
        resume them from what is stored; the offsets to seek to."""
        numbers = sorted(self.assigned)
        for sink in self.sinks:
            self._guard(sink, lambda sink=sink: sink.discard(numbers))  # type: ignore[misc]
        self.rewind_needed = False
        return self.resume(numbers)

    # ---- batches ---------------------------------------------------------------------------------
    def dead_letter_needed(self, partition: int, offset: int) -> bool:
        """Whether an invalid message still needs its dead letter: dead letters are sent before
        any sink gets the batch, so one that a sink's stored offsets passed was already sent."""
        return offset >= max(self.next[s.name].get(partition, -1) for s in self.sinks)

    def add(self, batch: ScoredBatch) -> None:
        """Give each sink the part of batch it has not stored; record what became durable."""
        for sink in self.sinks:
            part = batch.since(self.next[sink.name])
            if part.ranges:
                self._guard(sink, lambda sink=sink, part=part: sink.add(part))  # type: ignore[misc]
            self._record(sink, self._guard(sink, sink.completed) or [])

    def tick(self, now: float) -> None:
        """Once per loop turn: flush the sinks and commit when a sink is due; otherwise commit
        what they stored meanwhile, at most once per commit interval (a sink that writes every
        batch moves its offsets without any flush)."""
        if any(sink.due(now) for sink in self.sinks):
            self.flush()
        elif now - self._last_commit >= self.commit_interval_s:
            self.commit()

    def flush(self) -> None:
        """Flush every sink, then commit what they stored (the order is the guarantee)."""
        for sink in self.sinks:
            self._record(sink, self._guard(sink, sink.flush) or [])
        self.commit()

    def commit(self) -> None:
        """Commit to Kafka, per assigned partition, the lowest offset a sink still needs."""
        self._last_commit = self._clock()
        offsets = []
        for number in sorted(self.assigned):
            lowest = self.lowest(number)
            if lowest is not None and self._committed.get(number) != lowest:
                offsets.append(TopicPartition(self.topic, number, lowest))
        if not offsets:
            return
        try:
            # asynchronous: a synchronous commit waits 30 s for a coordinator when the broker is
            # down, and the loop must keep answering a stop; these commits only serve lag tools
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except Exception as err:
            log.warning("Kafka offset commit failed (the stored offsets keep the truth): %s", err)
            return
        self._committed.update({tp.partition: tp.offset for tp in offsets})

    def lowest(self, partition: int) -> int | None:
        """The lowest offset a sink still needs on partition (None while one knows none)."""
        needs = [self.next[s.name].get(partition) for s in self.sinks]
        if any(need is None for need in needs):
            return None
        return min(n for n in needs if n is not None)

    def close(self) -> None:
        """Close every sink (each waits for its write in flight)."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as err:  # one sink failing to close must not keep others open
                log.warning("closing the %s sink failed: %s", sink.name, err)

    # ---- internals -------------------------------------------------------------------------------
    def _record(self, sink: Sink, written: list[Written]) -> None:
        offsets = self.next[sink.name]
        for write in written:
            for partition, (_first, last) in write.ranges.items():
                if partition in self.assigned:
                    offsets[partition] = max(offsets.get(partition, -1), last + 1)
            if self.on_written is not None:
                self.on_written(sink, write)

    def _guard(self, sink: Sink, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except StaleBatch as stale:
            log.warning(
                "%s: skipping a batch another processor already stored: %s", sink.name, stale
            )
            self.rewind_needed = True
            return None

    def _kafka_committed(self, numbers: list[int]) -> dict[int, int]:
        if not numbers:
            return {}
        partitions = [TopicPartition(self.topic, n) for n in numbers]
        found = self.consumer.committed(partitions, timeout=30)
        return {tp.partition: tp.offset for tp in found}
