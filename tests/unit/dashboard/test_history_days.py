"""The history view's days without servers: a local lake, a day whose object vanished between
listing and reading (a compaction) is listed and read again."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cryptosent.batch import SCHEMA
from cryptosent.dashboard.history import DayAggregates
from cryptosent.sinks.lake import open_lake
from cryptosent.storage.backfill import ObjectVanished

FIRST = date(2026, 1, 1)


def _lake(tmp_path: Path) -> str:
    for n in range(3):
        day = FIRST + timedelta(days=n)
        folder = tmp_path / "lake" / "processed" / f"dt={day}" / "hour=05"
        folder.mkdir(parents=True)
        at = datetime.combine(day, time(5), tzinfo=UTC)
        rows = [
            {"id": f"{day}-{i}", "created_at": at, "coins": ["BTC"], "compound": 0.5,
             "label": "positive", "vader_compound": 0.5, "vader_label": "positive",
             "kafka_partition": 0, "kafka_offset": i}
            for i in range(n + 2)
        ]  # fmt: skip
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        pq.write_table(table, folder / f"tweets-p000-{0:012d}-{n + 1:012d}.parquet")
    return f"file://{tmp_path / 'lake'}"


def test_a_vanished_object_makes_its_day_listed_and_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = DayAggregates(open_lake(_lake(tmp_path)))
    calls = []
    real = DayAggregates._read

    def vanishing(self, objects):  # type: ignore[no-untyped-def]
        calls.append(len(objects))
        if len(calls) == 1:
            raise ObjectVanished("gone: compacted")
        return real(self, objects)

    monkeypatch.setattr(DayAggregates, "_read", vanishing)
    frame = view.frame(3, today=FIRST + timedelta(days=2))
    every = frame[frame["coin"] == "*"]
    assert every["tweets"].tolist() == [2, 3, 4]
    assert frame[frame["coin"] == "BTC"]["positive"].tolist() == [2, 3, 4]
    assert len(calls) == 4 and (view.last.days, view.last.computed) == (3, 3)
