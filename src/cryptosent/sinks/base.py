"""The sink contract: where scored batches go, and how each sink says how far it got.

A sink stores the rows of a batch together with the Kafka offsets they came from (in one
transaction, or with an intent log), so that after any crash it can say exactly which offset it
needs next, per partition. The processor's checkpoint (`processor.checkpoint`) owns the rest:
it trims every batch to what each sink still needs, flushes the sinks, and only then commits
Kafka offsets (the lowest any sink needs).

Lifecycle, per member of the consumer group:

    resume(partitions)  when partitions are assigned: clean up after a crashed writer and
                        return the next offset stored for each partition (missing = none yet)
    add(batch)          many times: the batch holds only offsets this sink has not stored
    completed()         after each add: what became durable meanwhile, without waiting
    due(now) / flush()  when the sink wants it, on revocation and at the end: make everything
                        added durable and say what became durable
    discard(partitions) partitions were lost to another member (or a batch was stale):
                        forget what was added for them and is not durable yet
    close()

Adding a sink: a module with a `Sink` subclass and an `open_sink(settings, retry)` function,
plus one line in `sinks.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

from cryptosent.batch import Ranges, ScoredBatch


@dataclass(frozen=True)
class Written:
    """What one write of a sink made durable."""

    ranges: Ranges
    """The offsets it covers (the sink's stored offsets are now past them)."""
    rows: int = 0
    """Tweets in the write."""
    new: int = 0
    """Of them, tweets the sink did not have yet (a known id is skipped)."""
    objects: int = 0
    """Objects or files written (the lake)."""
    seconds: float = 0.0
    """How long the write took."""
    batch: ScoredBatch | None = None
    """The rows written, for metrics (e.g. end-to-end latency)."""


class Sink(ABC):
    """One destination of scored batches; see the module docstring for the lifecycle."""

    name: ClassVar[str]
    """The sink's key in `kafka_offsets` and in logs and metrics ('postgres', 'lake')."""

    @abstractmethod
    def resume(self, partitions: Sequence[int]) -> dict[int, int]:
        """Prepare to receive partitions; the next offset stored for each that has one."""

    @abstractmethod
    def add(self, batch: ScoredBatch) -> None:
        """Take a batch: write it now, in the background, or buffer it until `flush`."""

    def completed(self) -> list[Written]:
        """Writes that finished since the last call, without waiting for one in progress."""
        return []

    def due(self, now: float) -> bool:
        """Whether the sink wants a flush now (a full buffer, an interval passed)."""
        return False

    @abstractmethod
    def flush(self) -> list[Written]:
        """Make everything added durable with its offsets; the writes since the last call."""

    @abstractmethod
    def discard(self, partitions: Collection[int]) -> None:
        """Forget what was added for partitions and is not durable yet (a replay redoes it)."""

    def close(self) -> None:  # noqa: B027 - optional: most sinks hold a connection to close
        """Release connections and threads."""
