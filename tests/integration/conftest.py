"""Integration fixtures: the real local stack (Kafka, PostgreSQL, versitygw), started if needed.

Each test gets its own topics and its own database, so tests never see each other's data and
a developer's running demo is left alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cryptosent.config import Settings
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
    """A fresh `tweets`-like topic (6 partitions) plus its `.dlq`, deleted afterwards."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    name = f"test-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(settings.kafka_config())
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=6), NewTopic(f"{name}.dlq", num_partitions=1)]
    )
    for future in futures.values():
        future.result(timeout=30)
    yield name
    for future in admin.delete_topics([name, f"{name}.dlq"]).values():
        future.result(timeout=30)


@pytest.fixture
def database_url(settings: Settings, stack: Stack) -> Iterator[str]:
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
