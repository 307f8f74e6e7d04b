"""Backfill's reads beside a compaction: a day is listed just before it is read, and listed and
read again when an object vanished in between."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cryptosent.batch import SCHEMA
from cryptosent.sinks.lake import open_lake
from cryptosent.storage import backfill
from cryptosent.storage.backfill import ObjectVanished, read_live_day

DAY = date(2026, 1, 2)


def _lake(tmp_path: Path) -> str:
    for day, rows in ((date(2026, 1, 1), 2), (DAY, 3), (date(2026, 1, 3), 4)):
        folder = tmp_path / "lake" / "processed" / f"dt={day}" / "hour=05"
        folder.mkdir(parents=True)
        table = pa.Table.from_pylist(
            [{"id": f"{day}-{i}", "created_at": None, "kafka_offset": i} for i in range(rows)],
            schema=SCHEMA,
        )
        pq.write_table(table, folder / f"tweets-p000-{0:012d}-{rows - 1:012d}.parquet")
    return f"file://{tmp_path / 'lake'}"


def test_a_day_is_read_alone_and_again_after_an_object_vanished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = open_lake(_lake(tmp_path))
    table, size = read_live_day(location, DAY)
    assert table.column("id").to_pylist() == [f"{DAY}-{i}" for i in range(3)] and size > 0

    calls = []
    real = backfill.read_day

    def vanishing(location, objects):  # type: ignore[no-untyped-def]
        calls.append([o.key for o in objects])
        if len(calls) == 1:
            raise ObjectVanished("gone: compacted")
        return real(location, objects)

    monkeypatch.setattr(backfill, "read_day", vanishing)
    table, _ = read_live_day(location, DAY)
    assert table.num_rows == 3 and len(calls) == 2  # listed and read again

    monkeypatch.setattr(backfill, "read_day", lambda *_: (_ for _ in ()).throw(ObjectVanished("x")))
    with pytest.raises(ObjectVanished):
        read_live_day(location, DAY)


def test_a_missing_file_is_reported_as_vanished(tmp_path: Path) -> None:
    location = open_lake(_lake(tmp_path))
    objects = backfill.live_processed(location, DAY, date(2026, 1, 3))
    (tmp_path / "lake" / objects[0].key).unlink()
    with pytest.raises(ObjectVanished):
        backfill.read_day(location, objects)
