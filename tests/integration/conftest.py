"""Integration fixtures: the real local stack (Kafka, PostgreSQL, versitygw), started if needed.

Each test gets its own topics and its own database, so tests never see each other's data and
a developer's running demo is left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.fs as pafs
import pytest
from psycopg import sql

from cryptosent import aggregates
from cryptosent.config import Settings
from cryptosent.kafka import admin_config
from cryptosent.sinks.migrations import migrate
from cryptosent.stack.manager import Stack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The local stack, started for the session unless it already runs."""
    os.chdir(REPO)  # settings and .stack/ are relative to the repository root
    settings = Settings()
    stack = Stack(settings)
    started_here = not all(row.up for row in stack.status())
    if started_here:
        stack.up()
    yield stack
    if started_here and os.environ.get("CRYPTOSENT_KEEP_STACK") != "1":
        stack.down()


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    """Settings with the stack's generated credentials loaded."""
    return Settings()


@pytest.fixture
def topic(settings: Settings) -> Iterator[str]:
    """A fresh `tweets`-like topic (6 partitions) plus its `.dlq`, and the test's own empty
    `prices` topics (`<name>-prices`, `<name>-prices.dlq`: `process` drains prices too, and the
    shared `prices` topic holds whatever demos left there); all deleted afterwards."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    name = f"test-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(admin_config(settings))
    names = [name, f"{name}.dlq", f"{name}-prices", f"{name}-prices.dlq"]
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=1 if n.endswith(".dlq") else 6) for n in names]
    )
    for future in futures.values():
        future.result(timeout=30)
    yield name
    for future in admin.delete_topics(names).values():
        future.result(timeout=30)


@contextmanager
def fresh_database(settings: Settings, stack: Stack) -> Iterator[str]:
    """A fresh, migrated database owned by the app role; its URL; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    admin = stack.postgres.admin_conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} owner cryptosent").format(sql.Identifier(name)))
    url = settings.database_dsn().rsplit("/", 1)[0] + "/" + name
    migrate(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def database_url(settings: Settings, stack: Stack) -> Iterator[str]:
    """A fresh, migrated database owned by the app role; its URL; dropped afterwards."""
    with fresh_database(settings, stack) as url:
        yield url


class Pipeline:
    """Runs the CLI against one test's topic, database and lake; reads back what was stored."""

    def __init__(self, settings: Settings, topic: str, database_url: str, lake_url: str) -> None:
        self.settings = settings
        self.topic = topic
        self.database_url = database_url
        self.lake_url = lake_url
        self.env = dict(
            os.environ,
            CRYPTOSENT_TOPIC=topic,
            CRYPTOSENT_DLQ_TOPIC=f"{topic}.dlq",
            CRYPTOSENT_PRICES_TOPIC=f"{topic}-prices",
            CRYPTOSENT_PRICES_DLQ_TOPIC=f"{topic}-prices.dlq",
            CRYPTOSENT_DATABASE_URL=database_url,
            CRYPTOSENT_LAKE_URL=lake_url,
            CRYPTOSENT_CONSUMER_GROUP=f"group-{topic}",
            CRYPTOSENT_METRICS_PORT="0",
            CRYPTOSENT_LAKE_FLUSH_SECONDS="2",
            CRYPTOSENT_BATCH_SIZE="2000",
        )
        self.started: list[subprocess.Popen[str]] = []

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `cryptosent ARGS` to completion."""
        return subprocess.run(
            [sys.executable, "-m", "cryptosent", *args],
            capture_output=True, text=True, timeout=timeout, env=self.env, check=False,
        )  # fmt: skip

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start `cryptosent ARGS` in the background (killed at teardown if still running)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "cryptosent", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env,
        )  # fmt: skip
        self.started.append(proc)
        return proc

    def kill_leftovers(self) -> None:
        """Kill background processes a failed test left running."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)

    def query(self, sql_text: str) -> list[tuple[object, ...]]:
        """Rows of a query on the test database."""
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql_text.encode()).fetchall()

    def scalar(self, sql_text: str) -> object:
        """The single value of a query."""
        return self.query(sql_text)[0][0]

    def coin_minute_mismatches(self) -> int:
        """Rows where coin_minute differs from a recomputation from tweets (0 = exact)."""
        recomputed = aggregates.minute_rebuild()
        return int(str(self.scalar(aggregates.mismatches(recomputed))))

    def coin_hour_mismatches(self) -> int:
        """Rows where the hourly rollup differs from coin_minute summed by hour (0 = exact)."""
        by_hour = (
            f"select coin, date_trunc('hour', minute, 'UTC') as minute, {aggregates.summed()}"
            " from coin_minute group by 1, 2"
        )
        stored = f"select coin, hour as minute, {aggregates.COLUMNS} from coin_hour"
        return int(str(self.scalar(aggregates.mismatches(by_hour, stored))))

    def lake_tables(self, layer: str) -> list[str]:
        """Keys of every object under <lake>/<layer>/."""
        location = self._location()
        selector = pafs.FileSelector(
            f"{location.base}/{layer}", recursive=True, allow_not_found=True
        )
        return sorted(
            info.path[len(location.base) + 1 :]
            for info in location.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        )

    def live_lake_tables(self, layer: str) -> list[str]:
        """Keys of the live objects under <lake>/<layer>/ (what readers read: compacted objects,
        not the ones they replace; `storage.lake_files`)."""
        from cryptosent.storage.lake_files import live_objects

        return live_objects(self._location(), layer)

    def read_object(self, key: str) -> bytes:
        """The bytes of one lake object."""
        location = self._location()
        with location.fs.open_input_stream(f"{location.base}/{key}", compression=None) as stream:
            return bytes(stream.read())

    def _location(self) -> Any:
        from cryptosent.sinks.lake import lake_location

        return lake_location(self.settings, self.lake_url)


@pytest.fixture
def pipeline(settings: Settings, topic: str, database_url: str) -> Iterator[Pipeline]:
    """A pipeline whose lake is a fresh prefix in the local S3 server's bucket."""
    p = Pipeline(settings, topic, database_url, f"s3://{settings.stack_s3_bucket}/{topic}")
    yield p
    p.kill_leftovers()


@pytest.fixture
def file_pipeline(
    settings: Settings, topic: str, database_url: str, tmp_path: Path
) -> Iterator[Pipeline]:
    """A pipeline whose lake is a local directory."""
    p = Pipeline(settings, topic, database_url, f"file://{tmp_path / 'lake'}")
    yield p
    p.kill_leftovers()
