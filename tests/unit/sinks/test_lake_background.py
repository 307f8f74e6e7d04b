"""The lake sink's background flush without servers: a full buffer is written off the consuming
thread, at most one flush is in flight, the checkpoint's flush waits for it; and render's
grouping by (partition, hour)."""

from __future__ import annotations

import gzip
import io
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from unittest.mock import patch

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cryptosent.batch import SCHEMA, ScoredBatch
from cryptosent.runtime import Retry
from cryptosent.sinks import lake
from cryptosent.sinks.base import Written
from cryptosent.sinks.lake import LakeBuffer, LakeSink, hour_groups, render
from cryptosent.sinks.offsets import OffsetStore

T0 = datetime(2026, 11, 23, 10, 59, 58, tzinfo=UTC)


def batch(rows: list[tuple[int, int]], seconds: int = 0, raw: bytes = b"{}") -> ScoredBatch:
    """One tweet per (partition, offset), created `seconds` after T0."""
    created = T0 + timedelta(seconds=seconds)
    table = pa.Table.from_pylist(
        [{"id": f"p{p}-{o}", "created_at": created, "text": "x", "coins": [],
          "kafka_partition": p, "kafka_offset": o} for p, o in rows],
        schema=SCHEMA,
    )  # fmt: skip
    ranges: dict[int, tuple[int, int]] = {}
    for p, o in rows:
        ranges[p] = (ranges.get(p, (o, o))[0], o)
    return ScoredBatch(table, [raw] * len(rows), ranges)


class HeldSink(LakeSink):
    """A lake sink whose writes record the ranges they got and wait for `release`."""

    def __init__(self) -> None:
        retry = cast(Retry, lambda _what, action: action())
        super().__init__(
            cast(Any, None), cast(Any, None), OffsetStore("g", "t"), retry,
            flush_rows=3, flush_interval_s=3600.0, clock=lambda: 0.0,
        )  # fmt: skip
        self.release = threading.Event()
        self.writes: list[dict[int, tuple[int, int]]] = []

    def write(self, buffer: LakeBuffer) -> list[Written]:
        assert self.release.wait(10)
        self.writes.append(dict(buffer.ranges))
        return [Written(dict(buffer.ranges), rows=buffer.rows)]


def stop(sink: LakeSink) -> None:
    """End the writer thread (the sink has no connection to close)."""
    if sink._writer is not None:
        sink._writer.shutdown(wait=True)


def test_a_full_buffer_is_written_in_the_background_and_the_flush_waits_for_it() -> None:
    sink = HeldSink()
    sink.add(batch([(0, 0), (1, 0)]))
    assert sink._pending is None and sink.buffer.rows == 2
    sink.add(batch([(0, 1), (1, 1)]))  # 4 rows >= 3: off to the writer thread, add returns
    assert sink._pending is not None and sink.buffer.empty
    assert sink.completed() == []  # still held
    sink.add(batch([(2, 5)]))
    sink.release.set()
    sink._pending.result(timeout=10)
    assert sink.due(0.0)  # a finished flush nobody collected asks for the checkpoint's flush
    assert [w.ranges for w in sink.completed()] == [{0: (0, 1), 1: (0, 1)}]
    assert [w.ranges for w in sink.flush()] == [{2: (5, 5)}]
    assert sink.writes == [{0: (0, 1), 1: (0, 1)}, {2: (5, 5)}]
    stop(sink)


def test_a_second_full_buffer_waits_for_the_flush_in_flight() -> None:
    sink = HeldSink()
    sink.add(batch([(0, 0), (0, 1), (0, 2)]))
    second = threading.Thread(target=sink.add, args=(batch([(0, 3), (0, 4), (0, 5)]),))
    second.start()
    second.join(0.3)
    assert second.is_alive() and sink.writes == []  # held behind the first flush
    sink.release.set()
    second.join(10)
    assert not second.is_alive()
    assert [w.ranges for w in sink.flush()] == [{0: (0, 2)}, {0: (3, 5)}]
    stop(sink)


def test_render_groups_by_partition_and_hour_keeping_row_order() -> None:
    buffer = LakeBuffer()
    buffer.add(batch([(3, 10), (1, 4)], seconds=5))  # 11:00
    buffer.add(batch([(3, 11), (1, 5)], seconds=0, raw=b'{"a":\n1}'))  # 10:59
    buffer.add(batch([(1, 6), (3, 12)], seconds=7))  # 11:00
    blobs = render(buffer, "tweets").blobs
    raw = [k for k in blobs if k.startswith("raw/")]
    assert raw == [
        "raw/dt=2026-11-23/hour=10/tweets-p001-000000000004-000000000006.jsonl.gz",
        "raw/dt=2026-11-23/hour=11/tweets-p001-000000000004-000000000006.jsonl.gz",
        "raw/dt=2026-11-23/hour=10/tweets-p003-000000000010-000000000012.jsonl.gz",
        "raw/dt=2026-11-23/hour=11/tweets-p003-000000000010-000000000012.jsonl.gz",
    ]
    assert gzip.decompress(blobs[raw[0]]) == b'{"a": 1}\n'  # one message a line
    assert gzip.decompress(blobs[raw[1]]) == b"{}\n{}\n"


def test_hour_folders_are_arrows_strftime_from_year_1_to_9999() -> None:
    instants = [
        datetime(1, 1, 1, tzinfo=UTC), datetime(5, 4, 19, 9, 30, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 23, 14, 0, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    ]  # fmt: skip
    column = pa.chunked_array([pa.array(instants, pa.timestamp("us", tz="UTC"))])
    order, groups = hour_groups(pa.chunked_array([pa.array([0] * 6, pa.int32())]), column)
    expected = pc.strftime(column, format="dt=%Y-%m-%d/hour=%H").to_pylist()
    assert order.tolist() == [0, 1, 2, 3, 4, 5]
    assert [(group, start, end) for group, start, end in groups] == [
        ((0, name), i, i + 1) for i, name in enumerate(expected)
    ]
    assert expected[1] == "dt=0005-04-19/hour=09" and expected[2] == "dt=1969-12-31/hour=23"


def test_group_runs_are_the_groups_rows_as_consecutive_row_numbers() -> None:
    # rows 0-2 and 6-7 of partition 0, rows 3-5 of partition 1; 8-9 of partition 0 an hour on
    order = np.array([0, 1, 2, 6, 7, 8, 9, 3, 4, 5])
    groups = [(0, 5), (5, 7), (7, 10)]
    assert lake.group_runs(order, groups) is None  # 4 runs in 10 rows: too short to slice
    with patch.object(lake, "_MIN_RUN", 1):
        assert lake.group_runs(order, groups) == [[(0, 3), (6, 2)], [(8, 2)], [(3, 3)]]


def test_render_by_runs_writes_what_render_by_take_writes() -> None:
    buffer = LakeBuffer()
    raws = iter(f'{{"n":{n}}}'.encode() for n in range(10_000))
    for first in range(0, 400, 100):  # each batch: 25 rows of partition 2, then 25 of 1
        for seconds in (0, 5):  # 10:59 then 11:00
            rows = [(2, first + seconds + k) for k in range(25)]
            rows += [(1, first + seconds + k) for k in range(25)]
            buffer.add(batch(rows, seconds, raw=b""))
            buffer.raw[-50:] = [next(raws) for _ in range(50)]
    with patch.object(lake, "_MIN_RUN", 10):
        runs = lake.group_runs(*_order(buffer))
        by_runs = render(buffer, "tweets").blobs
    with patch.object(lake, "_MIN_RUN", 10**9):
        by_take = render(buffer, "tweets").blobs
    assert runs is not None and sum(map(len, runs)) == 16  # 4 groups of 4 runs: sliced
    assert list(by_runs) == list(by_take) and len(by_runs) == 8
    for key, blob in by_runs.items():
        if key.endswith(".parquet"):
            got = pq.read_table(io.BytesIO(blob))
            assert got.equals(pq.read_table(io.BytesIO(by_take[key])))
            assert got.num_rows == 100 and got.column("kafka_offset").to_pylist() == sorted(
                got.column("kafka_offset").to_pylist()
            )
        else:
            assert gzip.decompress(blob) == gzip.decompress(by_take[key])
            assert gzip.decompress(blob).count(b"\n") == 100


def _order(buffer: LakeBuffer) -> tuple[Any, list[tuple[int, int]]]:
    table = pa.concat_tables(buffer.tables)
    order, groups = hour_groups(table.column("kafka_partition"), table.column("created_at"))
    return order, [(start, end) for _, start, end in groups]
