"""Every dashboard window is bounded on both sides by the wall clock: posts dated ahead of now
(a year 2999 stored before the processor refused them, or one a few minutes ahead, inside the
margin) and very old ones stay out of every range. Checked on the lake mode's DuckDB, which runs
the same statements as PostgreSQL (tests/integration/test_time_sanity.py runs them there)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cryptosent.batch import SCHEMA
from cryptosent.config import Settings
from cryptosent.dashboard import queries
from cryptosent.dashboard.lake import open_lake_db
from cryptosent.dashboard.snapshot import load_snapshot

M = timedelta(minutes=1)


def row(number: int, created_at: datetime, coins: list[str], compound: float) -> dict[str, object]:
    label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    return {
        "id": f"t{number}", "created_at": created_at, "text": f"post {number}",
        "author_username": f"user{number}", "compound": compound, "label": label,
        "vader_compound": compound, "vader_label": label, "coins": coins,
        "kafka_partition": 0, "kafka_offset": number,
    }  # fmt: skip


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb.DuckDBPyConnection, datetime]:
    """A lake of two recent posts, one 5 minutes ahead, one in 2999 and one in 1600."""
    now = datetime.now(UTC)
    rows = [
        row(0, now - 5 * M, ["BTC"], 0.5),
        row(1, now - 30 * M, ["ETH"], -0.5),
        row(2, now + 5 * M, ["BTC"], 0.9),
        row(3, datetime(2999, 1, 1, tzinfo=UTC), ["BTC", "ETH"], 0.9),
        row(4, datetime(1600, 1, 1, tzinfo=UTC), ["BTC"], -0.9),
    ]
    folder: Path = tmp_path_factory.mktemp("lake")
    part = folder / "processed" / "dt=2026-01-01" / "hour=00"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), part / "tweets-p000-0-4.parquet")
    return open_lake_db(Settings(), f"file://{folder}"), now


RECENT = {"15 min": 1, "1 h": 2, "24 h": 2, "7 d": 2, "all": 2}


@pytest.mark.parametrize("range_key", list(queries.RANGES))
def test_totals_count_only_posts_between_the_window_start_and_now(
    lake: tuple[duckdb.DuckDBPyConnection, datetime], range_key: str
) -> None:
    db, _now = lake
    window = queries.RANGES[range_key]
    assert queries.totals(db, window)["tweets"] == RECENT[range_key]
    per_coin = queries.coin_totals(db, window).set_index("coin")["tweets"].to_dict()
    assert sum(per_coin.values()) == RECENT[range_key]
    for bucket in (60, 3600):
        series = queries.timeline(db, window, bucket)
        assert series["tweets"].sum() == RECENT[range_key], bucket
        coins = queries.coin_buckets(db, ["BTC", "ETH"], window, bucket)
        assert coins["tweets"].sum() == RECENT[range_key], bucket


def test_no_chart_point_lies_ahead_of_now(
    lake: tuple[duckdb.DuckDBPyConnection, datetime],
) -> None:
    db, now = lake
    snap = load_snapshot(db, "all", group="g", topic="t", drill_coins=["BTC"])
    assert snap.totals["tweets"] == 2
    for frame in (snap.timeline, snap.coin_buckets, snap.throughput):
        newest = max(frame["bucket"])
        assert newest.year == now.year and newest <= now + M, frame
    assert snap.latest["text"].tolist() == ["post 0", "post 1"]
    assert snap.state.newest_tweet is not None and snap.state.newest_tweet <= now
    # the oldest minute is still known (old posts are valid, only outside recent windows)
    assert snap.first_minute is not None and snap.first_minute.year == 1600


def test_latest_tweets_and_the_rate_ignore_posts_ahead_of_now(
    lake: tuple[duckdb.DuckDBPyConnection, datetime],
) -> None:
    db, _now = lake
    for window in queries.RANGES.values():
        texts = queries.latest_tweets(db, window, 10)["text"].tolist()
        assert "post 2" not in texts and "post 3" not in texts
        btc = queries.latest_tweets(db, window, 10, coin="BTC")["text"].tolist()
        assert btc == ["post 0"]
    assert queries.tweet_rate(db) == (0, 0)


def test_a_window_shorter_than_an_hour_inside_one_hour(
    lake: tuple[duckdb.DuckDBPyConnection, datetime],
) -> None:
    # the hour edges of the window coincide: the minutes must be counted once, not twice
    db, now = lake
    for minutes in (1, 6, 31, 59, 61, 119):
        window = timedelta(minutes=minutes)
        # the posts age while the module runs (a loaded machine takes minutes): count what the
        # wall clock says before and after the query, and skip a window a post crossed meanwhile
        before = sum(age + datetime.now(UTC) - now < window for age in (5 * M, 30 * M))
        got = queries.totals(db, window)["tweets"]
        after = sum(age + datetime.now(UTC) - now < window for age in (5 * M, 30 * M))
        if before == after:
            assert got == before, minutes
