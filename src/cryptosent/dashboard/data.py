"""Where the page gets its data: one PostgreSQL pool (or the DuckDB lake), short-TTL caches.

Caches are shared by every viewer, so a hundred open tabs cost the database one refresh per TTL.
Failures are never cached: the next refresh tries again, which is how the page recovers by
itself once the database is back.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import streamlit as st
from psycopg_pool import ConnectionPool, PoolTimeout

from cryptosent import kafka
from cryptosent.config import Settings, configure, get_settings
from cryptosent.dashboard import queries
from cryptosent.dashboard.kafka_lag import TopicPositions, topic_positions
from cryptosent.dashboard.snapshot import WORDCLOUD_ROWS, Snapshot, load_snapshot
from cryptosent.dashboard.words import word_stats, wordcloud_png
from cryptosent.errors import TransientError, one_line

LIVE_TTL = 1.0  # below the shortest refresh (2 s), so every refresh sees new rows
WORDCLOUD_SECONDS = 30  # the cloud is costly to draw and changes slowly
KAFKA_SECONDS = 5
LAKE_SECONDS = 30  # the lake is written once a minute by default; reloading often buys nothing
POOL_TIMEOUT = 3.0


class Unavailable(TransientError):
    """The data source cannot answer right now (one line saying which and why)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, service="the dashboard's data source")


_command_line: list[str] | None = None


def use_command_line(argv: Sequence[str]) -> None:
    """Apply the app's options that `cryptosent dashboard` passes after `--` (`--settings FILE`,
    `--source`, `--refresh`); unknown arguments are ignored. Cheap on every rerun."""
    global _command_line
    if _command_line == list(argv):
        return
    _command_line = list(argv)
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--settings", type=Path)
    parser.add_argument("--source", choices=("postgres", "lake"))
    parser.add_argument("--refresh", type=int)
    known, _ = parser.parse_known_args(list(argv))
    if known.settings or known.source or known.refresh:
        configure(
            known.settings, dashboard_source=known.source,
            dashboard_refresh_seconds=known.refresh,
        )  # fmt: skip


def settings() -> Settings:
    """The process settings (read once)."""
    return get_settings()


def source_key() -> str:
    """What the caches are keyed on besides their arguments: the data source, no secrets."""
    s = settings()
    return f"{describe_source(s)} · {s.kafka_bootstrap}/{s.topic}/{s.consumer_group}"


def describe_source(s: Settings) -> str:
    """Where the data comes from, without secrets: 'PostgreSQL user@host:port/db' or the lake."""
    if s.dashboard_source == "lake":
        return f"Parquet lake {s.lake_url} (DuckDB)"
    parts = urlsplit(s.dashboard_dsn())
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    return f"PostgreSQL {parts.username or ''}@{where}"


@st.cache_resource(show_spinner=False)
def _pool(dsn: str) -> ConnectionPool:
    # min_size=0: connections are made on demand, so a database that was down is simply
    # connected to again on the next refresh (see _drop_pool for a pool that failed)
    pool = ConnectionPool(
        dsn,
        min_size=0,
        max_size=4,
        timeout=POOL_TIMEOUT,
        max_idle=300,
        kwargs={"connect_timeout": 3, "options": queries.SESSION_OPTIONS, "autocommit": True},
        check=ConnectionPool.check_connection,
        open=False,
        name="dashboard",
    )
    pool.open(wait=False)
    return pool


def _drop_pool(pool: ConnectionPool) -> None:
    """Forget a pool whose connection failed. psycopg_pool retries a failed connection in the
    background with delays that double (1 s, 2 s, 4 s, ...), and requests queue behind that
    attempt: the page kept saying "unreachable" long after the database was back. The next
    refresh builds a new pool instead, whose first connection attempt is immediate."""
    _pool.clear()
    # closing waits for the pool's worker threads: not on the page's time
    threading.Thread(
        target=pool.close, kwargs={"timeout": 5.0}, name="dashboard-pool-close", daemon=True
    ).start()


@st.cache_resource(show_spinner=False, ttl=LAKE_SECONDS, max_entries=1)
def _lake(lake_url: str, slot: int) -> Any:
    from cryptosent.dashboard.lake import open_lake_db

    return open_lake_db(settings(), lake_url)


@contextmanager
def connection() -> Iterator[queries.Connection]:
    """A connection from the pool (or the lake's DuckDB); Unavailable when there is none."""
    s = settings()
    if s.dashboard_source == "lake":
        from cryptosent.dashboard.lake import LAKE_ERRORS

        try:
            yield _lake(s.lake_url, int(time.time() // LAKE_SECONDS))
        except LAKE_ERRORS as exc:
            raise Unavailable(f"{describe_source(s)}: {one_line(exc)}") from exc
        return
    pool = _pool(s.dashboard_dsn())
    try:
        with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        _drop_pool(pool)
        raise Unavailable(f"{describe_source(s)} is unreachable: {one_line(exc)}") from exc
    except psycopg.Error as exc:
        raise Unavailable(f"{describe_source(s)}: {one_line(exc)}") from exc


@st.cache_data(ttl=LIVE_TTL, show_spinner=False, max_entries=64)
def fetch_snapshot(
    source: str, range_key: str, drill_coins: tuple[str, ...], tweets_coin: str | None
) -> Snapshot:
    """The page's data for one range from `source` (see `source_key`), cached for a second
    and shared by all viewers."""
    s = settings()
    with connection() as conn:
        return load_snapshot(
            conn, range_key, group=s.consumer_group, topic=s.topic,
            drill_coins=drill_coins, tweets_coin=tweets_coin,
        )  # fmt: skip


@st.cache_data(ttl=WORDCLOUD_SECONDS, show_spinner=False, max_entries=16)
def fetch_wordcloud(
    source: str, range_key: str, analyzer: queries.Analyzer, slot: int
) -> bytes | None:
    """The word cloud PNG of the newest tweets in the range, or None without words."""
    with connection() as conn:
        latest = queries.latest_tweets(conn, queries.RANGES[range_key], WORDCLOUD_ROWS)
    column = "compound" if analyzer == "learned" else "vader_compound"
    stats = word_stats(zip(latest["text"], latest[column], strict=True))
    return wordcloud_png(stats) if stats else None


@st.cache_data(ttl=KAFKA_SECONDS, show_spinner=False, max_entries=4)
def fetch_positions(source: str, slot: int) -> TopicPositions | None:
    """Kafka's view of the processor's topic (high watermarks, commits), None if unreachable."""
    s = settings()
    return topic_positions(kafka.connection_config(s), s.consumer_group, s.topic, timeout=1.5)


def wordcloud_slot() -> int:
    """The current word-cloud period (changes every WORDCLOUD_SECONDS)."""
    return int(time.time() // WORDCLOUD_SECONDS)


def kafka_slot() -> int:
    """The current Kafka polling period."""
    return int(time.time() // KAFKA_SECONDS)


def drill_default(coin_totals: Sequence[str]) -> list[str]:
    """The coins the drill-down starts with: the three most mentioned."""
    return list(coin_totals[:3])


def explanations(texts: list[str]) -> list[str]:
    """Why the learned analyzer labelled each text so: its top phrases, derived on demand (the
    same model and weights as the processor's, so the same decision)."""
    from cryptosent.analysis.sentiment import get_analyzer

    judge = getattr(get_analyzer("learned"), "judge_many", None)
    if judge is None or not texts:
        return [""] * len(texts)
    return [", ".join(j.explanation) for j in judge(texts)]
