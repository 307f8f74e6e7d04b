"""The dashboard's market queries on a real PostgreSQL: the sentiment index and social dominance
per minute and per hour, and the price per time bucket, against values worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import psycopg
import pytest

from cryptosent.dashboard.market import index_table, price_buckets

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

AT = datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def insert_minutes(url: str, rows: list[tuple[str, datetime, int, float]]) -> None:
    """coin_minute rows (coin, minute, tweets, mean compound), every tweet scored positive."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into coin_minute (coin, minute, tweets, positive, neutral, negative,"
            " compound_sum, vader_positive, vader_neutral, vader_negative, vader_compound_sum)"
            " select c, m, n, n, 0, 0, n * s, n, 0, 0, 0"
            " from unnest(%s::text[], %s::timestamptz[], %s::bigint[], %s::float8[])"
            " as r(c, m, n, s)",
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
             [r[3] for r in rows]],
        )  # fmt: skip


def test_index_and_dominance_per_minute_and_per_hour(database_url: str) -> None:
    rows: list[tuple[str, datetime, int, float]] = []
    for i in range(1, 1441):  # the full 24 h baseline of minutes before AT
        even = i % 2 == 0
        rows.append(("BTC", AT - i * MINUTE, 20 if even else 40, 0.0 if even else 0.2))
        rows.append(("ETH", AT - i * MINUTE, 10, -0.1))
    rows += [("BTC", AT, 40, 0.15), ("ETH", AT, 10, -0.2), ("*", AT, 45, 0.1)]
    rows.append(("SOL", AT + MINUTE, 99, 0.9))  # after AT: in no baseline and not current
    insert_minutes(database_url, rows)

    with psycopg.connect(database_url) as conn:
        minute = index_table(conn, "minute", at=AT)
        hour = index_table(conn, "hour", at=AT)
        hour_before = index_table(conn, "hour", at=AT - timedelta(hours=1))
        organic = index_table(conn, "minute", at=AT, organic=True)

    assert list(minute["coin"]) == ["BTC", "ETH"]
    btc, eth = minute.iloc[0], minute.iloc[1]
    # BTC: volume z = (40 - 30) / 10 = 1, mood z = (0.15 - 0.1) / 0.1 = 0.5
    assert btc["index"] == pytest.approx(100 * NormalDist().cdf(1.5 / math.sqrt(2)), abs=1e-6)
    # ETH: flat baseline -> floors: volume z = 0 / 1, mood z = (-0.2 + 0.1) / 0.05 = -2
    assert eth["index"] == pytest.approx(100 * NormalDist().cdf(-2 / math.sqrt(2)), abs=1e-6)
    assert (btc["tweets"], eth["tweets"]) == (40, 10)
    assert btc["mean"] == pytest.approx(0.15) and eth["mean"] == pytest.approx(-0.2)
    assert (btc["dominance"], eth["dominance"]) == (pytest.approx(80.0), pytest.approx(20.0))
    # these rows carry no organic measures (all 0): the organic view reads those columns
    assert list(organic["tweets"]) == [0, 0]
    assert list(organic["index"]) == [pytest.approx(50.0), pytest.approx(50.0)]
    assert list(organic["dominance"]) == [0.0, 0.0] and organic["mean"].isna().all()

    # hour at AT: the hour starting at AT holds only AT's minute (and SOL's after it);
    # the 24 hours before are the baseline (480 buckets, 456 of them empty)
    by_coin = hour.set_index("coin")
    assert set(by_coin.index) == {"SOL", "BTC", "ETH"}
    assert by_coin.loc["BTC", "tweets"] == 40 and by_coin.loc["SOL", "tweets"] == 99
    assert by_coin.loc["BTC", "dominance"] == pytest.approx(100 * 40 / 149)
    assert by_coin.loc["SOL", "dominance"] == pytest.approx(100 * 99 / 149)
    hourly_btc, buckets = 30 * 60, 480  # 1,800 tweets in each of the 24 baseline hours
    mean = 24 * hourly_btc / buckets
    std = math.sqrt(24 * hourly_btc**2 / buckets - mean**2)
    z_volume = (40 - mean) / std
    z_mood = (0.15 - 240 / 1800) / 0.05  # every baseline hour's mood is 240 / 1800: std floor
    expected = 100 * NormalDist().cdf((z_volume + z_mood) / math.sqrt(2))
    assert by_coin.loc["BTC", "index"] == pytest.approx(expected, abs=1e-6)
    assert by_coin.loc["BTC", "mean"] == pytest.approx(0.15)
    assert len(hour_before) == 2 and set(hour_before["coin"]) == {"BTC", "ETH"}
    assert hour_before.set_index("coin").loc["BTC", "tweets"] == hourly_btc


def test_price_buckets_take_each_bucket_last_close(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        ref = conn.execute(  # the 10-minute bucket now is in
            "select to_timestamp(floor(extract(epoch from now()) / 600) * 600)"
        ).fetchone()[0]  # type: ignore[index]
        extra = conn.execute(
            "select column_name, data_type from information_schema.columns where table_name ="
            " 'price_minute' and is_nullable = 'NO' and column_default is null and column_name"
            " not in ('coin', 'minute', 'open', 'high', 'low', 'close', 'volume', 'trades')"
        ).fetchall()
        names = ", ".join(name for name, _ in extra)
        offsets = [-20, -15, -10, -5, 0, 10]
        for offset, close in zip(offsets, [100.0, 101.0, 102.0, 103.0, 104.0, 105.0], strict=True):
            minute = ref + offset * MINUTE
            values = [minute if kind.startswith("timestamp") else 0 for _, kind in extra]
            conn.execute(
                f"insert into price_minute (coin, minute, open, high, low, close, volume, trades"
                f"{', ' if extra else ''}{names}) values (%s, %s, %s, %s, %s, %s, 1, 1"
                f"{', %s' * len(extra)})".encode(),
                ["BTC", minute, close, close, close, close, *values],
            )
        frame = price_buckets(conn, ["BTC", "ETH"], timedelta(hours=1), 600)
    # minutes -20, -15 | -10, -5 | 0 | +10 (in the future: left out)
    assert list(frame["coin"]) == ["BTC", "BTC", "BTC"]
    assert list(frame["close"]) == [101.0, 103.0, 104.0]
