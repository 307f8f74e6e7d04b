"""One processor's throughput with campaign detection off, then on, on the same 50,000 tweets.

Run (the local stack up): ``.venv/bin/python benchmarks/campaign_onoff.py [--count 50000]``
(about a minute). A fresh topic gets ``generate --rate max`` mock tweets; ``process
--until-idle`` then drains it twice, into two fresh databases under two consumer groups, with
``CRYPTOSENT_CAMPAIGN_DETECTION=false`` and ``true``. Reported: tweets/s as the stored rows'
``stored_at`` span says (first row to last, start-up excluded), and the CPU seconds of the
processor process. Topic, databases and lake folders are removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid

import psycopg
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from psycopg import sql

from cryptosent.config import Settings
from cryptosent.kafka import admin_config
from cryptosent.sinks.migrations import migrate
from cryptosent.stack.manager import Stack


def main() -> None:
    """Run both drains and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per drain")
    args = parser.parse_args()
    settings = Settings()
    admin = Stack(settings).postgres.admin_conninfo()
    topic = f"onoff-{uuid.uuid4().hex[:8]}"
    client = AdminClient(admin_config(settings))
    for future in client.create_topics(
        [NewTopic(topic, num_partitions=6), NewTopic(f"{topic}.dlq", num_partitions=1)]
    ).values():
        future.result(30)
    names: list[str] = []
    lakes: list[str] = []

    def env(database: str, detect: str) -> dict[str, str]:
        lakes.append(f"/tmp/{topic}-{detect}")
        return dict(
            os.environ, CRYPTOSENT_TOPIC=topic, CRYPTOSENT_DLQ_TOPIC=f"{topic}.dlq",
            CRYPTOSENT_DATABASE_URL=database, CRYPTOSENT_LAKE_URL=f"file://{lakes[-1]}",
            CRYPTOSENT_CONSUMER_GROUP=f"{topic}-{detect}", CRYPTOSENT_METRICS_PORT="0",
            CRYPTOSENT_CAMPAIGN_DETECTION=detect,
        )  # fmt: skip

    try:
        generate = [sys.executable, "-m", "cryptosent", "generate", "--count", str(args.count),
                    "--rate", "max", "--seed", "3"]  # fmt: skip
        done = subprocess.run(generate, env=env(settings.database_dsn(), "true"),
                              capture_output=True, text=True, check=True)  # fmt: skip
        print(done.stdout.strip().splitlines()[-1])
        for detect in ("false", "true"):
            name = f"onoff_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("create database {} owner cryptosent").format(sql.Identifier(name))
                )
            names.append(name)
            database = settings.database_dsn().rsplit("/", 1)[0] + "/" + name
            migrate(database)
            before, started = os.times(), time.monotonic()
            note = ""
            try:
                subprocess.run(
                    [sys.executable, "-m", "cryptosent", "process", "--until-idle"],
                    env=env(database, detect), capture_output=True, text=True,
                    timeout=args.timeout, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                note = " (did not exit by itself: killed at the timeout)"
            after = os.times()
            cpu = after.children_user + after.children_system
            cpu -= before.children_user + before.children_system
            with psycopg.connect(database) as conn:
                row = conn.execute(
                    "select count(*), extract(epoch from max(stored_at) - min(stored_at))"
                    " from tweets"
                ).fetchone()
            assert row is not None
            rows, span = int(row[0]), float(row[1])
            print(
                f"detection {detect:<5}: {rows:,} rows, {rows / span:,.0f} tweets/s "
                f"(stored_at span {span:.1f} s), processor CPU {cpu:.1f} s, "
                f"wall {time.monotonic() - started:.1f} s{note}"
            )
    finally:
        for name in names:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
        for future in client.delete_topics([topic, f"{topic}.dlq"]).values():
            future.result(30)
        for lake in lakes:
            shutil.rmtree(lake, ignore_errors=True)


if __name__ == "__main__":
    main()
