"""The campaign stage's cost in the processor, per 1,000 tweets, against the real PostgreSQL.

Run (the local stack up): ``.venv/bin/python benchmarks/campaign_stage.py [--count 40000]
[--batch 5000] [--rate 20000]`` (numbers go to docs/campaigns.md and docs/benchmarks.md by hand).

Mock tweets with campaigns (5 %, the mock's spam bots about 4 %), stamped at ``--rate`` tweets a
minute, go through what a processor does per batch, in a fresh database: score (the default
analyzer and VADER), the campaign stage (catch up with the rows stored since the last batch,
observe, flags into the table), store the rows (COPY + insert + aggregates), and apply the
batch's revisions with their aggregate change. Reported per 1,000 tweets, wall milliseconds
(best of the batches after the first two, and the mean): the stage and its parts beside scoring
and storing, so the stage's share of a processor's work is read off directly.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from cryptosent.analysis.campaigns import CampaignDetector
from cryptosent.batch import ScoredBatch
from cryptosent.config import Settings
from cryptosent.processor.campaigns import CampaignStage, PeerPosts
from cryptosent.processor.transform import Decoded, Scorer
from cryptosent.runtime import Backoff, Retry
from cryptosent.sinks.database import Database
from cryptosent.sinks.migrations import migrate
from cryptosent.sinks.offsets import OffsetStore
from cryptosent.sinks.postgres import SESSION_SETUP, PostgresSink, revise
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import CampaignMock
from cryptosent.stack.manager import Stack

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def batches(count: int, batch: int, rate_per_min: float, seed: int = 4) -> list[Decoded]:
    """Mock tweets with campaigns as decoded batches of one partition."""
    step = [0]

    def clock() -> datetime:
        return START + timedelta(seconds=step[0] * batch * 60 / rate_per_min)

    feed = CampaignMock(MockGenerator(seed=seed, clock=clock), 0.05, clock=clock)
    out: list[Decoded] = []
    offset = 0
    while offset < count:
        tweets = feed.read(min(batch, count - offset))
        n = len(tweets)
        out.append(Decoded(tweets=tweets, raw=[b"{}"] * n, partitions=[0] * n,
                           offsets=list(range(offset, offset + n)),
                           ranges={0: (offset, offset + n - 1)}))  # fmt: skip
        offset += n
        step[0] += 1
    return out


CPU: list[float] = []  # this process's CPU seconds of the last timed call


def timed(action: Callable[[], object]) -> tuple[float, object]:
    """Wall seconds of the call and its result (its CPU seconds go to CPU)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - started, result


def main() -> None:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=20_000, help="tweets a minute")
    args = parser.parse_args()

    settings = Settings()
    admin = Stack(settings).postgres.admin_conninfo()
    name = f"bench_campaigns_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} owner cryptosent").format(sql.Identifier(name)))
    dsn = settings.database_dsn().rsplit("/", 1)[0] + "/" + name
    try:
        migrate(dsn)
        run(dsn, args.count, args.batch, args.rate)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def run(dsn: str, count: int, batch: int, rate: float) -> None:
    """Time each part per batch; print per-1,000-tweet figures."""
    decoded = batches(count, batch, rate)
    scorer = Scorer()
    detector = CampaignDetector()
    peers = PeerPosts(Database(dsn), detector.window, detector.max_posts)
    scored: dict[int, ScoredBatch] = {}
    stage = CampaignStage(lambda d: scored[id(d)], detector, peers)
    sink = PostgresSink(
        Database(dsn, setup=list(SESSION_SETUP)),
        OffsetStore("bench", "bench"),
        Retry(Backoff.exponential(initial=0.5, maximum=1.0)),
    )
    keys = ("score", "stage", "catch-up", "observe", "store", "revise")
    parts: dict[str, list[float]] = {k: [] for k in keys}
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    revisions = 0
    for d in decoded:
        n = len(d.tweets)
        CPU.clear()
        t_score, batch_out = timed(lambda d=d: scorer(d))  # type: ignore[misc]
        assert isinstance(batch_out, ScoredBatch)
        scored[id(d)] = batch_out
        t_catch, _ = timed(stage.catch_up)  # the stage's own catch-up then finds nothing new
        t_stage, flagged = timed(lambda d=d: stage(d))  # type: ignore[misc]
        assert isinstance(flagged, ScoredBatch)
        pending = flagged.revisions
        flagged.revisions = []
        t_store, _ = timed(lambda b=flagged: sink.write(b))  # type: ignore[misc]

        def apply(pending: list[tuple[str, bool, str | None]] = pending) -> None:
            with sink.database.transaction() as conn, conn.cursor() as cur:
                revise(cur, pending)

        c_score, c_catch, c_stage, c_store = CPU[:4]
        t_revise, _ = timed(apply) if pending else (0.0, None)
        c_revise = CPU[-1] if pending else 0.0
        revisions += len(pending)
        per_k = 1000 * 1000 / n  # seconds per batch -> ms per 1,000 tweets
        parts["score"].append(t_score * per_k)
        parts["catch-up"].append(t_catch * per_k)
        parts["stage"].append((t_catch + t_stage) * per_k)
        parts["observe"].append(t_stage * per_k)
        parts["store"].append(t_store * per_k)
        parts["revise"].append(t_revise * per_k)
        for key, value in (("score", c_score), ("catch-up", c_catch),
                           ("stage", c_catch + c_stage), ("observe", c_stage),
                           ("store", c_store), ("revise", c_revise)):  # fmt: skip
            cpu[key].append(value * per_k)
    print(f"{count:,} tweets, batches of {batch:,}, {rate:,.0f} tweets/min, {revisions} revisions")
    print("part                        wall ms/1k: best    mean   CPU ms/1k: best    mean")
    labels = {
        "score": "score (both analyzers)",
        "stage": "campaign stage, all",
        "catch-up": "  catch-up read",
        "observe": "  observe + flags",
        "store": "store rows (PostgreSQL)",
        "revise": "apply revisions",
    }
    for key, label in labels.items():
        wall, mine = parts[key][2:] or parts[key], cpu[key][2:] or cpu[key]
        print(
            f"{label:<28}{min(wall):>16.1f}{statistics.fmean(wall):>8.1f}"
            f"{min(mine):>18.1f}{statistics.fmean(mine):>8.1f}"
        )


if __name__ == "__main__":
    main()
