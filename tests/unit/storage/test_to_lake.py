"""Replay to the lake without servers: a local folder lake, fixed windows, keys and finality."""

from __future__ import annotations

from pathlib import Path

from cryptosent.config import Settings
from cryptosent.model import encode_tweet
from cryptosent.sinks.lake import Lake, open_lake
from cryptosent.sources.mock import MockGenerator
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
