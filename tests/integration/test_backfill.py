"""Backfill from the lake and replay to the lake, against the real servers (docs/storage.md,
"Backfill and replay to the lake"): rows and aggregates rebuilt exactly, each row once, re-runs
idempotent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from conftest import Pipeline

from cryptosent import aggregates
from cryptosent.model import encode_tweet
from cryptosent.sinks.database import Database
from cryptosent.sinks.lake import Lake, lake_location
from cryptosent.sources.mock import MockGenerator
from cryptosent.storage.backfill import Backfill, BackfillStats
from cryptosent.storage.to_lake import load_archive

_TWEET_COLUMNS = (
    "id, created_at, text, author_id, compound, label, confidence, vader_compound, vader_label,"
    " coins, spam, campaign_id, kafka_partition, kafka_offset"
)
_DROP = "truncate tweets, tweet_coins, coin_minute, coin_hour"


def _backfill(p: Pipeline, retention_days: int) -> BackfillStats:
    """The backfill in this process (the CLI's job, without its start-up)."""
    job = Backfill(lake_location(p.settings, p.lake_url), Database(p.database_url), retention_days)
    try:
        return job.run()
    finally:
        job.close()


def _execute(p: Pipeline, statements: str) -> None:
    with psycopg.connect(p.database_url) as conn:
        for statement in statements.split(";"):
            conn.execute(statement.encode())


def _keep_copies(p: Pipeline) -> None:
    with_copies = (
        f"create table expected_tweets as select {_TWEET_COLUMNS} from tweets;"
        "create table expected_coins as select coin, tweet_id, created_at from tweet_coins;"
        "create table expected_minute as select * from coin_minute;"
        "create table expected_hour as select * from coin_hour"
    )
    _execute(p, with_copies)


def _differences(p: Pipeline) -> dict[str, int]:
    """Rows that differ between the tables and the copies kept before they were emptied."""
    hour_stored = f"select coin, hour as minute, {aggregates.COLUMNS} from coin_hour"
    hour_expected = f"select coin, hour as minute, {aggregates.COLUMNS} from expected_hour"

    def count(sql: str) -> int:
        return int(str(p.scalar(sql)))

    return {
        "tweets": count(
            f"select count(*) from ((select {_TWEET_COLUMNS} from tweets except all"
            " select * from expected_tweets) union all (select * from expected_tweets"
            f" except all select {_TWEET_COLUMNS} from tweets)) d"
        ),
        "tweet_coins": count(
            "select count(*) from ((select coin, tweet_id, created_at from tweet_coins except all"
            " select * from expected_coins) union all (select * from expected_coins except all"
            " select coin, tweet_id, created_at from tweet_coins)) d"
        ),
        "coin_minute": count(aggregates.mismatches("select * from expected_minute")),
        "coin_hour": count(aggregates.mismatches(hour_stored, hour_expected)),
    }


def test_backfill_after_dropping_the_rows_rebuilds_what_the_processor_wrote(
    file_pipeline: Pipeline,
) -> None:
    p = file_pipeline
    # campaign detection off: the lake keeps each post's first verdict, PostgreSQL the revised
    # one (docs/campaigns.md), and revisions would make the organic measures differ
    p.env["CRYPTOSENT_CAMPAIGN_DETECTION"] = "false"
    gen = p.cli("generate", "--count", "3000", "--rate", "max", "--seed", "16", "--campaigns", "0")
    assert gen.returncode == 0, gen.stderr
    run = p.cli("process", "--until-idle", "--no-prices")
    assert run.returncode == 0, run.stderr
    assert p.scalar("select count(*) from tweets") == 3000
    _keep_copies(p)
    _execute(p, _DROP)
    assert p.scalar("select count(*) from coin_minute") == 0

    backfill = p.cli("backfill", "--from-lake", "--retention-days", "0")
    assert backfill.returncode == 0, backfill.stderr
    assert "3,000 tweets" in backfill.stdout
    assert _differences(p) == {"tweets": 0, "tweet_coins": 0, "coin_minute": 0, "coin_hour": 0}
    assert p.coin_minute_mismatches() == 0
    assert p.coin_hour_mismatches() == 0

    assert _backfill(p, 0).tweets == 3000  # idempotent: the same tables again
    assert _differences(p) == {"tweets": 0, "tweet_coins": 0, "coin_minute": 0, "coin_hour": 0}


def write_archive(
    path: Path, count: int, days: int, ago: int = 40, seed: int = 21
) -> dict[str, datetime]:
    """A JSON Lines archive of count mock posts spread evenly over days ending `ago` days
    before today's midnight (UTC), with one bad line (line 12); its valid posts' id -> time."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=ago + days)
    step = timedelta(days=days) / count
    posts = {}
    with path.open("wb") as out:
        for i, tweet in enumerate(MockGenerator(seed=seed).read(count)):
            tweet.created_at = start + i * step
            out.write(encode_tweet(tweet) + b"\n")
            posts[tweet.id] = tweet.created_at
            if i == 10:
                out.write(json.dumps({"id": "x", "text": "no date"}).encode() + b"\n")
    return posts


def test_replay_to_lake_then_backfill_gives_each_row_of_the_file_once(
    file_pipeline: Pipeline, tmp_path: Path
) -> None:
    p = file_pipeline
    archive = tmp_path / "History-2026.jsonl"
    ids = list(write_archive(archive, 2000, 3))

    first = p.cli("replay", "--to-lake", str(archive))
    assert first.returncode == 0, first.stderr
    assert "2,000 tweets" in first.stdout and "archive.history_2026" in first.stdout
    assert ":12: skipped" in first.stderr  # the bad line, by its line number
    # its one window is partial: not final for compaction (docs/storage.md)
    offsets = "select consumer_group, topic, partition, sink, next_offset from kafka_offsets"
    assert p.query(offsets) == [(f"group-{p.topic}", "archive.history_2026", 0, "lake", 0)]
    keys = p.lake_tables("processed") + p.lake_tables("raw")
    assert keys and all("/archive.history_2026-p000-000000000000-000000199999." in k for k in keys)
    assert len(p.lake_tables("processed")) == len(p.lake_tables("raw")) >= 3 * 24
    content = {k: p.read_object(k) for k in keys}

    # idempotent: same keys, same bytes (in this process: the command's job without start-up)
    again = load_archive(archive, Lake(lake_location(p.settings, p.lake_url)), p.settings)
    assert again.tweets == 2000
    assert {k: p.read_object(k) for k in p.lake_tables("processed") + p.lake_tables("raw")} == (
        content
    )

    # raw rows for every day (retention 0 = keep for good): each valid line once
    full = p.cli("backfill", "--from-lake", "--retention-days", "0")
    assert full.returncode == 0, full.stderr
    stored = [str(r[0]) for r in p.query("select id from tweets")]
    assert sorted(stored) == sorted(ids)
    # in their days' own partitions (created by the backfill), which retention can drop
    assert p.scalar("select count(*) from tweets_default") == 0
    assert p.scalar("select count(*) from tweet_coins_default") == 0
    assert p.scalar("select sum(tweets) from coin_minute where coin = '*'") == 2000
    assert p.coin_minute_mismatches() == 0
    assert p.coin_hour_mismatches() == 0
    _execute(p, "create table expected_minute as select * from coin_minute")

    # the days are 40+ days old: with 30 days of retention only their aggregates come back,
    # computed by DuckDB, equal to those PostgreSQL computed from the rows
    _execute(p, _DROP)
    assert _backfill(p, 30).tweets == 0
    assert p.scalar("select count(*) from tweets") == 0
    assert int(str(p.scalar(aggregates.mismatches("select * from expected_minute")))) == 0
    assert p.coin_hour_mismatches() == 0
