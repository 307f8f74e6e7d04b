"""PostgreSQL partitions and retention (docs/storage.md) against the real server: migrations 0007
and 0008 keep every row, the sink stores a replayed tweet once and posts dated anywhere,
retention drops whole days while the aggregates stay exact, and 60 days at 30 days' retention
stay flat."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from conftest import Pipeline
from psycopg import sql

from cryptosent.analysis.sentiment import get_analyzer
from cryptosent.batch import ScoredBatch
from cryptosent.bench.retention import fill, midnight, migrate_to, simulate
from cryptosent.config import Settings
from cryptosent.model import Tweet
from cryptosent.processor.transform import score_tweets
from cryptosent.runtime import Backoff, Retry
from cryptosent.sinks.database import Database
from cryptosent.sinks.migrations import migrate
from cryptosent.sinks.offsets import OffsetStore
from cryptosent.sinks.postgres import SESSION_SETUP, PostgresSink
from cryptosent.stack.manager import Stack
from cryptosent.storage import retention
from cryptosent.storage.retention import DAY, partition_name, retain

TODAY = datetime.now(UTC).date()


def snapshot(conn: psycopg.Connection) -> dict[str, object]:
    """Every table's rows (count and digest of the ordered rows) and the per-day tweet counts."""
    found: dict[str, object] = {}
    for table, order in [("tweets", "id, created_at"), ("tweet_coins", "coin, tweet_id"),
                         ("coin_minute", "coin, minute"), ("coin_hour", "coin, hour")]:  # fmt: skip
        query = sql.SQL(
            "select count(*), md5(string_agg(t::text, '|' order by {})) from {} t"
        ).format(sql.SQL(order), sql.Identifier(table))
        found[table] = conn.execute(query).fetchone()
    found["days"] = conn.execute(
        "select (created_at at time zone 'UTC')::date, count(*), sum(compound)::numeric(20, 6)"
        " from tweets group by 1 order by 1"
    ).fetchall()
    return found


def digest(conn: psycopg.Connection, table: str) -> object:
    """A digest of every row of a table."""
    query = sql.SQL("select md5(string_agg(x::text, '|' order by x::text)) from {} x")
    return conn.execute(query.format(sql.Identifier(table))).fetchone()


@pytest.fixture
def empty_database(stack: Stack, settings: Settings) -> Iterator[str]:
    """A fresh database with no schema at all; its URL; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    admin = stack.postgres.admin_conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} owner cryptosent").format(sql.Identifier(name)))
    yield settings.database_dsn().rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def day_names(conn: psycopg.Connection, table: str) -> list[str]:
    return [p.name for p in retention.partitions(conn, table)]


def test_migrations_0007_0008_keep_every_row(empty_database: str) -> None:
    url = empty_database
    migrate_to(url, 6)
    start = datetime.combine(TODAY - 5 * DAY, datetime.min.time(), tzinfo=UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        fill(conn, "t", start, 3000, "3 minutes")  # 6.25 days, up to tomorrow
        fill(conn, "old", datetime(1, 1, 1, tzinfo=UTC), 2, "1 hour")  # ten years+ out: default
        fill(conn, "far", datetime(2999, 1, 1, tzinfo=UTC), 2, "1 hour")
        before = snapshot(conn)
        assert before["tweets"][0] == 3004  # type: ignore[index]

    applied = [m.label for m in migrate(url)]
    assert applied == ["0007 partitioned_tweets", "0008 tweet_coins_by_time"]

    with psycopg.connect(url, autocommit=True) as conn:
        assert snapshot(conn) == before
        kinds = conn.execute(
            "select relname, relkind from pg_class where relname in ('tweets', 'tweet_coins')"
            " order by 1"
        ).fetchall()
        assert kinds == [("tweet_coins", "p"), ("tweets", "p")]
        # a partition per day with rows, and yesterday to three days ahead
        days = sorted({TODAY + k * DAY for k in range(-5, 2)} | {TODAY + k * DAY for k in (2, 3)})
        assert day_names(conn, "tweets") == [partition_name("tweets", d) for d in days]
        assert day_names(conn, "tweet_coins") == [partition_name("tweet_coins", d) for d in days]
        assert retention.default_rows(conn, "tweets") == 4
        assert conn.execute("select count(*) from tweets_p" + f"{TODAY:%Y%m%d}").fetchone() == (
            480,
        )
        keys = conn.execute(
            "select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint"
            " where contype = 'p' and conrelid in ('tweets'::regclass, 'tweet_coins'::regclass)"
            " order by 1"
        ).fetchall()
        assert keys == [("tweet_coins", "PRIMARY KEY (coin, created_at, tweet_id)"),
                        ("tweets", "PRIMARY KEY (id, created_at)")]  # fmt: skip
        # 0008: the key serves a coin's latest mentions, so it is the table's only index
        indexes = conn.execute(
            "select indexrelid::regclass::text from pg_index"
            " where indrelid = 'tweet_coins'::regclass"
        ).fetchall()
        assert indexes == [("tweet_coins_pkey",)]
    assert migrate(url) == []


def sink(url: str) -> PostgresSink:
    database = Database(url, setup=list(SESSION_SETUP))
    return PostgresSink(database, OffsetStore("g", "t"), Retry(Backoff.exponential(0.1, 1.0)))


def scored(tweets: list[Tweet], first_offset: int) -> ScoredBatch:
    offsets = list(range(first_offset, first_offset + len(tweets)))
    table = score_tweets(
        tweets, [0] * len(tweets), offsets, get_analyzer("crypto"), get_analyzer("vader")
    )
    return ScoredBatch(table, [b"{}"] * len(tweets), {0: (offsets[0], offsets[-1])})


def test_sink_stores_a_tweet_once_and_posts_dated_anywhere(database_url: str) -> None:
    now = datetime.now(UTC)
    tweets = [
        Tweet("a", "$BTC up", now),
        Tweet("ancient", "$BTC in year 1", datetime(1, 1, 1, tzinfo=UTC)),
        Tweet("future", "$ETH in 2999", datetime(2999, 12, 31, 23, 59, tzinfo=UTC)),
        Tweet("late", "$SOL last month", now - 40 * DAY),
    ]
    writer = sink(database_url)
    try:
        assert writer.write(scored(tweets, 0)) == 4
        # the same tweets again at later offsets (a source that sends them twice): none stored
        assert writer.write(scored(tweets, 4)) == 0
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "select tableoid::regclass::text, id from tweets order by created_at"
            ).fetchall()
            assert rows == [("tweets_default", "ancient"), ("tweets_default", "late"),
                            (partition_name("tweets", now.date()), "a"),
                            ("tweets_default", "future")]  # fmt: skip
            assert conn.execute("select count(*) from tweet_coins").fetchone() == (4,)
            assert conn.execute(
                "select sum(tweets) from coin_minute where coin = '*'"
            ).fetchone() == (4,)
            # preparing the late post's day moves it out of the default partition
            assert retention.prepare(conn, now.date() - 40 * DAY, now.date() - 40 * DAY) == [
                partition_name("tweets", now.date() - 40 * DAY),
                partition_name("tweet_coins", now.date() - 40 * DAY),
            ]
            conn.commit()
        # still stored once: the key (id, created_at) finds it in its new partition
        assert writer.write(scored(tweets, 8)) == 0
        with psycopg.connect(database_url) as conn:
            assert conn.execute(
                "select tableoid::regclass::text from tweets where id = 'late'"
            ).fetchall() == [(partition_name("tweets", now.date() - 40 * DAY),)]
            assert conn.execute("select count(*) from tweets").fetchone() == (4,)
    finally:
        writer.close()


def test_retention_drops_whole_days_and_the_aggregates_stay(database_url: str) -> None:
    now = midnight(TODAY) + timedelta(hours=12)
    first = TODAY - 40 * DAY
    with psycopg.connect(database_url) as conn:
        retention.prepare(conn, first, TODAY)
        fill(conn, "t", midnight(first), 40 * 96, "15 minutes")  # 40 days up to today 00:00
        conn.execute(
            "insert into alerts (coin, minute, kind, value, baseline, message)"
            " values ('BTC', now() - interval '35 days', 'volume_surge', 3, 1, 'old')"
        )
        conn.execute(
            "insert into price_minute (coin, minute, open, high, low, close, volume, trades,"
            " open_ts, open_partition, open_offset, close_ts, close_partition, close_offset)"
            " values ('BTC', now() - interval '35 days', 1, 1, 1, 1, 0, 1,"
            " now(), 0, 0, now(), 0, 0)"
        )
        conn.commit()
        kept = ("coin_minute", "coin_hour", "alerts", "price_minute")
        digests = {table: digest(conn, table) for table in kept}
        old_days = [first + k * DAY for k in range(10)]  # wholly older than now - 30 days
        expected = conn.execute(
            "select count(*) from tweets where created_at >= %s", [midnight(first + 10 * DAY)]
        ).fetchone()
        assert expected == (30 * 96,)

        dry = retain(conn, 30, now=now, dry_run=True)
        assert sorted({p.day for p in dry.dropped}) == old_days
        assert conn.execute("select count(*) from tweets").fetchone() == (40 * 96,)
        report = retain(conn, 30, now=now)

        assert sorted({p.day for p in report.dropped}) == old_days
        assert len(report.dropped) == 20 and report.dropped_bytes > 0
        assert report.created == []  # the migration prepared today and three days ahead
        assert conn.execute("select count(*) from tweets").fetchone() == expected
        assert conn.execute("select min(created_at) from tweets").fetchone() == (
            midnight(first + 10 * DAY),
        )
        assert conn.execute(
            "select count(*) from tweet_coins where created_at < %s", [midnight(first + 10 * DAY)]
        ).fetchone() == (0,)
        assert day_names(conn, "tweets")[0] == partition_name("tweets", first + 10 * DAY)
        # no row was deleted one by one: the partitions went whole
        assert conn.execute(
            "select coalesce(sum(n_tup_del), 0) from pg_stat_user_tables"
            " where relname like 'tweet%%'"
        ).fetchone() == (0,)
        # the aggregates, alerts and prices are untouched (no rollup trigger fired)
        assert {table: digest(conn, table) for table in kept} == digests
        for rollup in ("coin_minute", "coin_hour"):
            query = sql.SQL("select sum(tweets) from {} where coin = '*'")
            assert conn.execute(query.format(sql.Identifier(rollup))).fetchone() == (40 * 96,)
        conn.commit()
        # a second run has nothing left to do; retention 0 keeps everything
        again = retain(conn, 30, now=now)
        assert again.dropped == [] and again.created == []
        assert retain(conn, 0, now=now + 400 * DAY, dry_run=True).dropped == []


def test_sixty_days_at_thirty_days_retention_stay_flat(database_url: str) -> None:
    per_day = 200
    days = simulate(database_url, 60, per_day, 30, start=TODAY)
    # a run at 23:00 of day d keeps the days from d-30 on: 31 days of rows
    assert [d.tweets for d in days] == [min(d.day + 1, 31) * per_day for d in days]
    flat = [d.raw_bytes for d in days[31:]]
    assert max(flat) <= min(flat) * 1.02, flat
    assert days[-1].raw_bytes < 1.1 * days[30].raw_bytes
    with psycopg.connect(database_url) as conn:
        # the aggregates kept all 60 days
        assert conn.execute("select sum(tweets) from coin_minute where coin = '*'").fetchone() == (
            60 * per_day,
        )
        assert len(day_names(conn, "tweets")) == 31 + retention.AHEAD_DAYS


def test_the_processor_drops_expired_days_when_it_starts(pipeline: Pipeline) -> None:
    old = TODAY - 10 * DAY
    with psycopg.connect(pipeline.database_url) as conn:
        retention.prepare(conn, old, old)
        fill(conn, "old", midnight(old), 10, "1 hour")
        conn.commit()
    pipeline.env["CRYPTOSENT_RETENTION_DAYS"] = "5"
    run = pipeline.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    with psycopg.connect(pipeline.database_url) as conn:
        assert partition_name("tweets", old) not in day_names(conn, "tweets")
        assert partition_name("tweet_coins", old) not in day_names(conn, "tweet_coins")
        assert conn.execute("select count(*) from tweets").fetchone() == (0,)
        assert conn.execute("select sum(tweets) from coin_minute where coin = '*'").fetchone() == (
            10,
        )
