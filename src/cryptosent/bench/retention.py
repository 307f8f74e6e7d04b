"""PostgreSQL retention over time: the raw tables' size through a simulated run of many days, and
the cost of migration 0007 (the one-time copy into day partitions).

`simulate` stores `per_day` synthetic tweets a day (with their coin mentions and minutes, as the
processor would) and runs retention once a day; `migration` fills a database migrated to 0006 and
times `migrate`. Both work in scratch databases beside the configured one, dropped afterwards.

Run: ``python -m cryptosent.bench.retention [--days 60] [--per-day 10000] [--keep 30]
[--migrate-rows 1000000] [--sink-cpu]`` (numbers go to docs/storage.md by hand).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
import pyarrow as pa
from psycopg import sql

from cryptosent import aggregates
from cryptosent.config import Settings
from cryptosent.sinks.migrations import available, migrate, repeatable
from cryptosent.stack.postgres import PostgresServer
from cryptosent.storage.retention import retain

# `n` synthetic tweets from `start`, `step` apart (sentiment, coins, spam and followers vary)
_TWEETS = """
insert into tweets (id, created_at, text, author_id, author_followers, compound, pos, neu, neg,
    label, vader_compound, vader_pos, vader_neu, vader_neg, vader_label, coins, kafka_partition,
    kafka_offset, spam, campaign_id, confidence)
select %(prefix)s || i, %(start)s::timestamptz + i * %(step)s::interval,
       'post number ' || i || ' about $BTC and friends', 'u' || (i %% 50), (i %% 50) * 100,
       c, greatest(c, 0), 1 - abs(c), greatest(-c, 0),
       case when c >= 0.05 then 'positive' when c <= -0.05 then 'negative' else 'neutral' end,
       c / 2, greatest(c / 2, 0), 1 - abs(c / 2), greatest(-c / 2, 0),
       case when c / 2 >= 0.05 then 'positive' when c / 2 <= -0.05 then 'negative'
            else 'neutral' end,
       (array['{BTC}', '{ETH,BTC}', '{}'])[1 + i %% 3]::text[], i %% 6, i,
       i %% 10 = 0, case when i %% 20 = 0 then 'camp' end, 0.9
from generate_series(0, %(n)s::bigint - 1) i,
     lateral (select (((i * 7919) %% 2001) - 1000) / 1000.0::float8 as c) s
"""
_COINS = """insert into tweet_coins (coin, tweet_id, created_at)
select coin, id, created_at from tweets, unnest(coins) as coin
where created_at >= %(start)s and created_at < %(end)s"""
_MINUTES = f"""insert into coin_minute (coin, minute, {aggregates.COLUMNS})
select coin, date_trunc('minute', created_at), {aggregates.computed()}
from tweets, unnest(coins || '{{{aggregates.ALL_COINS}}}'::text[]) as coin
where created_at >= %(start)s and created_at < %(end)s group by 1, 2"""  # noqa: S608 - constants
_RAW_BYTES = """select coalesce(sum(pg_total_relation_size(inhrelid)), 0) from pg_inherits
where inhparent in ('tweets'::regclass, 'tweet_coins'::regclass)"""


def midnight(day: date) -> datetime:
    """The UTC instant a day starts."""
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def fill(conn: psycopg.Connection, prefix: str, start: datetime, n: int, step: str) -> None:
    """Store n tweets from start, `step` apart (ids `prefix` + i), their coin mentions and their
    minutes in `coin_minute` (`coin_hour` follows by its triggers). Minutes must be new."""
    end = start + n * _interval(conn, step)
    params = {"prefix": prefix, "start": start, "n": n, "step": step, "end": end}
    for statement in (_TWEETS, _COINS, _MINUTES):
        conn.execute(statement.encode(), params)


def _interval(conn: psycopg.Connection, step: str) -> timedelta:
    row = conn.execute("select %s::interval", [step]).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def raw_bytes(conn: psycopg.Connection) -> int:
    """Bytes of every partition of `tweets` and `tweet_coins` (tables, indexes, TOAST)."""
    row = conn.execute(_RAW_BYTES).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Day:
    """The state after one simulated day."""

    day: int
    tweets: int
    raw_bytes: int
    coin_minute_bytes: int


def simulate(url: str, days: int, per_day: int, keep: int, start: date | None = None) -> list[Day]:
    """`days` days of `per_day` tweets each from `start` (default today), retention `keep`
    run once a day at 23:00 as the processor's hourly job would; the state after each day."""
    first = midnight(start or datetime.now(UTC).date())
    step = f"{86_400_000_000 // per_day} microseconds"
    found = []
    with psycopg.connect(url) as conn:
        for day in range(days):
            retain(conn, keep, now=first + timedelta(days=day, hours=23))
            fill(conn, f"d{day}-", first + timedelta(days=day), per_day, step)
            conn.commit()
            row = conn.execute(
                "select (select count(*) from tweets), pg_total_relation_size('coin_minute')"
            ).fetchone()
            assert row is not None
            found.append(Day(day, int(row[0]), raw_bytes(conn), int(row[1])))
            conn.commit()
    return found


def migrate_to(url: str, version: int) -> None:
    """Apply the migrations up to `version` and the repeatable steps, as `migrate` did when
    `version` was the newest."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "create table schema_migrations (version integer primary key, name text not null,"
            " applied_at timestamptz not null default now())"
        )
        conn.execute(
            "create table schema_repeatables (name text primary key, checksum text not null,"
            " applied_at timestamptz not null default now())"
        )
        for migration in available():
            if migration.version is not None and migration.version <= version:
                conn.execute(migration.sql.encode())
                conn.execute(
                    "insert into schema_migrations (version, name) values (%s, %s)",
                    [migration.version, migration.name],
                )
        for step in repeatable():
            conn.execute(step.sql.encode())
            conn.execute(
                "insert into schema_repeatables (name, checksum) values (%s, %s)",
                [step.name, step.checksum],
            )


@contextmanager
def scratch_database(settings: Settings) -> Iterator[str]:
    """An empty database owned by the app role beside the configured one; its URL; dropped
    on exit (created through the local stack's administrator)."""
    dsn = settings.database_dsn()
    name = f"bench_retention_{uuid.uuid4().hex[:8]}"
    admin = PostgresServer(settings).admin_conninfo()
    owner = psycopg.conninfo.conninfo_to_dict(dsn).get("user") or "cryptosent"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} owner {}").format(
            sql.Identifier(name), sql.Identifier(str(owner))))  # fmt: skip
    try:
        yield psycopg.conninfo.make_conninfo(dsn, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))  # fmt: skip


def backend_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a PostgreSQL backend on this machine has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def migration(url: str, rows: int, days: int = 30) -> dict[str, float]:
    """Fill a database at 0006 with `rows` tweets over `days` days, then apply migration 0007
    as `migrate` does: wall seconds and the server backend's CPU seconds (the server must run on
    this machine, as the local stack does)."""
    migrate_to(url, 6)
    start = midnight(datetime.now(UTC).date() - timedelta(days=days))
    step = next(m for m in available() if m.version == 7)
    with psycopg.connect(url, autocommit=True) as conn:
        fill(conn, "m", start, rows, f"{days * 86_400_000_000 // rows} microseconds")
        conn.execute("vacuum analyze")
        size = conn.execute("select pg_total_relation_size('tweets')").fetchone()
        pid = conn.info.backend_pid
        cpu, began = backend_cpu_s(pid), time.perf_counter()
        with conn.transaction():
            conn.execute(step.sql.encode())
            conn.execute(
                "insert into schema_migrations (version, name) values (7, %s)", [step.name]
            )
        wall, cpu = time.perf_counter() - began, backend_cpu_s(pid) - cpu
    return {
        "rows": rows,
        "tweets_mb_before": round(int(size[0]) / 1e6, 1) if size else 0.0,
        "migrate_wall_s": round(wall, 1),
        "migrate_server_cpu_s": round(cpu, 1),
    }


def sink_write_cpu(url: str, version: int, batches: int = 30, size: int = 5000) -> float:
    """Server CPU milliseconds per 1,000 tweets of the PostgreSQL sink's insert statement (COPY
    into staging, then tweets, tweet_coins, coin_minute) on a database at `version` (6: keyed by
    id, the statement as it was; 7: partitioned); each batch new ids dated over 5,000 seconds."""
    from cryptosent.analysis.sentiment import get_analyzer
    from cryptosent.model import Tweet
    from cryptosent.processor.transform import score_tweets
    from cryptosent.sinks import postgres

    migrate_to(url, 6)
    statement = postgres._INSERT_BATCH
    if version >= 7:
        migrate(url)
    else:
        statement = statement.replace("on conflict (id, created_at)", "on conflict (id)")
    now = datetime.now(UTC)
    texts = ["$BTC to the moon", "ETH dumping hard", "solana looks fine", "DOGE and $PEPE rally"]
    tweets = [Tweet(f"{i}", texts[i % 4], now - timedelta(seconds=i)) for i in range(size)]
    offsets = list(range(size))
    table = score_tweets(tweets, [0] * size, offsets, get_analyzer("crypto"), get_analyzer("vader"))
    ids = table.schema.get_field_index("id")
    with psycopg.connect(url) as conn:
        for setup in ("set time zone 'UTC'", *postgres.SESSION_SETUP):
            conn.execute(setup)
        conn.commit()
        pid = conn.info.backend_pid
        began = backend_cpu_s(pid)
        for batch in range(batches):
            column = [f"b{batch}-{i}" for i in range(size)]
            rows = postgres.to_copy_csv(table.set_column(ids, "id", pa.array(column)))
            with conn.cursor() as cur:
                with cur.copy(postgres._COPY) as copy:
                    copy.write(rows)
                cur.execute(statement.encode())
            conn.commit()
        return (backend_cpu_s(pid) - began) * 1e6 / (batches * size)


def main() -> None:
    """CLI: print the simulated days (every tenth and the last) and the migration's time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--keep", type=int, default=30)
    parser.add_argument("--migrate-rows", type=int, default=0, help="0: skip the migration")
    parser.add_argument(
        "--sink-cpu", action="store_true", help="the sink's server CPU per tweet at 0006 and 0007"
    )
    args = parser.parse_args()
    settings = Settings()
    with scratch_database(settings) as url:
        migrate(url)
        began = time.perf_counter()
        days = simulate(url, args.days, args.per_day, args.keep)
        took = time.perf_counter() - began
    print(f"{args.days} days of {args.per_day:,} tweets, retention {args.keep} days ({took:.0f} s)")
    print("| day | tweets rows | raw partitions MB | coin_minute MB |")
    print("|---:|---:|---:|---:|")
    for d in days[::10] + days[-1:]:
        mb = (d.raw_bytes / 1e6, d.coin_minute_bytes / 1e6)
        print(f"| {d.day} | {d.tweets:,} | {mb[0]:.1f} | {mb[1]:.1f} |")
    if args.migrate_rows:
        with scratch_database(settings) as url:
            print(migration(url, args.migrate_rows))
    if args.sink_cpu:
        for version in (6, 7, 6, 7):
            with scratch_database(settings) as url:
                ms = sink_write_cpu(url, version)
            print(f"sink insert at {version:04d}: {ms:.1f} ms server CPU per 1,000 tweets")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"client CPU {usage.ru_utime + usage.ru_stime:.1f} s")


if __name__ == "__main__":
    main()
