"""Where the page gets its data: one PostgreSQL pool (or the DuckDB lake), short-TTL caches.

Caches are shared by every viewer, so a hundred open tabs cost the database one refresh per TTL.
Failures are never cached: the next refresh tries again, which is how the page recovers by
itself once the database is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
import streamlit as st
from psycopg_pool import ConnectionPool, PoolTimeout

from cryptosent.config import Settings, get_settings
from cryptosent.dashboard import queries
from cryptosent.dashboard.kafka_lag import TopicPositions, topic_positions
from cryptosent.dashboard.snapshot import WORDCLOUD_ROWS, Snapshot, load_snapshot
from cryptosent.dashboard.words import word_stats, wordcloud_png

LIVE_TTL = 1.0  # below the shortest refresh (2 s), so every refresh sees new rows
WORDCLOUD_SECONDS = 30  # the cloud is costly to draw and changes slowly
KAFKA_SECONDS = 5
LAKE_SECONDS = 30  # the lake is written once a minute by default; reloading often buys nothing
POOL_TIMEOUT = 3.0


class Unavailable(RuntimeError):
    """The data source cannot answer right now (one line saying which and why)."""


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
    # connected to again on the next refresh, with no background retry loop to wait out
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
            raise Unavailable(f"{describe_source(s)}: {_one_line(exc)}") from exc
        return
    try:
        with _pool(s.dashboard_dsn()).connection() as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise Unavailable(f"{describe_source(s)} is unreachable: {_one_line(exc)}") from exc
    except psycopg.Error as exc:
        raise Unavailable(f"{describe_source(s)}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
    column = "compound" if analyzer == "crypto" else "vader_compound"
    stats = word_stats(zip(latest["text"], latest[column], strict=True))
    return wordcloud_png(stats) if stats else None


@st.cache_data(ttl=KAFKA_SECONDS, show_spinner=False, max_entries=4)
def fetch_positions(source: str, slot: int) -> TopicPositions | None:
    """Kafka's view of the processor's topic (high watermarks, commits), None if unreachable."""
    s = settings()
    return topic_positions(s.kafka_config(), s.consumer_group, s.topic, timeout=1.5)


def wordcloud_slot() -> int:
    """The current word-cloud period (changes every WORDCLOUD_SECONDS)."""
    return int(time.time() // WORDCLOUD_SECONDS)


def kafka_slot() -> int:
    """The current Kafka polling period."""
    return int(time.time() // KAFKA_SECONDS)


def drill_default(coin_totals: Sequence[str]) -> list[str]:
    """The coins the drill-down starts with: the three most mentioned."""
    return list(coin_totals[:3])
