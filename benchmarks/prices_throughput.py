"""The price path's throughput while the tweet path runs, through the real CLI and stack.

Run (the local stack up): ``.venv/bin/python -m benchmarks.prices_throughput [--prices 400000]
[--tweets 200000]`` (numbers go to docs/benchmarks.md by hand).

On fresh topics, a fresh database and a fresh S3 prefix: ``cryptosent prices replay`` of a file
of `--prices` trades (10 coins, 5 ms apart) and ``cryptosent generate --count`` `--tweets`, then
one ``cryptosent process --until-idle -v`` drains both. The price rate is what `process` reports
("messages/s while busy": from its first price batch to its last), with the CPU time of the
price stream's thread (its Python work: decoding, bars, PostgreSQL, Parquet); the tweet rate
is the rows committed between the first and the last tweet batch (`stored_at`), as in
`cryptosent bench`.
The tweet path must still be busy when the price path ends, or the figure is not "while the
tweet path runs": the script says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from psycopg import sql

from cryptosent.config import Settings
from cryptosent.kafka import admin_config
from cryptosent.sinks.migrations import migrate
from cryptosent.stack.manager import Stack

COINS = ["BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "LTC", "DOT"]


def price_file(path: Path, count: int) -> None:
    """count trades, 5 ms apart, round-robin over COINS."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            ts = (start + timedelta(milliseconds=5 * i)).isoformat().replace("+00:00", "Z")
            out.write(
                json.dumps(
                    {
                        "coin": COINS[i % len(COINS)],
                        "ts": ts,
                        "price": 100 + (i % 997) / 10,
                        "size": (i % 16) / 8,
                        "source": "bench",
                    }
                )
                + "\n"
            )


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `cryptosent ARGS`; fail loudly."""
    result = subprocess.run(
        [sys.executable, "-m", "cryptosent", *args],
        capture_output=True, text=True, env=env, check=False, timeout=1800,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"cryptosent {' '.join(args)} failed:\n{result.stderr}")
    return result


def main() -> None:
    """Measure and print the figures (JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=int, default=400_000)
    parser.add_argument("--tweets", type=int, default=200_000)
    args = parser.parse_args()

    settings = Settings()
    stack = Stack(settings)
    tag = uuid.uuid4().hex[:8]
    tweets, prices = f"bench-tweets-{tag}", f"bench-prices-{tag}"
    admin = AdminClient(admin_config(settings))
    topics = [tweets, f"{tweets}.dlq", prices, f"{prices}.dlq"]
    for future in admin.create_topics(
        [NewTopic(t, num_partitions=1 if t.endswith(".dlq") else 6) for t in topics]
    ).values():
        future.result(timeout=30)
    database = f"bench_prices_{tag}"
    with psycopg.connect(stack.postgres.admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} owner cryptosent").format(sql.Identifier(database))
        )
    url = settings.database_dsn().rsplit("/", 1)[0] + "/" + database
    migrate(url)
    env = dict(
        os.environ,
        CRYPTOSENT_TOPIC=tweets,
        CRYPTOSENT_DLQ_TOPIC=f"{tweets}.dlq",
        CRYPTOSENT_PRICES_TOPIC=prices,
        CRYPTOSENT_PRICES_DLQ_TOPIC=f"{prices}.dlq",
        CRYPTOSENT_DATABASE_URL=url,
        CRYPTOSENT_LAKE_URL=f"s3://{settings.stack_s3_bucket}/bench-{tag}",
        CRYPTOSENT_CONSUMER_GROUP=f"bench-{tag}",
        CRYPTOSENT_METRICS_PORT="0",
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "prices.jsonl"
            price_file(path, args.prices)
            cli(env, "prices", "replay", str(path))
        cli(env, "generate", "--count", str(args.tweets), "--rate", "max", "--seed", "7")
        started = time.monotonic()
        result = cli(env, "process", "--until-idle", "-v")
        wall = time.monotonic() - started
        found = re.search(r"([\d,]+) messages/s while busy", result.stdout)
        cpu = re.search(r"price stream: \d+ messages, ([\d.]+) CPU s on its thread", result.stderr)
        assert found and cpu, (result.stdout, result.stderr)
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "select count(*), extract(epoch from max(stored_at) - min(stored_at)) from tweets"
            ).fetchone()
            trades = conn.execute("select sum(trades) from price_minute").fetchone()
        assert row is not None and trades is not None
        price_rate = float(found[1].replace(",", ""))
        tweet_count, tweet_span = int(row[0]), float(row[1])
        figures = {
            "prices": args.prices,
            "tweets": args.tweets,
            "price_trades_stored": int(trades[0]),
            "prices_per_s_while_busy": round(price_rate),
            "price_busy_s": round(args.prices / price_rate, 2),
            "price_thread_cpu_s_per_1000": round(1000 * float(cpu[1]) / args.prices, 4),
            "tweets_per_s_sustained": round(tweet_count / tweet_span) if tweet_span else None,
            "tweet_busy_s": round(tweet_span, 2),
            "process_wall_s": round(wall, 2),
            "tweets_busy_longer": tweet_span >= args.prices / price_rate,
            "load_average_1m": os.getloadavg()[0],
        }
        print(json.dumps(figures, indent=2))
    finally:
        for future in admin.delete_topics(topics).values():
            future.result(timeout=30)
        with psycopg.connect(stack.postgres.admin_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(database)))


if __name__ == "__main__":
    main()
