"""Lake compaction on a demo-like lake: objects per day and layer before and after, and the cost.

Run: ``nice .venv/bin/python benchmarks/lake_compaction.py [--hours 6] [--rate 2000]
[--lake-url file:///tmp/lake-compaction-bench | s3://cryptosent/bench-compaction]`` (numbers go
to docs/storage.md by hand; an S3 URL uses the configured endpoint and keys).

The lake is written the way the processor writes it during `make demo`: ``--rate`` mock tweets
a minute (scored once by the real analyzers, then re-stamped), 6 partitions, one flush a minute
(`CRYPTOSENT_LAKE_FLUSH_SECONDS=60`) through the lake sink's own `render`. Then, as
`cryptosent lake compact --older-than 2h` would: (1) the hours are compacted while their day is
open, (2) the closed day is compacted into day-level objects. Each step reports the live objects
per layer, wall and CPU seconds (this process), and the rows read back from the live objects
(must equal the rows written, every id once).
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from cryptosent.analysis.sentiment import get_analyzer
from cryptosent.batch import ScoredBatch
from cryptosent.config import Settings
from cryptosent.model import encode_tweet
from cryptosent.processor.transform import score_tweets
from cryptosent.sinks.lake import Lake, LakeBuffer, lake_location, render
from cryptosent.sources.mock import MockGenerator
from cryptosent.storage.compaction import Compactor, Report
from cryptosent.storage.lake_files import live_objects

PARTITIONS = 6
POOL = 12_000
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def write_lake(lake: Lake, hours: int, rate: int) -> tuple[int, dict[tuple[str, int], int]]:
    """hours of a demo at rate tweets a minute, one flush a minute; rows, next offsets."""
    pool = MockGenerator(seed=7).tweets(POOL)
    default = get_analyzer("learned")
    table = score_tweets(pool, [0] * POOL, list(range(POOL)), default, get_analyzer("vader"))
    raw = [encode_tweet(t) for t in pool]
    offsets = [0] * PARTITIONS
    rows = 0
    for minute in range(hours * 60):
        start = (minute * rate) % POOL
        index = pa.array([(start + i) % POOL for i in range(rate)], pa.int64())
        part = table.take(index)
        partitions = [i % PARTITIONS for i in range(rate)]
        own = []
        ranges: dict[int, tuple[int, int]] = {}
        for p in partitions:
            own.append(offsets[p])
            ranges[p] = (ranges.get(p, (offsets[p], 0))[0], offsets[p])
            offsets[p] += 1
        stamp = DAY + timedelta(minutes=minute)
        created = [stamp + timedelta(seconds=60 * i / rate) for i in range(rate)]
        part = part.set_column(part.schema.get_field_index("id"), "id",
                               pa.array([f"{minute}-{i}" for i in range(rate)]))  # fmt: skip
        for name, values in (
            ("created_at", pa.array(created, part.schema.field("created_at").type)),
            ("kafka_partition", pa.array(partitions, pa.int32())),
            ("kafka_offset", pa.array(own, pa.int64())),
        ):
            part = part.set_column(part.schema.get_field_index(name), name, values)
        buffer = LakeBuffer()
        buffer.add(ScoredBatch(part, [raw[i] for i in index.to_pylist()], ranges))
        lake.put_all(render(buffer, "tweets").blobs)
        rows += rate
    return rows, {("tweets", p): offsets[p] for p in range(PARTITIONS)}


def check(lake: Lake, rows: int) -> str:
    keys = live_objects(lake.location, "processed")
    paths = [f"{lake.location.base}/{k}" for k in keys]
    table = pads.dataset(paths, format="parquet", filesystem=lake.location.fs).to_table(
        columns=["id"]
    )
    distinct = pc.count_distinct(table.column("id")).as_py()
    assert table.num_rows == rows == distinct, (table.num_rows, rows, distinct)
    return f"{table.num_rows:,} rows read back, {distinct:,} distinct ids"


def show(step: str, report: Report, rows: int) -> None:
    for (layer, day), before in sorted(report.before.items()):
        after = report.after.get((layer, day), 0)
        print(f"  {step}: {layer}/dt={day}: {before:,} -> {after:,} live objects")
    per_mcpu = rows / max(report.cpu_seconds, 1e-9) / 1e6
    print(
        f"  {step}: {report.written} objects written ({report.bytes_in / 2**20:.1f} MiB in, "
        f"{report.bytes_out / 2**20:.1f} MiB out), {report.deleted:,} deleted; "
        f"{report.seconds:.1f} s wall, {report.cpu_seconds:.1f} CPU s "
        f"({per_mcpu:.2f} M rows per CPU second)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--rate", type=int, default=2000, help="tweets a minute")
    parser.add_argument("--lake-url", default="file:///tmp/lake-compaction-bench")
    args = parser.parse_args()
    assert args.hours <= 22, "the hours must end 2 h before the day does (step 1)"
    location = lake_location(Settings(), args.lake_url)  # S3: the stack's endpoint and keys
    if location.local:
        shutil.rmtree(location.base, ignore_errors=True)
    else:
        for _attempt in range(3):  # versitygw refuses a folder before its objects are gone
            try:
                location.fs.delete_dir_contents(location.base, missing_dir_ok=True)
                break
            except OSError:
                continue
    lake = Lake(location)
    cpu, wall = time.process_time(), time.monotonic()
    rows, committed = write_lake(lake, args.hours, args.rate)
    print(f"wrote {rows:,} rows in {time.monotonic() - wall:.0f} s "
          f"({time.process_time() - cpu:.0f} CPU s)")  # fmt: skip
    # step 1: the hours closed 2 h ago, the day still open
    clock = DAY + timedelta(hours=args.hours + 2)
    hours = Compactor(location, lambda: committed, grace_seconds=0, clock=lambda: clock)
    show("hours", hours.run(timedelta(hours=2)), rows)
    print("  hours:", check(lake, rows))
    # step 2: the day closed
    clock = DAY + timedelta(days=1, hours=2)
    day = Compactor(location, lambda: committed, grace_seconds=0, clock=lambda: clock)
    show("day", day.run(timedelta(hours=2)), rows)
    print("  day:", check(lake, rows))


if __name__ == "__main__":
    main()
