"""The stored Kafka offsets of every sink (table `kafka_offsets`): per consumer group, topic,
partition and sink, the next offset the sink has not durably written.

A sink moves its offsets inside the same transaction as what it wrote (PostgreSQL) or as the
end of its intent protocol (the lake), through `advance`, which refuses to move backwards: a
member that lost its partitions without noticing (a zombie) cannot overwrite the new owner's
progress. A restarted member seeks to the lowest offset over the sinks, and each sink skips
what it already has, which is what makes a replay after any crash exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cryptosent.errors import CryptosentError
from cryptosent.sinks.database import Connection


class StaleBatch(CryptosentError):
    """Another processor already stored part of this batch (a rebalance raced us).

    Handled by the processor, never shown to a user: it reloads the stored offsets and
    consumes again from there."""


class OffsetStore:
    """Reads and advances the stored offsets of one consumer group on one topic."""

    def __init__(self, group: str, topic: str) -> None:
        self.group = group
        self.topic = topic

    def load(self, conn: Connection, sink: str, partitions: Iterable[int]) -> dict[int, int]:
        """partition -> the sink's next offset, for the partitions that have one."""
        rows = conn.execute(
            "select partition, next_offset from kafka_offsets where consumer_group = %s"
            " and topic = %s and sink = %s and partition = any(%s::integer[])",
            [self.group, self.topic, sink, list(partitions)],
        ).fetchall()
        return {int(str(partition)): int(str(offset)) for partition, offset in rows}

    def advance(self, conn: Connection, sink: str, ranges: Mapping[int, tuple[int, int]]) -> None:
        """Move sink's offsets past ranges in the caller's transaction; StaleBatch if another
        writer got further first (the caller rolls back)."""
        partitions = sorted(ranges)
        with conn.cursor() as cur:
            current: dict[object, object] = dict(
                cur.execute(
                    "select partition, next_offset from kafka_offsets where consumer_group = %s"
                    " and topic = %s and sink = %s and partition = any(%s) for update",
                    [self.group, self.topic, sink, partitions],
                ).fetchall()  # type: ignore[arg-type]
            )
            for partition, (first, _last) in ranges.items():
                stored = current.get(partition)
                if stored is not None and int(str(stored)) > first:
                    raise StaleBatch(
                        f"partition {partition}: {sink} already at offset {stored}, batch starts "
                        f"at {first}"
                    )
            cur.executemany(
                "insert into kafka_offsets (consumer_group, topic, partition, sink, next_offset)"
                " values (%s, %s, %s, %s, %s) on conflict (consumer_group, topic, partition, sink)"
                " do update set next_offset = excluded.next_offset, updated_at = now()",
                [(self.group, self.topic, p, sink, last + 1) for p, (_f, last) in ranges.items()],
            )
