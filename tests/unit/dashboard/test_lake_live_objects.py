"""The dashboard's lake mode reads only live objects (compacted ones, not what they replace), and
loads again from a fresh listing when an object vanishes between listing and reading."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cryptosent.batch import SCHEMA
from cryptosent.config import Settings
from cryptosent.dashboard.lake import open_lake_db
from cryptosent.sinks.lake import lake_location
from cryptosent.storage import lake_files
from cryptosent.storage.lake_files import compacted_name, small_name

HOUR = "processed/dt=2026-11-20/hour=01"


def write(root: Path, name: str, ids: list[str]) -> Path:
    rows = [
        {"id": i, "created_at": datetime(2026, 11, 20, 1, n, tzinfo=UTC), "text": "BTC up",
         "coins": ["BTC"], "kafka_partition": 0, "kafka_offset": n}
        for n, i in enumerate(ids)
    ]  # fmt: skip
    path = root / HOUR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return path


def count(root: Path) -> tuple[int, int]:
    db = open_lake_db(Settings(), f"file://{root}")
    row = db.execute("select count(*), count(distinct id) from tweets").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_compacted_objects_replace_the_small_ones(tmp_path: Path) -> None:
    write(tmp_path, small_name("tweets", 0, 0, 1, ".parquet"), ["a", "b"])
    write(tmp_path, small_name("tweets", 0, 2, 2, ".parquet"), ["c"])
    assert count(tmp_path) == (3, 3)
    write(tmp_path, compacted_name("tweets", [(0, 0, 2)], ".parquet"), ["a", "b", "c"])
    assert count(tmp_path) == (3, 3)  # not 6: the small ones are covered
    write(tmp_path, small_name("tweets", 0, 3, 3, ".parquet"), ["d"])  # a late post
    assert count(tmp_path) == (4, 4)


def test_an_object_deleted_after_the_listing_makes_the_load_start_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write(tmp_path, small_name("tweets", 0, 0, 1, ".parquet"), ["a", "b"])
    stale = lake_files.live_objects(lake_location(Settings(), f"file://{tmp_path}"), "processed")
    write(tmp_path, compacted_name("tweets", [(0, 0, 1)], ".parquet"), ["a", "b"])
    small.unlink()  # compaction's delete, between the reader's listing and its read
    listings: list[int] = []
    real = lake_files.live_objects

    def listing(*args: object, **kwargs: object) -> list[str]:
        listings.append(1)
        return stale if len(listings) == 1 else real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("cryptosent.dashboard.lake.live_objects", listing)
    assert count(tmp_path) == (2, 2)
    assert len(listings) == 2
