"""`cryptosent lake compact` on the local S3 server: killed mid-way and re-run, under a reader
running queries in a loop, while a processor writes the same lake, and after late tweets; every
row is read exactly once at every moment."""

from __future__ import annotations

import gzip
import io
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import Pipeline

from cryptosent.config import Settings
from cryptosent.dashboard.lake import open_lake_db
from cryptosent.sinks.lake import Lake
from cryptosent.storage.compaction import Compactor, committed_offsets
from cryptosent.storage.lake_files import dead, list_layer, live_objects, small_name

COINS = ("BTC", "ETH", "SOL", "DOGE")


def compact(p: Pipeline, *args: str, grace: float = 0.0) -> subprocess.Popen[str]:
    """`cryptosent lake compact ARGS` started in the background with a grace period."""
    env = dict(p.env, CRYPTOSENT_LAKE_COMPACT_GRACE_SECONDS=str(grace))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryptosent", "lake", "compact", "--older-than", "1h", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    p.started.append(proc)
    return proc


def finished(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr
    return stdout


def lake_rows(p: Pipeline) -> tuple[Counter[str], Counter[str]]:
    """Ids of every row in the live processed objects and every line of the live raw objects."""
    location = p._location()
    parquet: Counter[str] = Counter()
    for key in live_objects(location, "processed"):
        parquet.update(pq.read_table(io.BytesIO(p.read_object(key))).column("id").to_pylist())
    raw: Counter[str] = Counter()
    for key in live_objects(location, "raw"):
        for line in gzip.decompress(p.read_object(key)).splitlines():
            raw[json.loads(line)["id"]] += 1
    return parquet, raw


# ---- killed mid-way ------------------------------------------------------------------------------


def test_compaction_killed_mid_way_and_rerun_keeps_every_row_once(pipeline: Pipeline) -> None:
    p = pipeline
    lake = Lake(p._location())
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    expected: Counter[str] = Counter()
    # objects named as the lake sink names them: 3 partitions x 2 hours x 4 flushes
    for partition in range(3):
        for flush in range(4):
            first, last = flush * 50, flush * 50 + 49
            for hour in (start, start + timedelta(hours=1)):
                ids = [f"{hour:%H}-{partition}-{o}" for o in range(first, last + 1)]
                folder = f"dt={hour:%Y-%m-%d}/hour={hour:%H}"
                buf = io.BytesIO()
                pq.write_table(pa.table({"id": ids, "kafka_offset": range(first, last + 1)}), buf)
                name = small_name(p.topic, partition, first, last, "")
                lake.put(f"processed/{folder}/{name}.parquet", buf.getvalue())
                lines = b"".join(json.dumps({"id": i}).encode() + b"\n" for i in ids)
                lake.put(f"raw/{folder}/{name}.jsonl.gz", gzip.compress(lines))
                expected.update(ids)
    with psycopg.connect(p.database_url) as conn:
        for partition in range(3):
            conn.execute(
                "insert into kafka_offsets (consumer_group, topic, partition, sink, next_offset)"
                " values (%s, %s, %s, 'lake', 200)",
                [f"group-{p.topic}", p.topic, partition],
            )
    assert lake_rows(p) == (expected, expected)
    # small targets: several compacted objects per hour; a long grace keeps it between its
    # puts and its deletes for a while, and it is killed there (SIGKILL: no cleanup at all)
    proc = compact(p, "--target-mb", "0.005", grace=60)
    location = p._location()
    deadline = time.monotonic() + 60
    while not any(o.compacted for o in list_layer(location, "raw")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        assert lake_rows(p) == (expected, expected)  # exact while it writes
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert lake_rows(p) == (expected, expected)
    assert dead(list_layer(location, "processed")), "killed before any compacted object"
    # the re-run finishes: leftovers deleted, rows exact, nothing covered remains
    out = finished(compact(p, "--target-mb", "0.005"))
    assert lake_rows(p) == (expected, expected), out
    for layer in ("processed", "raw"):
        objects = list_layer(location, layer)
        assert not dead(objects) and all(o.compacted for o in objects), [o.key for o in objects]
        # merged: fewer objects than the 24 small ones; as few as one when the two hours fall in
        # a closed day (a run between 00:00 and 04:00 UTC), whose hours become day-level objects
        assert 1 <= len(objects) < 24
    again = finished(compact(p, "--target-mb", "0.005"))
    assert again.startswith("merged 0 objects into 0"), again
    assert lake_rows(p) == (expected, expected)


# ---- a reader in a loop, a processor writing, late tweets --------------------------------------


def tweets_file(path: Path, ids: range, hours: list[datetime]) -> list[str]:
    """A JSON Lines file of tweets spread over hours; their ids."""
    lines, names = [], []
    for i in ids:
        created = hours[i % len(hours)] + timedelta(seconds=(i * 7) % 3600)
        names.append(f"c{i}")
        lines.append(
            json.dumps(
                {
                    "id": f"c{i}",
                    "text": f"{COINS[i % 4]} looks strong today #{i}",
                    "created_at": created.isoformat().replace("+00:00", "Z"),
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return names


def scopes(hours: list[datetime], cutoff: datetime) -> int:
    """Compacted objects per layer once every hour is compacted: one per closed day, one per
    closed hour of a day still open."""
    out = set()
    for hour in hours:
        day_end = hour.replace(hour=0) + timedelta(days=1)
        out.add(hour.date() if day_end <= cutoff else hour)
    return len(out)


@pytest.mark.timeout(300)
def test_readers_exact_during_compaction_with_a_processor_writing_and_late_tweets(
    pipeline: Pipeline, settings: Settings, tmp_path: Path
) -> None:
    p = pipeline
    p.env.update(CRYPTOSENT_LAKE_FLUSH_ROWS="150", CRYPTOSENT_BATCH_SIZE="150")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [now - timedelta(hours=h) for h in (5, 4, 3, 2)]
    first = tweets_file(tmp_path / "a.jsonl", range(600), hours)
    assert p.cli("replay", str(tmp_path / "a.jsonl"), "--rate", "max").returncode == 0
    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert lake_rows(p) == (Counter(first), Counter(first))
    small = len(live_objects(p._location(), "processed"))

    # a reader (the dashboard's lake mode) in a loop while compaction runs: exact every time
    proc = compact(p, grace=1.0)
    reads = 0
    while proc.poll() is None or reads < 2:
        db = open_lake_db(settings, p.lake_url)
        assert db.execute("select count(*), count(distinct id) from tweets").fetchone() == (
            len(first), len(first),
        )  # fmt: skip
        db.close()
        reads += 1
    out = finished(proc)
    processed = live_objects(p._location(), "processed")
    assert len(processed) == scopes(hours, datetime.now(UTC) - timedelta(hours=1)) < small, out
    assert lake_rows(p) == (Counter(first), Counter(first))

    # late tweets for the compacted hours (and the processor writing them) while compaction runs
    # again and again: nothing lost, nothing doubled, then folded into the same few objects
    late = tweets_file(tmp_path / "b.jsonl", range(600, 1200), hours)
    assert p.cli("replay", str(tmp_path / "b.jsonl"), "--rate", "max").returncode == 0
    processor = p.start("process", "--until-idle")
    group = f"group-{p.topic}"
    compactor = Compactor(
        p._location(),
        lambda: committed_offsets(p.database_url, [group, f"{group}.prices"]),
        grace_seconds=0,
    )
    runs = merged = beside = 0
    while processor.poll() is None or runs < 1:
        report = compactor.run(timedelta(hours=1))
        parquet, raw = lake_rows(p)
        assert set(parquet.values()) <= {1} and set(raw.values()) <= {1}
        assert set(first) <= parquet.keys() and set(first) <= raw.keys()
        runs += 1
        merged += report.written
        beside += report.written if processor.poll() is None else 0
        time.sleep(0.3)
    assert merged >= 2, "the late objects were never merged"
    assert processor.wait(timeout=120) == 0, processor.communicate()
    print(f"{runs} compactions, {merged} objects written, {beside} while the processor ran")
    everything = Counter(first + late)
    assert lake_rows(p) == (everything, everything)
    compactor.run(timedelta(hours=1))
    assert lake_rows(p) == (everything, everything)
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    for layer in ("processed", "raw"):
        assert len(live_objects(p._location(), layer)) == scopes(hours, cutoff), layer
    assert p.scalar("select count(*) from tweets") == len(everything)
