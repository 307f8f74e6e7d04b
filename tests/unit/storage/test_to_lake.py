"""Replay to the lake without servers: a local folder lake, fixed windows, keys and finality."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptosent.config import Settings
from cryptosent.dashboard.history import DayAggregates
from cryptosent.model import encode_tweet
from cryptosent.sinks.lake import Lake, open_lake
from cryptosent.sources.mock import MockGenerator
from cryptosent.storage.backfill import read_live_day
from cryptosent.storage.compaction import Compactor
from cryptosent.storage.lake_files import list_layer
from cryptosent.storage.to_lake import archive_topic, load_archive


def test_archive_topic_is_a_safe_lower_case_stem() -> None:
    assert archive_topic(Path("/x/History-2026 Q1.jsonl.gz")) == "archive.history_2026_q1"
    assert archive_topic(Path("tweets.csv")) == "archive.tweets"
    assert archive_topic(Path("---.jsonl")) == "archive.archive"


def test_windows_name_their_whole_range_and_only_full_ones_are_final(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsonl"
    tweets = MockGenerator(seed=3).read(1000)
    archive.write_bytes(b"".join(encode_tweet(t) + b"\n" for t in tweets))
    location = open_lake(f"file://{tmp_path / 'lake'}")
    stats = load_archive(archive, Lake(location), Settings(), chunk_rows=400)
    assert (stats.tweets, stats.refused, stats.complete_before) == (1000, 0, 800)
    objects = list_layer(location, "processed")
    assert {o.ranges for o in objects} == {((0, 0, 399),), ((0, 400, 799),), ((0, 800, 1199),)}
    assert {o.topic for o in objects} == {"archive.a"}
    assert sum(1 for _ in list_layer(location, "raw")) == len(objects)


def test_compacted_archive_objects_are_read_once_even_after_a_reload(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=43)
    archive = tmp_path / "a.jsonl"
    tweets = MockGenerator(seed=4).read(1000)
    for i, tweet in enumerate(tweets):
        tweet.created_at = start + i * timedelta(days=3) / 1000
    archive.write_bytes(b"".join(encode_tweet(t) + b"\n" for t in tweets))
    location = open_lake(f"file://{tmp_path / 'lake'}")
    stats = load_archive(archive, Lake(location), Settings(), chunk_rows=300)
    assert stats.complete_before == 900  # windows 0-299, 300-599, 600-899; 900-1199 partial
    compactor = Compactor(
        location, lambda: {(stats.topic, 0): stats.complete_before}, grace_seconds=0
    )
    report = compactor.run(timedelta(hours=1))
    assert report.merges
    merged = {o.ranges for m in report.merges for o in m.inputs}
    assert all(last < 900 for ranges in merged for _p, _f, last in ranges)

    def rows() -> list[str]:
        days = [start.date() + timedelta(days=n) for n in range(3)]
        return [i for d in days for i in read_live_day(location, d)[0].column("id").to_pylist()]

    assert sorted(rows()) == sorted(t.id for t in tweets)
    # loaded again: the small objects come back beside the compacted ones, which cover them
    load_archive(archive, Lake(location), Settings(), chunk_rows=300)
    assert sorted(rows()) == sorted(t.id for t in tweets)
    view = DayAggregates(location).frame(60)
    assert int(view[view["coin"] == "*"]["tweets"].sum()) == 1000
