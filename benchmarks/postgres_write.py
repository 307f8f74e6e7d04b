"""PostgreSQL's CPU per 1,000 stored tweets for the PostgreSQL sink's write, split by step.

Run (the local stack up): ``.venv/bin/python -m benchmarks.postgres_write [--count 100000]
[--batch 5000] [--rate 600000] [--stored 300000] [--rounds 3]`` (numbers go to
docs/benchmarks.md by hand).

Mock tweets with campaigns (5 %) spread over 6 Kafka partitions, stamped ``--rate`` tweets a
minute up to now (so they land in today's day partition), are scored and flagged the way the
processor does (`transform.Scorer`, then the campaign stage without peers), and written in a
fresh migrated database holding ``--stored`` older tweets of today (so indexes have their depth
and the planner its statistics), batch after batch, one transaction per batch, with the sink's
own statements by both of its paths: ``copy`` (the fast path: COPY straight into `tweets` in a
savepoint, the mentions by a second COPY, then the batch's minute rows, computed in Arrow, by a
third COPY and one upsert) and ``guarded`` (COPY
into the staging table, then the insert statement that skips stored keys). Steps: the offsets,
the COPY, the mentions' COPY (the fast path only), the statement after them (the minute upsert
and its hourly rollup trigger; the guarded one also inserts the tweets and their mentions), the
batch's revisions, the commit. The server backend's CPU comes
from ``/proc/<pid>/schedstat`` (the benchmark runs on the server's machine, as root or as its
user), read between the steps; the client's from ``time.thread_time``. A last pass per path runs
the statement after the COPY under ``EXPLAIN (ANALYZE, BUFFERS)`` to split it into its parts.
The first ``--batch`` tweets warm the caches and are not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cryptosent import aggregates
from cryptosent.analysis.campaigns import CampaignDetector
from cryptosent.batch import ScoredBatch
from cryptosent.config import Settings
from cryptosent.processor.campaigns import CampaignStage
from cryptosent.processor.transform import Decoded, Scorer
from cryptosent.sinks import postgres
from cryptosent.sinks.database import NO_JIT
from cryptosent.sinks.migrations import migrate
from cryptosent.sinks.offsets import OffsetStore
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import CampaignMock
from cryptosent.stack.postgres import PostgresServer

PARTITIONS = 6
PATHS = ("copy", "guarded")
STEPS = ("offsets", "copy", "mentions", "statement", "revise", "commit")
PARTS = ("tweets", "mentions", "minutes", "rollup trigger")
# older tweets of today, as a day's partition holds them when the batches arrive
_PREFILL = """
insert into tweets (id, created_at, text, author_id, author_username, author_followers,
    author_verified, lang, source, compound, pos, neu, neg, label, confidence, vader_compound,
    vader_pos, vader_neu, vader_neg, vader_label, coins, spam, kafka_partition, kafka_offset)
select to_char(g, 'FM0000000000000000000'),
    date_trunc('day', now()) + mod(g, 3600) * '1 s'::interval,
    'stored post ' || g || ' about $BTC and $ETH', 'a' || mod(g, 3000), 'user' || mod(g, 3000),
    mod(g, 10000), false, 'en', 'mock', 0.1, 0.2, 0.7, 0.1, 'neutral', 0.9, 0.1, 0.2, 0.7, 0.1,
    'neutral', array['BTC', 'ETH'], false, 99, g
from generate_series(1, %(rows)s) g;
insert into tweet_coins (coin, tweet_id, created_at)
select coin, id, created_at from tweets, unnest(coins) as coin;
analyze tweets;
analyze tweet_coins;
"""


def scored_batches(count: int, batch: int, rate_per_min: float, seed: int = 7) -> list[ScoredBatch]:
    """Mock tweets with campaigns, scored and flagged as the processor does, in batches."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=count * 60 / rate_per_min)
    done = [0]

    def clock() -> datetime:
        return start + timedelta(seconds=done[0] * 60 / rate_per_min)

    feed = CampaignMock(MockGenerator(seed=seed, clock=clock), 0.05, clock=clock)
    scorer = Scorer()
    stage = CampaignStage(scorer, CampaignDetector())
    next_offset = [0] * PARTITIONS
    out: list[ScoredBatch] = []
    while done[0] < count:
        tweets = feed.read(min(batch, count - done[0]))
        decoded = Decoded(tweets=tweets, raw=[b"{}"] * len(tweets))
        for i in range(len(tweets)):
            partition = (done[0] + i) % PARTITIONS
            offset = next_offset[partition]
            next_offset[partition] += 1
            decoded.partitions.append(partition)
            decoded.offsets.append(offset)
            first = decoded.ranges.get(partition, (offset, offset))[0]
            decoded.ranges[partition] = (first, offset)
        out.append(stage(decoded))
        done[0] += len(tweets)
    return out


class BackendClock:
    """CPU seconds a server backend has run so far (``/proc/<pid>/schedstat``, nanoseconds)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("select pg_backend_pid()").fetchone()
        assert row is not None
        self.path = Path(f"/proc/{row[0]}/schedstat")

    def __call__(self) -> float:
        return int(self.path.read_text().split()[0]) / 1e9


@contextmanager
def scratch_database(settings: Settings, admin: str, stored: int) -> Iterator[str]:
    """A fresh migrated database with `stored` tweets of today (dropped on exit); its URL."""
    name = f"bench_pgwrite_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} owner cryptosent").format(sql.Identifier(name)))
    try:
        url = settings.database_dsn().rsplit("/", 1)[0] + "/" + name
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in _PREFILL.split(";")[:-1]:
                conn.execute(
                    statement.encode(), {"rows": stored} if "%(rows)s" in statement else None
                )
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def connect(url: str) -> psycopg.Connection[Any]:
    """A connection set up as the sink's (`postgres.open_sink`)."""
    conn = psycopg.connect(url)
    conn.execute("set time zone 'UTC'")
    for statement in (*postgres.SESSION_SETUP, NO_JIT):
        conn.execute(statement.encode())
    conn.commit()
    return conn


def write_steps(
    conn: psycopg.Connection[Any],
    clock: Callable[[], float],
    offsets: OffsetStore,
    batch: ScoredBatch,
    path: str,
) -> tuple[dict[str, float], float]:
    """One batch written as `PostgresSink.write` does, by one path; the backend's CPU seconds per
    step and the client's CPU seconds (rendering included)."""
    server: dict[str, float] = {}
    client = time.thread_time()
    mark = clock()

    def step(name: str) -> None:
        nonlocal mark
        now = clock()
        server[name] = now - mark
        mark = now

    offsets.advance(conn, postgres.PostgresSink.name, batch.ranges)
    step("offsets")
    rows = postgres.to_copy_binary(batch.table)
    with conn.cursor() as cur:
        if path == "copy":
            with conn.transaction():
                with cur.copy(postgres._COPY_TWEETS) as copy:
                    copy.write(rows)
                step("copy")
                with cur.copy(postgres._COPY_MENTIONS) as copy:
                    copy.write(postgres.to_copy_binary(postgres.mention_rows(batch.table)))
                step("mentions")
                with cur.copy(postgres._COPY_MINUTES) as copy:
                    copy.write(postgres.to_copy_binary(aggregates.minute_rows(batch.table)))
                cur.execute(postgres._ADD_MINUTES)
        else:
            with cur.copy(postgres._COPY) as copy:
                copy.write(rows)
            step("copy")
            step("mentions")
            cur.execute(postgres._INSERT_BATCH).fetchone()
        step("statement")
        if batch.revisions:
            postgres.revise(cur, batch.revisions)
        step("revise")
    conn.commit()
    step("commit")
    return server, time.thread_time() - client


def measure_write(url: str, batches: list[ScoredBatch], path: str) -> dict[str, float]:
    """CPU ms per 1,000 tweets of each step (server) and of the client, batches after the
    first; also the binary COPY rendering alone."""
    offsets = OffsetStore("bench", "bench")
    totals = dict.fromkeys((*STEPS, "client", "render"), 0.0)
    counted = 0
    with connect(url) as conn:
        clock = BackendClock(conn)
        for i, batch in enumerate(batches):
            rendered = time.thread_time()
            postgres.to_copy_binary(batch.table)
            render = time.thread_time() - rendered
            server, client = write_steps(conn, clock, offsets, batch, path)
            if i == 0:
                continue
            counted += batch.size
            for name, seconds in server.items():
                totals[name] += seconds
            totals["client"] += client
            totals["render"] += render
    return {name: seconds / counted * 1e6 for name, seconds in totals.items()}


def _parts(plan: dict[str, Any]) -> dict[str, float]:
    """Milliseconds of a statement's parts in one EXPLAIN ANALYZE (JSON) result."""
    names = {"CTE ins": "tweets", "CTE mentions": "mentions", "CTE minutes": "minutes"}
    out = dict.fromkeys(PARTS, 0.0)

    def visit(node: dict[str, Any]) -> None:
        name = names.get(node.get("Subplan Name", ""))
        if name is not None:
            out[name] += float(node["Actual Total Time"])
        for child in node.get("Plans", []):
            visit(child)

    visit(plan["Plan"])
    if not any(out.values()):  # the fast path's upsert of minute rows: no CTEs, all "minutes"
        out["minutes"] = float(plan["Plan"]["Actual Total Time"])
    out["rollup trigger"] = sum(float(t["Time"]) for t in plan.get("Triggers", []))
    return out


def explain(url: str, batches: list[ScoredBatch], path: str) -> tuple[dict[str, float], str]:
    """Executor milliseconds per 1,000 tweets of the parts of the statement after the COPY, and
    the text plan of the last batch."""
    copy, statement = (
        (postgres._COPY_TWEETS, postgres._ADD_MINUTES)
        if path == "copy"
        else (postgres._COPY, postgres._INSERT_BATCH)
    )
    offsets = OffsetStore("bench", "bench")
    totals = dict.fromkeys(PARTS, 0.0)
    counted = 0
    text = ""
    with connect(url) as conn, conn.cursor() as cur:
        for i, batch in enumerate(batches):
            offsets.advance(conn, postgres.PostgresSink.name, batch.ranges)
            with cur.copy(copy) as writer:
                writer.write(postgres.to_copy_binary(batch.table))
            if path == "copy":
                with cur.copy(postgres._COPY_MENTIONS) as writer:
                    writer.write(postgres.to_copy_binary(postgres.mention_rows(batch.table)))
                with cur.copy(postgres._COPY_MINUTES) as writer:
                    writer.write(postgres.to_copy_binary(aggregates.minute_rows(batch.table)))
            last = i == len(batches) - 1
            kind = "text" if last else "json"
            rows = cur.execute(f"explain (analyze, buffers, format {kind}) {statement}".encode())
            if last:
                text = "\n".join(str(r[0]) for r in rows.fetchall())
            elif i > 0:
                row = rows.fetchone()
                assert row is not None
                plan = row[0] if isinstance(row[0], list) else json.loads(str(row[0]))
                counted += batch.size
                for name, ms in _parts(plan[0]).items():
                    totals[name] += ms
            conn.commit()
    return {name: ms / counted * 1000 for name, ms in totals.items()}, text


def main() -> None:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=600_000, help="tweets a minute")
    parser.add_argument("--stored", type=int, default=300_000, help="tweets stored before")
    parser.add_argument("--rounds", type=int, default=3, help="fresh databases per path")
    parser.add_argument("--plan", action="store_true", help="print the last batch's plans")
    args = parser.parse_args()

    settings = Settings()
    admin = PostgresServer(settings).admin_conninfo()
    batches = scored_batches(args.count + args.batch, args.batch, args.rate)
    revisions = sum(len(b.revisions) for b in batches)
    print(f"{args.count:,} tweets counted, batches of {args.batch:,}, {args.rate:,.0f} tweets/min, "
          f"{args.stored:,} stored before, {revisions} revisions")  # fmt: skip
    rounds: dict[str, list[dict[str, float]]] = {path: [] for path in PATHS}
    for _ in range(args.rounds):  # the paths alternate, so a change of load hits both
        for path in PATHS:
            with scratch_database(settings, admin, args.stored) as url:
                rounds[path].append(measure_write(url, batches, path))
    print("CPU ms per 1,000 tweets, one figure per round")
    for path, results in rounds.items():
        print(f"{path} path")
        for name in (*STEPS, "client", "render"):
            label = {"client": "client (all)", "render": "  to_copy_binary"}.get(
                name, f"server {name}"
            )
            print(f"  {label:<20}" + "".join(f"{r[name]:>8.2f}" for r in results))
        server = [sum(r[s] for s in STEPS) for r in results]
        print(f"  {'server, all steps':<20}" + "".join(f"{s:>8.2f}" for s in server)
              + f"   (median {statistics.median(server):.2f})")  # fmt: skip
    for path in PATHS:
        with scratch_database(settings, admin, args.stored) as url:
            parts, plan = explain(url, batches, path)
        print(f"{path} path: the statement after the COPY under EXPLAIN ANALYZE, ms per 1,000")
        for name, ms in parts.items():
            print(f"  {name:<20}{ms:>8.2f}")
        if args.plan:
            print(plan)


if __name__ == "__main__":
    main()
