"""In-memory stand-ins for Kafka and the sinks, so the processor loop runs without servers (the
way Bytewax tests dataflows with TestingSource/TestingSink).

- `Broker`: a topic's partitions and the group's committed offsets; it outlives a processor, so
  a test can "crash" one and start another on the same data.
- `FakeConsumer`: confluent_kafka.Consumer's surface the loop uses, with scripted rebalances.
- `Store` / `MemorySink`: what a sink made durable, and a sink that writes at once, in the
  background (one batch in flight, like the PostgreSQL sink) or buffered (like the lake).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, TopicPartition

from cryptosent.batch import ScoredBatch
from cryptosent.errors import TransientError
from cryptosent.processor.checkpoint import Checkpoint
from cryptosent.processor.dead_letters import DeadLetters
from cryptosent.processor.loop import Processor, ProcessorOptions
from cryptosent.runtime import Backoff, Retry
from cryptosent.sinks.base import Sink, Written
from cryptosent.sinks.offsets import StaleBatch

TOPIC = "tweets"


class Crash(BaseException):
    """The process dies here (not an error any code handles)."""


def tweet(partition: int, offset: int) -> bytes:
    """A valid message; its id says where it was produced."""
    body = {"id": f"p{partition}-{offset}", "text": f"$BTC moon {offset}",
            "created_at": "2026-11-23T10:00:00Z"}  # fmt: skip
    return json.dumps(body).encode()


BAD = b"this is not json"


@dataclass
class FakeMessage:
    """A consumed message."""

    _partition: int
    _offset: int
    _value: bytes | None
    _timestamp: tuple[int, int] = (0, -1)  # (TIMESTAMP_NOT_AVAILABLE, none): the wall clock

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return f"k{self._offset}".encode()

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp


@dataclass
class Broker:
    """One topic's partitions (message values) and the consumer group's committed offsets."""

    partitions: dict[int, list[bytes | None]]
    committed: dict[int, int] = field(default_factory=dict)
    commits: list[dict[int, int]] = field(default_factory=list)

    @classmethod
    def filled(cls, partitions: int, per_partition: int, bad_every: int = 0) -> Broker:
        """partitions x per_partition messages; every bad_every-th one invalid (0 = none)."""
        return cls(
            {
                p: [
                    BAD if bad_every and o % bad_every == bad_every - 1 else tweet(p, o)
                    for o in range(per_partition)
                ]
                for p in range(partitions)
            }
        )

    def valid_ids(self) -> Counter[str]:
        """Every valid message's id, once."""
        return Counter(
            f"p{p}-{o}" for p, values in self.partitions.items()
            for o, value in enumerate(values) if value != BAD
        )  # fmt: skip

    def invalid(self) -> int:
        """How many messages are invalid."""
        return sum(value == BAD for values in self.partitions.values() for value in values)

    def ends(self) -> dict[int, int]:
        """The high watermark of each partition."""
        return {p: len(values) for p, values in self.partitions.items()}


Rebalance = tuple[Literal["revoke", "lost"], list[int]]


class FakeConsumer:
    """A consumer of one group member. `rebalances` maps the number of a consume() call to a
    rebalance before it: ("revoke" or "lost" of the current partitions, the new assignment)."""

    def __init__(
        self,
        broker: Broker,
        assignment: Sequence[int] | None = None,
        rebalances: dict[int, Rebalance] | None = None,
        on_commit: Callable[[dict[int, int]], None] | None = None,
    ) -> None:
        self.broker = broker
        self.initial = list(broker.partitions) if assignment is None else list(assignment)
        self.rebalances = rebalances or {}
        self.on_commit = on_commit
        self.positions: dict[int, int] = {}
        self.calls = 0
        self.callbacks: dict[str, Any] = {}
        self.closed = False

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks

    def _tps(self, partitions: Sequence[int]) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in partitions]

    def consume(self, num_messages: int = 1, timeout: float = 0) -> list[FakeMessage]:
        if self.calls == 0:
            self.callbacks["on_assign"](self, self._tps(self.initial))
        self.calls += 1
        if self.calls in self.rebalances:
            kind, assigned = self.rebalances[self.calls]
            current = self._tps(sorted(self.positions))
            self.callbacks["on_revoke" if kind == "revoke" else "on_lost"](self, current)
            self.positions.clear()
            self.callbacks["on_assign"](self, self._tps(assigned))
        # round robin over the partitions, as fetches from several brokers interleave
        out: list[FakeMessage] = []
        while len(out) < num_messages:
            took = False
            for partition in sorted(self.positions):
                values = self.broker.partitions[partition]
                offset = self.positions[partition]
                if offset < len(values) and len(out) < num_messages:
                    out.append(FakeMessage(partition, offset, values[offset]))
                    self.positions[partition] = offset + 1
                    took = True
            if not took:
                break
        return out

    def assign(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.positions[tp.partition] = 0 if tp.offset == OFFSET_BEGINNING else tp.offset

    def unassign(self) -> None:
        self.positions.clear()

    def seek(self, partition: TopicPartition) -> None:
        offset = partition.offset
        self.positions[partition.partition] = 0 if offset == OFFSET_BEGINNING else offset

    def committed(self, partitions: list[TopicPartition], timeout: float = 0) -> list[Any]:
        stored = self.broker.committed
        return [
            TopicPartition(TOPIC, tp.partition, stored.get(tp.partition, OFFSET_INVALID))
            for tp in partitions
        ]

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        found = {tp.partition: tp.offset for tp in offsets}
        if self.on_commit is not None:
            self.on_commit(found)  # may raise Crash: the process dies before Kafka records it
        self.broker.committed.update(found)
        self.broker.commits.append(found)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, tp.partition, self.positions.get(tp.partition, -1))
                for tp in partitions]  # fmt: skip

    def get_watermark_offsets(self, partition: TopicPartition, **kwargs: Any) -> tuple[int, int]:
        return 0, len(self.broker.partitions[partition.partition])

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Acknowledges everything at once; remembers what was produced."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, list[tuple[str, bytes]]]] = []

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                headers: Any = None, on_delivery: Any = None) -> None:  # fmt: skip
        self.sent.append((topic, value, list(headers or [])))
        if on_delivery is not None:
            on_delivery(None, None)

    def flush(self, timeout: float = 0) -> int:
        return 0


@dataclass
class Store:
    """What one sink made durable (outlives a processor)."""

    rows: list[tuple[int, int, str]] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)

    def ids(self) -> Counter[str]:
        """How often each tweet id was written."""
        return Counter(row_id for _p, _o, row_id in self.rows)


class MemorySink(Sink):
    """A sink over a Store; `mode`: "immediate" writes in add(), "background" keeps one batch in
    flight until the next add/flush (the PostgreSQL sink's shape), "buffered" writes on flush
    (the lake's shape; due once `flush_rows` rows wait). `failures` transient errors come
    first; every write is refused as stale if the store is already past its first offset."""

    def __init__(
        self,
        name: str,
        store: Store,
        *,
        mode: Literal["immediate", "background", "buffered"] = "immediate",
        flush_rows: int = 10**9,
        failures: int = 0,
        sleeps: list[float] | None = None,
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.store = store
        self.mode = mode
        self.flush_rows = flush_rows
        self.failures = failures
        self.sleeps = sleeps if sleeps is not None else []
        self.retry = Retry(Backoff.exponential(0.5, 30.0), sleep=self.sleeps.append)
        self.buffer: list[ScoredBatch] = []
        self.done: list[Written] = []
        self.resumed: list[list[int]] = []
        self.closed = False

    def resume(self, partitions: Sequence[int]) -> dict[int, int]:
        self._complete_in_flight()
        self.resumed.append(list(partitions))
        return {p: self.store.offsets[p] for p in partitions if p in self.store.offsets}

    def add(self, batch: ScoredBatch) -> None:
        if self.mode == "immediate":
            self._write(batch)
        elif self.mode == "background":
            self._complete_in_flight()
            self.buffer = [batch]
        else:
            self.buffer.append(batch)

    def completed(self) -> list[Written]:
        done, self.done = self.done, []
        return done

    def due(self, now: float) -> bool:
        return self.mode == "buffered" and sum(b.size for b in self.buffer) >= self.flush_rows

    def flush(self) -> list[Written]:
        self._complete_in_flight()
        return self.completed()

    def discard(self, partitions: Collection[int]) -> None:
        if self.mode == "background":
            with contextlib.suppress(StaleBatch):
                self._complete_in_flight()  # a write in flight lands (or is refused)
            return
        lost = set(partitions)
        self.buffer = [b.without(lost) for b in self.buffer]

    def close(self) -> None:
        self.closed = True

    def _complete_in_flight(self) -> None:
        pending, self.buffer = self.buffer, []
        for batch in pending:
            self._write(batch)

    def _write(self, batch: ScoredBatch) -> None:
        if not batch.ranges:
            return
        self.retry(self.name, lambda: self._attempt(batch))
        self.done.append(Written(dict(batch.ranges), rows=batch.size, new=batch.size))

    def _attempt(self, batch: ScoredBatch) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError(f"{self.name} is down", service=self.name)
        for partition, (first, _last) in batch.ranges.items():
            stored = self.store.offsets.get(partition, -1)
            if stored > first:
                raise StaleBatch(f"partition {partition}: {self.name} already at {stored}")
        ids = batch.table.column("id").to_pylist()
        parts = batch.table.column("kafka_partition").to_pylist()
        offsets = batch.table.column("kafka_offset").to_pylist()
        self.store.rows += list(zip(parts, offsets, ids, strict=True))
        for partition, (_first, last) in batch.ranges.items():
            self.store.offsets[partition] = last + 1


def processor(
    consumer: FakeConsumer,
    sinks: Sequence[Sink],
    producer: FakeProducer | None = None,
    *,
    batch_size: int = 50,
) -> Processor:
    """A processor over fakes that runs until it has caught up."""
    checkpoint = Checkpoint(sinks, consumer, TOPIC)  # type: ignore[arg-type]
    return Processor(
        consumer=consumer,  # type: ignore[arg-type]
        topic=TOPIC,
        checkpoint=checkpoint,
        dead_letters=DeadLetters(producer or FakeProducer(), f"{TOPIC}.dlq", TOPIC),  # type: ignore[arg-type]
        retry=Retry(Backoff.exponential(0.5, 30.0), sleep=lambda _s: None),
        options=ProcessorOptions(
            batch_size=batch_size, poll_timeout_s=0, until_idle=True, idle_check_s=0
        ),
    )
