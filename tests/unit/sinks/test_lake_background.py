"""The lake sink's background flush without servers: a full buffer is written off the consuming
thread, at most one flush is in flight, the checkpoint's flush waits for it; and render's
grouping by (partition, hour)."""

from __future__ import annotations

import gzip
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from cryptosent.batch import SCHEMA, ScoredBatch
from cryptosent.runtime import Retry
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
