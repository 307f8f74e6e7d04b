"""Dashboard queries at 10M stored tweets: max and p95 milliseconds per query, and a full refresh.

Loads `rows` synthetic tweets (spread over the 7 days before now, ~30 coins, both analyzers)
into a separate, freshly migrated database with set-based SQL, derives `tweet_coins` and
`coin_minute` from them exactly as the processor would, then runs every dashboard query for
every time range. The database is dropped afterwards.

Run: ``python -m cryptosent.bench.dashboard [--rows 10000000] [--runs 20]``
(numbers go to docs/dashboard.md by hand; `cryptosent bench` calls `measure`).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from cryptosent import aggregates
from cryptosent.config import Settings
from cryptosent.dashboard import queries
from cryptosent.dashboard.snapshot import WORDCLOUD_ROWS, load_snapshot
from cryptosent.sinks.migrations import migrate
from cryptosent.stack.postgres import PostgresServer
from cryptosent.storage.retention import prepare

GROUP, TOPIC = "cryptosent-processor", "tweets"
SPAN_DAYS = 7
CHUNK = 1_000_000
# weighted like crypto Twitter: BTC most, then ETH, SOL, XRP, DOGE, then a long tail
_TAIL = "ADA PEPE SHIB AVAX LINK DOT TON TRX SUI NEAR LTC UNI ARB OP ATOM APT INJ FET RNDR TAO"
COIN_POOL = [
    *["BTC"] * 12, *["ETH"] * 7, *["SOL"] * 3, *["XRP"] * 3, *["DOGE"] * 2, *["BNB"] * 2,
    *_TAIL.split(),
]  # fmt: skip
TEXTS = (
    "$BTC breaking out, this is the move we waited for 🚀 https://example.com/chart",
    "Sold my ETH bags, this market is rekt. Bearish until the Fed speaks",
    "gm. Watching SOL and the memecoins today, volume is insane",
    "Why is everyone so bullish on XRP? The chart looks weak to me @analyst",
    "DOGE to the moon!! 🐕 #dogecoin #crypto",
    "Long-term holders keep accumulating bitcoin, on-chain data says so",
    "Another exchange hack, another rug. Stay safe, use cold storage",
    "ETF inflows strong again today, institutions keep buying $BTC $ETH",
)

_LOAD = """
insert into tweets (id, created_at, text, author_id, author_username, author_followers,
    author_verified, lang, source, compound, pos, neu, neg, label,
    vader_compound, vader_pos, vader_neu, vader_neg, vader_label, coins,
    kafka_partition, kafka_offset)
select 'b' || i, now() - (i * %(step)s::interval),
       (%(texts)s::text[])[1 + i %% %(ntexts)s],
       'u' || (i %% 50000), 'trader' || (i %% 50000), (i %% 50000) * 13, i %% 97 = 0,
       'en', 'mock',
       c, greatest(c, 0), 1 - abs(c), greatest(-c, 0),
       case when c >= 0.05 then 'positive' when c <= -0.05 then 'negative' else 'neutral' end,
       v, greatest(v, 0), 1 - abs(v), greatest(-v, 0),
       case when v >= 0.05 then 'positive' when v <= -0.05 then 'negative' else 'neutral' end,
       case when i %% 4 = 0
            then array[(%(pool)s::text[])[1 + h %% %(npool)s],
                       (%(pool)s::text[])[1 + (h / 7) %% %(npool)s]]
            else array[(%(pool)s::text[])[1 + h %% %(npool)s]] end,
       (i %% 6)::int, i / 6
from (select i, (i * 2654435761) %% 4294967296 as h
      from generate_series(%(lo)s::bigint, %(hi)s::bigint) i) g,
     lateral (select ((h %% 2001) - 1000) / 1000.0 * 0.8 + 0.05 as c,
                     (((h / 2001) %% 2001) - 1000) / 1000.0 * 0.7 as v) s
"""

_DERIVE = (
    """insert into tweet_coins (coin, tweet_id, created_at)
       select distinct coin, id, created_at from tweets, unnest(coins) as coin""",
    f"insert into coin_minute (coin, minute, {aggregates.COLUMNS}) {aggregates.minute_rebuild()}",
    """insert into alerts (coin, minute, kind, value, baseline, message, created_at)
       select 'BTC', date_trunc('minute', now()) - n * interval '30 minutes',
              case when n %% 2 = 0 then 'volume_surge' else 'sentiment_swing' end, 3.5, 1.0,
              'synthetic alert ' || n, now() - n * interval '30 minutes'
       from generate_series(1, %(alerts)s) n""",
    """insert into kafka_offsets (consumer_group, topic, partition, sink, next_offset)
       select %(group)s, %(topic)s, p, s, %(per_partition)s
       from generate_series(0, 5) p, unnest(array['postgres', 'lake']) s""",
)

# the schema's indexes, dropped during the bulk load and built once afterwards
_DROP_INDEXES = (
    "alter table tweets drop constraint tweets_pkey",
    "drop index tweets_created_at_idx",
    "alter table tweet_coins drop constraint tweet_coins_pkey",
    "alter table coin_minute drop constraint coin_minute_pkey",
    "drop index coin_minute_minute_idx",
)
_CREATE_INDEXES = (
    "alter table tweets add constraint tweets_pkey primary key (id, created_at)",
    "create index tweets_created_at_idx on tweets (created_at desc)",
    "alter table tweet_coins add constraint tweet_coins_pkey"
    " primary key (coin, created_at, tweet_id)",
    "alter table coin_minute add constraint coin_minute_pkey primary key (coin, minute)",
    "create index coin_minute_minute_idx on coin_minute (minute)",
)


def log(message: str) -> None:
    """Progress on stderr (stdout stays for the result)."""
    print(f"[dashboard bench] {message}", file=sys.stderr, flush=True)


@contextmanager
def bench_database(settings: Settings, dsn: str | None = None) -> Iterator[str]:
    """A new migrated database beside the one `dsn` (default: the configured database) names;
    its URL; dropped on exit."""
    dsn = dsn or settings.database_dsn()
    name = f"bench_dashboard_{uuid.uuid4().hex[:8]}"
    admin = dsn
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege:
        # the app role may not create databases: use the local stack's administrator
        admin = PostgresServer(settings).admin_conninfo()
        owner = psycopg.conninfo.conninfo_to_dict(dsn).get("user") or "cryptosent"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} owner {}").format(
                    sql.Identifier(name), sql.Identifier(str(owner))
                )
            )
    url = psycopg.conninfo.make_conninfo(dsn, dbname=name)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))  # fmt: skip


def load(url: str, rows: int) -> float:
    """Fill the database with `rows` tweets and everything derived from them; seconds taken."""
    start = time.perf_counter()
    step = f"{SPAN_DAYS * 86_400_000_000 // rows} microseconds"
    with psycopg.connect(url, autocommit=True) as conn:
        # one partition per day of the span, as the processor's retention job prepares them
        today = datetime.now(UTC).date()
        with conn.transaction():
            prepare(conn, today - timedelta(days=SPAN_DAYS + 1), today)
        for statement in _DROP_INDEXES:
            conn.execute(statement.encode())
        for lo in range(1, rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, rows)
            params = {"step": step, "texts": list(TEXTS), "ntexts": len(TEXTS),
                      "pool": COIN_POOL, "npool": len(COIN_POOL), "lo": lo, "hi": hi}  # fmt: skip
            conn.execute(_LOAD.encode(), params)
            log(f"tweets {hi:,}/{rows:,} ({time.perf_counter() - start:.0f} s)")
        params = {"alerts": 7 * 48, "group": GROUP, "topic": TOPIC, "per_partition": rows // 6}
        for statement in _DERIVE:
            conn.execute(statement.encode(), params if "%(" in statement else None)
        log(f"tweet_coins, coin_minute, alerts ({time.perf_counter() - start:.0f} s)")
        for statement in _CREATE_INDEXES:
            conn.execute(statement.encode())
        log(f"indexes ({time.perf_counter() - start:.0f} s)")
        conn.execute("vacuum analyze")
    return time.perf_counter() - start


def _time(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm: the dashboard serves from a warm cache too
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18] if len(samples) > 1 else 0.0


def run_queries(url: str, runs: int) -> dict[str, Any]:
    """Every dashboard query, for every range, `runs` times; per query max/p95 and refreshes."""
    per_query: dict[str, dict[str, float]] = {}
    refresh: dict[str, dict[str, float]] = {}
    with psycopg.connect(url, autocommit=True, options=queries.SESSION_OPTIONS) as conn:
        top = list(queries.coin_totals(conn, queries.ALL_TIME)["coin"].head(12))
        cases: dict[str, Callable[[timedelta], object]] = {
            "totals": lambda w: queries.totals(conn, w),
            "timeline": lambda w: queries.timeline(conn, w, queries.bucket_seconds(w)),
            "coin_totals": lambda w: queries.coin_totals(conn, w),
            "coin_buckets": lambda w: queries.coin_buckets(conn, top, w, queries.bucket_seconds(w)),
            "latest_tweets": lambda w: queries.latest_tweets(conn, w, 200),
            "latest_tweets_coin": lambda w: queries.latest_tweets(conn, w, 200, "SOL"),
            "wordcloud_texts": lambda w: queries.latest_tweets(conn, w, WORDCLOUD_ROWS),
            "recent_alerts": lambda w: queries.recent_alerts(conn, w),
        }
        fixed: dict[str, Callable[[], object]] = {
            "first_minute": lambda: queries.first_minute(conn),
            "tweet_rate": lambda: queries.tweet_rate(conn),
            "store_state": lambda: queries.store_state(conn, GROUP, TOPIC),
        }
        for name, fn in fixed.items():
            samples = _time(fn, runs)
            per_query[name] = {"all ranges": max(samples), "p95": _p95(samples)}
        for range_key, window in queries.RANGES.items():
            for name, case in cases.items():
                samples = _time(functools.partial(case, window), runs)
                entry = per_query.setdefault(name, {})
                entry[range_key] = max(samples)
                entry["p95"] = max(entry.get("p95", 0.0), _p95(samples))

            def full(range_key: str = range_key, window: Any = window) -> None:
                load_snapshot(conn, range_key, group=GROUP, topic=TOPIC, drill_coins=top[:3])
                queries.latest_tweets(conn, window, WORDCLOUD_ROWS)

            samples = _time(full, runs)
            refresh[range_key] = {"max": max(samples), "p95": _p95(samples)}
            log(f"range {range_key}: refresh p95 {refresh[range_key]['p95']:.0f} ms")
    return {"queries": per_query, "refresh": refresh}


def measure(
    settings: Settings, rows: int = 10_000_000, runs: int = 20, dsn: str | None = None
) -> dict[str, Any]:
    """Load `rows` tweets into a scratch database next to `dsn` (default: the configured one),
    time every dashboard query."""
    with bench_database(settings, dsn) as url:
        load_s = load(url, rows)
        with psycopg.connect(url) as conn:
            size = conn.execute("select pg_size_pretty(pg_database_size(current_database()))")
            db_size = str(size.fetchone()[0])  # type: ignore[index]
        timings = run_queries(url, runs)
    per_query = timings["queries"]
    worst = {
        name: max(v for k, v in entry.items() if k != "p95") for name, entry in per_query.items()
    }
    return {
        "dashboard_rows": rows,
        "dashboard_runs": runs,
        "dashboard_load_s": round(load_s, 1),
        "dashboard_db_size": db_size,
        "dashboard_query_ms_max": round(max(worst.values()), 1),
        "dashboard_query_ms_p95": round(max(e["p95"] for e in per_query.values()), 1),
        "dashboard_refresh_ms": round(max(r["p95"] for r in timings["refresh"].values()), 1),
        "dashboard_refresh_ms_max": round(max(r["max"] for r in timings["refresh"].values()), 1),
        "dashboard_queries": per_query,
        "dashboard_refresh": timings["refresh"],
    }


def table(result: dict[str, Any]) -> str:
    """The per-query figures as a Markdown table (max ms per range, then p95 over all)."""
    ranges = list(queries.RANGES)
    lines = [
        "| query | " + " | ".join(f"max {r}" for r in ranges) + " | p95 (all ranges) |",
        "|---|" + "---:|" * (len(ranges) + 1),
    ]
    for name, entry in result["dashboard_queries"].items():
        if "all ranges" in entry:
            cells = [f"{entry['all ranges']:.1f} (any range)"] + [""] * (len(ranges) - 1)
        else:
            cells = [f"{entry[r]:.1f}" for r in ranges]
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {entry['p95']:.1f} |")
    refresh = result["dashboard_refresh"]
    lines.append(
        "| **full refresh** | " + " | ".join(f"**{refresh[r]['max']:.0f}**" for r in ranges)
        + f" | **{max(v['p95'] for v in refresh.values()):.0f}** |"
    )  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """CLI: measure and print the JSON and the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dsn", help="PostgreSQL URL (default: the configured database)")
    args = parser.parse_args()
    from cryptosent.config import get_settings

    result = measure(get_settings(), rows=args.rows, runs=args.runs, dsn=args.dsn)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
