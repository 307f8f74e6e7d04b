"""The unit the processor hands to every sink: a batch of scored tweets as one Arrow table in
the `tweets` column order, their exact received bytes, and the Kafka offsets the batch covers.

`SCHEMA` is the storage schema of a stored tweet, shared by PostgreSQL's COPY, the lake's
Parquet files and the dashboard's lake mode. Importing this module does no work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

Ranges = dict[int, tuple[int, int]]
"""partition -> (first offset, last offset), both included."""
_RowTest = Callable[[int, int], bool]
Revision = tuple[str, bool, str | None]
"""(id, spam, campaign_id): new flags of a tweet stored by an earlier batch."""

# The `tweets` columns, in table order (PostgreSQL's COPY and the Parquet files share it).
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("text", pa.string()),
        ("author_id", pa.string()),
        ("author_username", pa.string()),
        ("author_followers", pa.int64()),
        ("author_verified", pa.bool_()),
        ("lang", pa.string()),
        ("source", pa.string()),
        ("retweet_of", pa.string()),
        ("reply_to", pa.string()),
        ("compound", pa.float64()),
        ("pos", pa.float64()),
        ("neu", pa.float64()),
        ("neg", pa.float64()),
        ("label", pa.string()),
        ("confidence", pa.float64()),
        ("vader_compound", pa.float64()),
        ("vader_pos", pa.float64()),
        ("vader_neu", pa.float64()),
        ("vader_neg", pa.float64()),
        ("vader_label", pa.string()),
        ("coins", pa.list_(pa.string())),
        ("spam", pa.bool_()),
        ("campaign_id", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)


@dataclass
class ScoredBatch:
    """Valid tweets of one consumed batch, scored, with their exact received bytes."""

    table: pa.Table
    raw: list[bytes]
    # partition -> (first offset, last offset) of every message consumed, valid or not
    ranges: Ranges = field(default_factory=dict)
    # flags of earlier tweets that this batch revised (docs/campaigns.md); not per partition
    revisions: list[Revision] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Number of valid tweets."""
        return int(self.table.num_rows)

    def since(self, next_offsets: Mapping[int, int]) -> ScoredBatch:
        """The part of the batch at or after next_offsets (per partition; a partition missing
        from it is needed whole): what a sink that stored up to there still needs."""
        ranges: Ranges = {}
        trimmed = False
        for partition, (first, last) in self.ranges.items():
            need = next_offsets.get(partition, -1)
            if last < need:
                trimmed = True
                continue
            if first < need:
                trimmed = True
                first = need
            ranges[partition] = (first, last)
        if not trimmed:
            return self
        return self._where(
            lambda partition, offset: offset >= next_offsets.get(partition, -1), ranges
        )

    def without(self, partitions: set[int]) -> ScoredBatch:
        """The batch without the rows and ranges of partitions."""
        ranges = {p: r for p, r in self.ranges.items() if p not in partitions}
        return self._where(lambda partition, _offset: partition not in partitions, ranges)

    def _where(self, keep_row: _RowTest, ranges: Ranges) -> ScoredBatch:
        import pyarrow.compute as pc

        table = self.table
        mask = [
            keep_row(partition, offset)
            for partition, offset in zip(
                table.column("kafka_partition").to_pylist(),
                table.column("kafka_offset").to_pylist(),
                strict=True,
            )
        ]
        keep = pc.indices_nonzero(pa.array(mask, pa.bool_()))
        raw = [self.raw[i] for i in keep.to_pylist()]
        return ScoredBatch(table.take(keep), raw, ranges, self.revisions)


def empty_table() -> pa.Table:
    """A table with the `tweets` columns and no rows."""
    return pa.Table.from_pylist([], schema=SCHEMA)
