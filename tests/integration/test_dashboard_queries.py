"""The dashboard's query layer on a real PostgreSQL holding known rows: exact numbers.

Tweets are inserted with times relative to now, far from every range edge; `tweet_coins` and
`coin_minute` are derived from them the way the processor derives them, and migration 0003's
triggers fill the hourly rollup. The same rows written as Parquet give the same numbers in
lake mode (DuckDB).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cryptosent import aggregates
from cryptosent.batch import SCHEMA
from cryptosent.config import Settings
from cryptosent.dashboard import queries
from cryptosent.dashboard.lake import open_lake_db
from cryptosent.dashboard.snapshot import load_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@dataclass(frozen=True)
class Row:
    """One known tweet: age, text, crypto compound, vader compound, coins."""

    age: timedelta
    text: str
    compound: float
    vader: float
    coins: tuple[str, ...]


def label(compound: float) -> str:
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
ROWS = (
    Row(5 * M, "Bitcoin to the moon 🚀 $BTC", 0.8, 0.6, ("BTC",)),
    Row(6 * M, "ETH is dumping hard <b>rekt</b>", -0.5, -0.4, ("ETH",)),
    Row(40 * M, "BTC and ETH flat today", 0.0, 0.1, ("BTC", "ETH")),
    Row(90 * M, "BTC strong", 0.5, 0.5, ("BTC",)),
    Row(5 * H, "SOL rally", 0.4, 0.0, ("SOL",)),
    Row(3 * D, "rekt on BTC", -0.7, -0.2, ("BTC",)),
    Row(20 * D, "no coins here", 0.2, 0.2, ()),
    Row(20 * D + 3 * M, "BTC back then", 0.3, -0.3, ("BTC",)),
)
GROUP, TOPIC = "cryptosent-processor", "tweets"

DERIVE = (
    """insert into tweet_coins (coin, tweet_id, created_at)
       select coin, id, created_at from tweets, unnest(coins) as coin""",
    # every measure, the organic and weighted ones too, as the processor computes them
    f"insert into coin_minute (coin, minute, {aggregates.COLUMNS}) {aggregates.minute_rebuild()}",
)


def tweet_rows(now: datetime) -> list[dict[str, object]]:
    """The known rows as `tweets` columns."""
    return [
        {
            "id": f"t{i}", "created_at": now - row.age, "text": row.text,
            "author_id": f"a{i}", "author_username": f"user{i}", "author_followers": 10 * i,
            "author_verified": False, "lang": "en", "source": "test", "retweet_of": None,
            "reply_to": None, "compound": row.compound, "pos": 0.0, "neu": 1.0, "neg": 0.0,
            "label": label(row.compound), "vader_compound": row.vader, "vader_pos": 0.0,
            "vader_neu": 1.0, "vader_neg": 0.0, "vader_label": label(row.vader),
            "coins": list(row.coins), "kafka_partition": i % 2, "kafka_offset": i,
        }
        for i, row in enumerate(ROWS)
    ]  # fmt: skip


def reader_url(settings: Settings, database_url: str) -> str:
    """The read-only dashboard role's URL for the test database."""
    return settings.dashboard_dsn().rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]


@pytest.fixture
def known(database_url: str) -> str:
    """The test database filled with ROWS, two alerts and stored offsets; its URL."""
    now = datetime.now(UTC)
    rows = tweet_rows(now)
    columns = list(rows[0])
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        with cur.copy(f"copy tweets ({', '.join(columns)}) from stdin") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        for statement in DERIVE:
            cur.execute(statement.encode())
        cur.executemany(
            "insert into alerts (coin, minute, kind, value, baseline, message, created_at)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            [
                ("BTC", now - 5 * M, "volume_surge", 30.0, 5.0, "BTC: 30 tweets/min", now - 4 * M),
                ("ETH", now - 2 * D, "sentiment_swing", -0.6, 0.1, "ETH swung", now - 2 * D),
            ],
        )
        cur.execute(
            "insert into kafka_offsets (consumer_group, topic, partition, sink, next_offset)"
            " values (%s, %s, 0, 'postgres', 4), (%s, %s, 1, 'postgres', 4),"
            " (%s, %s, 0, 'lake', 2)",
            [GROUP, TOPIC] * 3,
        )
    return database_url


@pytest.fixture
def conn(known: str, settings: Settings) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A dashboard-like session (read-only role and options) on the known data."""
    url = reader_url(settings, known)
    with psycopg.connect(url, autocommit=True, options=queries.SESSION_OPTIONS) as c:
        yield c


def expected(window: timedelta, coin: str | None = None) -> dict[str, float]:
    """Reference totals computed from ROWS in Python."""
    chosen = [r for r in ROWS if r.age < window and (coin is None or coin in r.coins)]
    return {
        "tweets": len(chosen),
        "positive": sum(label(r.compound) == "positive" for r in chosen),
        "neutral": sum(label(r.compound) == "neutral" for r in chosen),
        "negative": sum(label(r.compound) == "negative" for r in chosen),
        "compound_sum": sum(r.compound for r in chosen),
        "vader_positive": sum(label(r.vader) == "positive" for r in chosen),
        "vader_neutral": sum(label(r.vader) == "neutral" for r in chosen),
        "vader_negative": sum(label(r.vader) == "negative" for r in chosen),
        "vader_compound_sum": sum(r.vader for r in chosen),
    }


def close(got: dict[str, float], want: dict[str, float]) -> None:
    assert got.keys() >= want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def test_totals_per_range_are_exact(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    close(queries.totals(conn, queries.RANGES["15 min"]), {
        "tweets": 2, "positive": 1, "neutral": 0, "negative": 1, "compound_sum": 0.3,
        "vader_positive": 1, "vader_negative": 1, "vader_compound_sum": 0.2,
    })  # fmt: skip
    close(queries.totals(conn, queries.RANGES["1 h"]), {"tweets": 3, "neutral": 1})
    close(queries.totals(conn, queries.RANGES["24 h"]), {"tweets": 5, "compound_sum": 1.2})
    close(queries.totals(conn, queries.RANGES["7 d"]), {"tweets": 6, "compound_sum": 0.5})
    close(queries.totals(conn, queries.ALL_TIME), {"tweets": 8, "compound_sum": 1.0})
    for window in queries.RANGES.values():
        close(queries.totals(conn, window), expected(window))


def test_coin_totals_with_the_window_before(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    hour = queries.coin_totals(conn, queries.RANGES["1 h"]).set_index("coin")
    assert list(hour.index) == ["BTC", "ETH"]  # by tweets, then ticker
    assert hour.loc["BTC", "tweets"] == 2
    assert hour.loc["BTC", "compound_sum"] == pytest.approx(0.8)
    assert hour.loc["BTC", "prev_tweets"] == 1  # 'BTC strong', 90 min ago
    assert hour.loc["BTC", "prev_compound_sum"] == pytest.approx(0.5)
    assert hour.loc["ETH", "negative"] == 1
    assert hour.loc["ETH", "vader_compound_sum"] == pytest.approx(-0.3)
    week = queries.coin_totals(conn, queries.RANGES["7 d"]).set_index("coin")
    assert week["tweets"].to_dict() == {"BTC": 4, "ETH": 2, "SOL": 1}
    assert week.loc["BTC", "prev_tweets"] == 0
    every = queries.coin_totals(conn, queries.ALL_TIME).set_index("coin")
    for coin in ("BTC", "ETH", "SOL"):
        close(every.loc[coin].to_dict(), expected(queries.ALL_TIME, coin))


def test_timeline_and_coin_buckets_add_up(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    hour = queries.timeline(conn, queries.RANGES["1 h"], 60)
    assert hour["tweets"].sum() == 3
    assert len(hour) == 3  # three distinct minutes
    for range_key, window in queries.RANGES.items():
        bucket = queries.bucket_seconds(window)
        series = queries.timeline(conn, window, bucket)
        assert series["tweets"].sum() == expected(window)["tweets"], range_key
        assert series["negative"].sum() == expected(window)["negative"], range_key
        per_coin = queries.coin_buckets(conn, ["BTC", "SOL"], window, bucket)
        assert (
            per_coin[per_coin["coin"] == "BTC"]["tweets"].sum()
            == (expected(window, "BTC")["tweets"])
        ), range_key
        assert per_coin["compound_sum"].sum() == pytest.approx(
            expected(window, "BTC")["compound_sum"] + expected(window, "SOL")["compound_sum"]
        )
    assert queries.coin_buckets(conn, [], queries.ALL_TIME, 3600).empty


def test_latest_tweets_newest_first_and_per_coin(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    latest = queries.latest_tweets(conn, queries.RANGES["1 h"], 10)
    assert latest["text"].tolist() == [r.text for r in ROWS[:3]]
    assert latest["coins"].tolist() == [["BTC"], ["ETH"], ["BTC", "ETH"]]
    assert latest["label"].tolist() == ["positive", "negative", "neutral"]
    assert latest["vader_label"].tolist() == ["positive", "negative", "positive"]
    assert len(queries.latest_tweets(conn, queries.ALL_TIME, 2)) == 2
    eth = queries.latest_tweets(conn, queries.ALL_TIME, 10, coin="ETH")
    assert eth["text"].tolist() == [ROWS[1].text, ROWS[2].text]


def test_alerts_state_rate_and_first_minute(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    alerts = queries.recent_alerts(conn, queries.RANGES["1 h"])
    assert alerts["kind"].tolist() == ["volume_surge"]
    assert len(queries.recent_alerts(conn, queries.RANGES["7 d"])) == 2
    state = queries.store_state(conn, GROUP, TOPIC)
    assert state.offsets == {0: 4, 1: 4}
    assert state.newest_tweet is not None
    assert timedelta(minutes=4) < state.now - state.newest_tweet < timedelta(minutes=6)
    assert state.last_write is not None
    assert queries.store_state(conn, "other-group", TOPIC).offsets == {}
    assert queries.tweet_rate(conn) == (0, 0)
    first = queries.first_minute(conn)
    assert first is not None
    assert timedelta(days=20) < state.now - first < timedelta(days=20, minutes=5)


def test_snapshot_and_empty_database(
    conn: psycopg.Connection[tuple[object, ...]], settings: Settings, database_url: str
) -> None:
    snap = load_snapshot(conn, "24 h", group=GROUP, topic=TOPIC, drill_coins=["SOL"])
    assert not snap.empty
    assert snap.totals["tweets"] == 5
    assert snap.heatmap_coins == ["BTC", "ETH", "SOL"]
    assert set(snap.coin_buckets["coin"]) == {"BTC", "ETH", "SOL"}


def test_empty_database_is_empty(settings: Settings, database_url: str) -> None:
    url = reader_url(settings, database_url)
    with psycopg.connect(url, autocommit=True, options=queries.SESSION_OPTIONS) as c:
        snap = load_snapshot(c, "1 h", group=GROUP, topic=TOPIC)
        assert snap.empty
        assert queries.totals(c, queries.ALL_TIME)["tweets"] == 0
        assert queries.coin_totals(c, queries.ALL_TIME).empty


def test_the_dashboard_session_cannot_write(
    conn: psycopg.Connection[tuple[object, ...]], known: str, settings: Settings
) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("delete from tweets")
    # and the role itself, even without the session's read-only default
    with psycopg.connect(reader_url(settings, known), autocommit=True) as plain:
        assert plain.execute("select current_user").fetchone() == ("cryptosent_reader",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            plain.execute("delete from tweets")


def test_lake_mode_gives_the_same_numbers(tmp_path: Path, settings: Settings) -> None:
    now = datetime.now(UTC)
    table = pa.Table.from_pylist(tweet_rows(now), schema=SCHEMA)
    part = tmp_path / "lake" / "processed" / f"dt={now:%Y-%m-%d}" / f"hour={now:%H}"
    part.mkdir(parents=True)
    pq.write_table(table, part / "tweets-p000-0-7.parquet")
    db = open_lake_db(settings, f"file://{tmp_path / 'lake'}")
    for window in queries.RANGES.values():
        close(queries.totals(db, window), expected(window))
    week = queries.coin_totals(db, queries.RANGES["7 d"]).set_index("coin")
    assert week["tweets"].to_dict() == {"BTC": 4, "ETH": 2, "SOL": 1}
    latest = queries.latest_tweets(db, queries.RANGES["1 h"], 10)
    assert latest["text"].tolist() == [r.text for r in ROWS[:3]]
    snap = load_snapshot(db, "all", group=GROUP, topic=TOPIC)
    assert snap.totals["tweets"] == 8
    assert snap.timeline["tweets"].sum() == 8


def test_lake_mode_without_a_lake_is_empty(tmp_path: Path, settings: Settings) -> None:
    db = open_lake_db(settings, f"file://{tmp_path / 'nothing'}")
    assert load_snapshot(db, "1 h", group=GROUP, topic=TOPIC).empty
