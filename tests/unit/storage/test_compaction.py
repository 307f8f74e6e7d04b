"""Lake compaction on a local folder: hours and days merged with every row exactly once, raw bytes
kept, objects of unfinished writes left alone, a killed run finished by the next one."""

from __future__ import annotations

import gzip
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cryptosent.sinks.lake import Lake, open_lake
from cryptosent.storage.compaction import Compactor, Merge
from cryptosent.storage.lake_files import live_objects, small_name

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
TOPIC = "tweets"


class Writer:
    """Writes lake objects the way the lake sink names them (one Parquet, one raw per range)."""

    def __init__(self, root: Path) -> None:
        self.location = open_lake(f"file://{root}")
        self.lake = Lake(self.location)
        self.expected: Counter[tuple[int, int]] = Counter()

    def flush(
        self, hour: datetime, partition: int, first: int, last: int, schema: str = "a"
    ) -> None:
        offsets = list(range(first, last + 1))
        folder = f"dt={hour:%Y-%m-%d}/hour={hour:%H}"
        columns: dict[str, list[object]] = {
            "id": [f"t{partition}-{o}" for o in offsets],
            "created_at": [hour + timedelta(seconds=o % 3600) for o in offsets],
            "kafka_partition": [partition] * len(offsets),
            "kafka_offset": list(offsets),
        }
        if schema == "b":
            columns["extra"] = ["x"] * len(offsets)
        buf = io.BytesIO()
        pq.write_table(pa.table(columns), buf, compression="zstd")
        self.lake.put(
            f"processed/{folder}/{small_name(TOPIC, partition, first, last, '.parquet')}",
            buf.getvalue(),
        )
        lines = b"".join(b'{"id": "t%d-%d"}\n' % (partition, o) for o in offsets)
        raw = gzip.compress(lines, mtime=0)
        self.lake.put(f"raw/{folder}/{small_name(TOPIC, partition, first, last, '.jsonl.gz')}", raw)
        self.expected.update((partition, o) for o in offsets)

    def rows(self, layer: str = "processed") -> Counter[tuple[int, int]]:
        """(partition, offset) of every row in the live objects of a layer."""
        found: Counter[tuple[int, int]] = Counter()
        for key in live_objects(self.location, layer):
            path = f"{self.location.base}/{key}"
            if layer == "raw":
                with open(path, "rb") as f:
                    for line in gzip.decompress(f.read()).splitlines():
                        p, o = line.split(b'"t')[1].split(b'"')[0].split(b"-")
                        found[(int(p), int(o))] += 1
            else:
                table = pq.read_table(path)
                found.update(
                    zip(
                        table["kafka_partition"].to_pylist(),
                        table["kafka_offset"].to_pylist(),
                        strict=True,
                    )
                )
        return found

    def compactor(self, committed: dict[tuple[str, int], int], **options: object) -> Compactor:
        return Compactor(
            self.location, lambda: committed, grace_seconds=0, sleep=lambda _s: None,
            clock=lambda: NOW, **options,  # type: ignore[arg-type]
        )  # fmt: skip


@pytest.fixture
def lake(tmp_path: Path) -> Writer:
    return Writer(tmp_path / "lake")


H8 = datetime(2026, 11, 25, 8, tzinfo=UTC)
H9 = datetime(2026, 11, 25, 9, tzinfo=UTC)
H12 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_closed_hours_become_one_object_per_layer_and_rows_stay_exact(lake: Writer) -> None:
    for n in range(4):
        for p in (0, 1):
            lake.flush(H8, p, n * 10, n * 10 + 9)
            lake.flush(H9, p, n * 10, n * 10 + 9)  # the same flushes' rows of the next hour
            lake.flush(H12, p, n * 10, n * 10 + 9)  # the hour still open
    before = {layer: len(live_objects(lake.location, layer)) for layer in ("processed", "raw")}
    report = lake.compactor({(TOPIC, 0): 40, (TOPIC, 1): 40}).run(timedelta(hours=2))
    assert before == {"processed": 24, "raw": 24}
    assert report.written == 4 and report.deleted == 32  # 8 + 8 objects in each of 2 layers
    processed = live_objects(lake.location, "processed")
    assert [k.split("/")[2] for k in processed] == ["hour=08", "hour=09"] + ["hour=12"] * 8
    assert processed[0].endswith(
        "tweets-c-p000.000000000000-000000000039_p001.000000000000-000000000039.parquet"
    )
    # each flush's rows are in both hour 8 and 9 (as the sink writes them): 3 copies in all
    assert lake.rows("processed") == lake.rows("raw")
    assert set(lake.rows("processed").values()) == {3}
    assert report.rows == 2 * 80
    # idempotent: nothing left to do
    again = lake.compactor({(TOPIC, 0): 40, (TOPIC, 1): 40}).run(timedelta(hours=2))
    assert (again.written, again.deleted, again.merges) == (0, 0, [])


def test_uncommitted_objects_are_not_merged(lake: Writer) -> None:
    for n in range(3):
        lake.flush(H8, 0, n * 10, n * 10 + 9)
    lake.flush(H8, 1, 0, 9)
    lake.flush(H8, 1, 10, 19)
    # partition 0's last object (20-29) is not committed yet; partition 1 has no offsets at all
    lake.compactor({(TOPIC, 0): 25}).run(timedelta(hours=2))
    names = sorted(k.rsplit("/", 1)[1] for k in live_objects(lake.location, "processed"))
    assert names == [
        "tweets-c-p000.000000000000-000000000019.parquet",
        "tweets-p000-000000000020-000000000029.parquet",
        "tweets-p001-000000000000-000000000009.parquet",
        "tweets-p001-000000000010-000000000019.parquet",
    ]
    assert lake.rows() == lake.expected


def test_closed_day_becomes_a_handful_of_objects_with_late_rows_folded_in(lake: Writer) -> None:
    day = datetime(2026, 11, 23, tzinfo=UTC)
    offset = 0
    for hour in range(24):
        for p in range(3):
            lake.flush(day + timedelta(hours=hour), p, offset, offset + 4)
        offset += 5
    committed = {(TOPIC, p): offset for p in range(3)}
    lake.compactor(committed).run(timedelta(hours=2))
    keys = live_objects(lake.location, "processed")
    assert len(keys) == 1 and keys[0].startswith("processed/dt=2026-11-23/tweets-c-p000.")
    assert lake.rows() == lake.expected == lake.rows("raw")
    # a late post for that day: live as a small object, then folded into a new day object
    lake.flush(day + timedelta(hours=5), 1, offset, offset)
    assert lake.rows() == lake.expected
    committed[(TOPIC, 1)] = offset + 1
    lake.compactor(committed).run(timedelta(hours=2))
    assert len(live_objects(lake.location, "processed")) == 1
    assert lake.rows() == lake.expected == lake.rows("raw")
    # nothing else is left in the day's folders (the replaced objects are deleted)
    assert len(list(Path(lake.location.base, "processed/dt=2026-11-23").rglob("*.parquet"))) == 1


def test_target_size_splits_without_separating_a_flush_across_hours(lake: Writer) -> None:
    day = datetime(2026, 11, 23, tzinfo=UTC)
    for n in range(20):
        lake.flush(day + timedelta(hours=n % 2), 0, n * 100, n * 100 + 99)
        lake.flush(day + timedelta(hours=n % 2 + 2), 0, n * 100, n * 100 + 99)
    size = sum(p.stat().st_size for p in Path(lake.location.base, "processed").rglob("*.parquet"))
    compactor = lake.compactor({(TOPIC, 0): 2000}, target_bytes=size // 4)
    report = compactor.run(timedelta(hours=2))
    day_objects = live_objects(lake.location, "processed")
    assert 3 <= len(day_objects) <= 6 and report.written >= len(day_objects), day_objects
    assert not report.skipped
    assert lake.rows() == lake.expected == lake.rows("raw")


def test_a_killed_run_leaves_rows_exact_and_the_next_run_finishes(lake: Writer) -> None:
    for n in range(5):
        for p in (0, 1):
            lake.flush(H8, p, n * 10, n * 10 + 9)
            lake.flush(H9, p, n * 10, n * 10 + 9)
    committed = {(TOPIC, 0): 50, (TOPIC, 1): 50}
    puts: list[Merge] = []

    def kill_after_second_put(merge: Merge) -> None:
        puts.append(merge)
        assert lake.rows() == lake.rows("raw")  # readers are exact between puts too
        if len(puts) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lake.compactor(committed, after_put=kill_after_second_put).run(timedelta(hours=2))
    assert set(lake.rows().values()) == {2} and lake.rows().keys() == lake.expected.keys()
    report = lake.compactor(committed).run(timedelta(hours=2))
    assert report.written == 2 and report.deleted == 40
    assert len(live_objects(lake.location, "processed")) == 2
    assert set(lake.rows().values()) == {2} and lake.rows() == lake.rows("raw")


def test_objects_of_another_schema_are_left_alone(lake: Writer) -> None:
    lake.flush(H8, 0, 0, 9)
    lake.flush(H8, 0, 10, 19)
    lake.flush(H8, 0, 20, 29, schema="b")
    report = lake.compactor({(TOPIC, 0): 30}, layers=["processed"]).run(timedelta(hours=2))
    assert report.written == 0 and len(report.skipped) == 1 and "schema" in report.skipped[0]
    assert lake.rows() == lake.expected


def test_dry_run_writes_nothing(lake: Writer) -> None:
    lake.flush(H8, 0, 0, 9)
    lake.flush(H8, 0, 10, 19)
    report = lake.compactor({(TOPIC, 0): 20}).run(timedelta(hours=2), dry_run=True)
    assert len(report.merges) == 2 and report.written == 0
    assert len(live_objects(lake.location, "processed")) == 2


def test_many_partitions_make_names_a_filesystem_accepts(lake: Writer) -> None:
    for p in range(20):
        lake.flush(H8, p, 0, 4)
        lake.flush(H8, p, 5, 9)
    report = lake.compactor({(TOPIC, p): 10 for p in range(20)}).run(timedelta(hours=2))
    names = [k.rsplit("/", 1)[1] for k in live_objects(lake.location, "processed")]
    assert 3 <= len(names) <= 5 and all(len(n) <= 255 for n in names), names
    assert not report.skipped and lake.rows() == lake.expected == lake.rows("raw")


def test_prices_layer_is_compacted_with_the_prices_topics_offsets(lake: Writer) -> None:
    offsets = []
    for n in range(4):
        buf = io.BytesIO()
        pq.write_table(pa.table({"coin": ["BTC", "ETH"], "kafka_offset": [2 * n, 2 * n + 1]}), buf)
        name = small_name("prices", 0, 2 * n, 2 * n + 1, ".parquet")
        lake.lake.put(f"prices/dt=2026-11-25/hour=08/{name}", buf.getvalue())
        offsets += [2 * n, 2 * n + 1]
    # the tweets topic's offsets allow nothing here: prices go by the prices topic's
    lake.compactor({(TOPIC, 0): 100, ("prices", 0): 6}).run(timedelta(hours=2))
    keys = live_objects(lake.location, "prices")
    assert [k.rsplit("/", 1)[1] for k in keys] == [
        "prices-c-p000.000000000000-000000000005.parquet",
        "prices-p000-000000000006-000000000007.parquet",
    ]
    read = [
        o
        for k in keys
        for o in pq.read_table(f"{lake.location.base}/{k}")["kafka_offset"].to_pylist()
    ]
    assert sorted(read) == offsets
