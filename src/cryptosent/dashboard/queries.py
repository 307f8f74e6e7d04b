"""Every SQL statement the dashboard runs, as plain functions returning DataFrames or values.

The statements are static and parameterised (no SQL is built from input). They read the
PostgreSQL aggregates (`coin_minute`, coin '*' being the all-tweets row of each minute) and
index ranges of `tweets` / `tweet_coins`, so their cost follows the chosen time window, not the
table size. Every window is bounded on both sides by the wall clock, `now() - window <= t <=
now()`: a post dated ahead of now (the processor accepts up to `future_margin_seconds`) shows
once its time has come, never stretches a chart, and very old posts stay outside recent ranges.
Each returns the columns of both analyzers (`crypto` and `vader`); `pick_analyzer` chooses one
afterwards, so switching analyzers runs no query.

The same statements run on DuckDB in lake mode: `LAKE_VIEWS` defines `tweets`, `tweet_coins`
and `coin_minute` over the Parquet lake, and `%(name)s` parameters become `$name`. The
aggregate's columns and how they are computed come from `cryptosent.aggregates`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import pandas as pd
import psycopg

from cryptosent import aggregates

Analyzer = Literal["learned", "vader"]
ANALYZERS: Final[tuple[Analyzer, ...]] = ("learned", "vader")

# "all" is a window long enough to hold any stored data, so every query keeps its index range
ALL_TIME: Final = timedelta(days=36_500)
RANGES: Final[dict[str, timedelta]] = {
    "15 min": timedelta(minutes=15),
    "1 h": timedelta(hours=1),
    "24 h": timedelta(hours=24),
    "7 d": timedelta(days=7),
    "all": ALL_TIME,
}
# bucket widths for time series, smallest first; the first giving <= MAX_BUCKETS points wins
BUCKETS: Final = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400)
MAX_BUCKETS: Final = 120

# every dashboard session: read-only and bounded, whatever role the URL names
SESSION_OPTIONS: Final = (
    "-c default_transaction_read_only=on -c statement_timeout=5000 -c TimeZone=UTC"
)

_PARAM = re.compile(r"%\((\w+)\)s")

Connection = Any  # psycopg.Connection or duckdb.DuckDBPyConnection


def _frame(conn: Connection, query: str, params: Mapping[str, object]) -> pd.DataFrame:
    """Run one statement on PostgreSQL or DuckDB; the rows as a DataFrame."""
    if isinstance(conn, psycopg.Connection):
        with conn.cursor() as cur:
            cur.execute(query.encode(), params)
            columns = [col.name for col in cur.description or ()]
            return pd.DataFrame(cur.fetchall(), columns=columns)
    cur = conn.cursor()
    try:
        frame: pd.DataFrame = cur.execute(_PARAM.sub(r"$\1", query), dict(params)).df()
    finally:
        cur.close()
    return frame


def _cast_counts(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    for column in columns:
        if column in frame:
            frame[column] = frame[column].fillna(0).astype("int64")
    return frame


_COUNT_COLUMNS: Final = (*aggregates.COUNTS, "prev_tweets")
_SUM_COLUMNS: Final = aggregates.summed(cast=True)


def bucket_seconds(span: timedelta) -> int:
    """The time-series bucket width (seconds) that shows `span` in at most MAX_BUCKETS points."""
    seconds = max(span.total_seconds(), 60.0)
    for width in BUCKETS:
        if seconds / width <= MAX_BUCKETS:
            return width
    return BUCKETS[-1]


# ------------------------------------------------------------------------------------ totals ---
_FIRST_MINUTE = "select min(minute) as first from coin_minute where coin = '*' and minute <= now()"


def first_minute(conn: Connection) -> datetime | None:
    """The minute of the oldest stored tweet, or None when nothing is stored yet."""
    frame = _frame(conn, _FIRST_MINUTE, {})
    value = frame["first"].iloc[0] if len(frame) else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


_MEASURES = aggregates.COLUMNS


def _rows_since(window: str, coins: str) -> str:
    """Aggregate rows exactly covering `now() - window <= minute <= now()`, as (coin, t, ...):
    the whole hours between from coin_hour, the partial first and last hours from coin_minute
    (at most 59 + 60 rows per coin, two index ranges)."""
    first = f"date_trunc('hour', now() - {window}) + interval '1 hour'"  # first whole hour
    last = "date_trunc('hour', now())"  # the hour now is in, not over yet
    return f"""
    select coin, hour as t, {_MEASURES} from coin_hour
    where {coins} and hour >= {first} and hour < {last}
    union all
    select coin, minute as t, {_MEASURES} from coin_minute
    where {coins} and minute >= now() - {window} and minute < {first} and minute <= now()
    union all
    select coin, minute as t, {_MEASURES} from coin_minute
    where {coins} and minute >= greatest({first}, {last}) and minute <= now()"""  # noqa: S608


def _minutes_since(window: str, coins: str) -> str:
    """Minute rows of `now() - window <= minute <= now()` (for buckets finer than an hour)."""
    return f"""
    select coin, minute as t, {_MEASURES} from coin_minute
    where {coins} and minute >= now() - {window} and minute <= now()"""  # noqa: S608 - constants


_BUCKET = "to_timestamp(floor(extract(epoch from t) / %(bucket)s) * %(bucket)s)"
_ALL = "coin = '*'"
_CHOSEN = "coin = any(%(coins)s)"
_EACH = "coin <> '*'"

_TOTALS = f"""
select {_SUM_COLUMNS}
from ({_rows_since("%(window)s", _ALL)}) r
"""  # noqa: S608 - composed of constants, no input


def totals(conn: Connection, window: timedelta) -> dict[str, float]:
    """Tweets, label counts and compound sums (both analyzers) over the window."""
    frame = _cast_counts(_frame(conn, _TOTALS, {"window": window}), _COUNT_COLUMNS)
    row = frame.iloc[0].fillna(0.0)
    return {str(key): float(value) for key, value in row.items()}


_RATE = """
select count(*) filter (where created_at > now() - interval '1 minute') as last_minute,
       count(*) filter (where created_at <= now() - interval '1 minute') as minute_before
from tweets where created_at > now() - interval '2 minutes' and created_at <= now()
"""


def tweet_rate(conn: Connection) -> tuple[int, int]:
    """Tweets created in the last 60 s and in the 60 s before (the 'tweets/min now' KPI)."""
    frame = _frame(conn, _RATE, {})
    return int(frame["last_minute"].iloc[0] or 0), int(frame["minute_before"].iloc[0] or 0)


# ---------------------------------------------------------------------------------- timelines ---
def _bucketed(rows: str, by_coin: bool) -> str:
    group = "coin, " if by_coin else ""
    keys = "1, 2" if by_coin else "1"
    return f"""
select {group}{_BUCKET} as bucket, {_SUM_COLUMNS}
from ({rows}) r group by {keys} order by {keys}
"""  # noqa: S608 - composed of constants, no input


# bucket widths of whole hours read the hourly rollup, finer ones the minutes
_TIMELINE = {
    True: _bucketed(_rows_since("%(window)s", _ALL), by_coin=False),
    False: _bucketed(_minutes_since("%(window)s", _ALL), by_coin=False),
}
_COIN_BUCKETS = {
    True: _bucketed(_rows_since("%(window)s", _CHOSEN), by_coin=True),
    False: _bucketed(_minutes_since("%(window)s", _CHOSEN), by_coin=True),
}


def timeline(conn: Connection, window: timedelta, bucket: int) -> pd.DataFrame:
    """All tweets per time bucket: counts by label and compound sums (both analyzers)."""
    query = _TIMELINE[bucket % 3600 == 0]
    frame = _frame(conn, query, {"window": window, "bucket": bucket})
    return _cast_counts(frame, _COUNT_COLUMNS)


_COIN_TOTALS = f"""
with cur as (
    select coin, {_SUM_COLUMNS}
    from ({_rows_since("%(window)s", _EACH)}) r group by coin
), wide as (
    select coin, sum(tweets)::bigint as tweets, sum(compound_sum)::float8 as compound_sum,
           sum(vader_compound_sum)::float8 as vader_compound_sum
    from ({_rows_since("2 * %(window)s", _EACH)}) r group by coin
)
select cur.*, wide.tweets - cur.tweets as prev_tweets,
       wide.compound_sum - cur.compound_sum as prev_compound_sum,
       wide.vader_compound_sum - cur.vader_compound_sum as prev_vader_compound_sum
from cur join wide using (coin)
where cur.tweets > 0
order by cur.tweets desc, coin
"""  # noqa: S608 - composed of constants, no input


def coin_totals(conn: Connection, window: timedelta) -> pd.DataFrame:
    """Per coin: tweets, label counts and compound sums in the window and the one before it."""
    window = min(window, ALL_TIME / 2)
    frame = _frame(conn, _COIN_TOTALS, {"window": window})
    frame = _cast_counts(frame, _COUNT_COLUMNS)
    sums = ("compound_sum", "vader_compound_sum", "prev_compound_sum", "prev_vader_compound_sum")
    for column in sums:
        frame[column] = frame[column].fillna(0.0).astype("float64")
    return frame


def coin_buckets(
    conn: Connection, coins: Sequence[str], window: timedelta, bucket: int
) -> pd.DataFrame:
    """Per chosen coin and time bucket: tweets, label counts and compound sums."""
    if not coins:
        return pd.DataFrame(columns=["coin", "bucket", *_COUNT_COLUMNS[:-1]])
    params = {"coins": list(coins), "window": window, "bucket": bucket}
    query = _COIN_BUCKETS[bucket % 3600 == 0]
    return _cast_counts(_frame(conn, query, params), _COUNT_COLUMNS)


# ------------------------------------------------------------------------------------ tweets ---
_TWEET_COLUMNS = """t.created_at, t.author_username, t.text, t.coins,
       t.compound, t.label, t.confidence, t.vader_compound, t.vader_label, t.spam"""

_LATEST = f"""
select {_TWEET_COLUMNS}
from tweets t where t.created_at >= now() - %(window)s and t.created_at <= now()
order by t.created_at desc limit %(limit)s
"""  # noqa: S608 - a constant column list, no input

# the newest mentions first (an index scan per day partition, merged, stopped at the limit),
# then their tweets: joined before the limit, the planner hashed every tweet of the window
# (3.5 s for 7 days at 10M tweets, day-partitioned)
_LATEST_FOR_COIN = f"""
select {_TWEET_COLUMNS}
from (
    select tweet_id, created_at from tweet_coins
    where coin = %(coin)s and created_at >= now() - %(window)s and created_at <= now()
    order by created_at desc limit %(limit)s
) c join tweets t on t.id = c.tweet_id and t.created_at = c.created_at
order by c.created_at desc
"""  # noqa: S608 - a constant column list, no input


def latest_tweets(
    conn: Connection, window: timedelta, limit: int, coin: str | None = None
) -> pd.DataFrame:
    """The newest tweets in the window (all, or those mentioning `coin`), newest first."""
    params: dict[str, object] = {"window": window, "limit": limit}
    if coin is None:
        return _frame(conn, _LATEST, params)
    return _frame(conn, _LATEST_FOR_COIN, {**params, "coin": coin})


# ------------------------------------------------------------------------- alerts and health ---
_ALERTS = """
select coin, minute, kind, value, baseline, message, created_at
from alerts where created_at >= now() - %(window)s and created_at <= now()
order by created_at desc limit %(limit)s
"""


def recent_alerts(conn: Connection, window: timedelta, limit: int = 50) -> pd.DataFrame:
    """The newest alerts (volume surges, sentiment swings) raised in the window."""
    return _frame(conn, _ALERTS, {"window": window, "limit": limit})


@dataclass(frozen=True)
class StoreState:
    """How fresh the store is: newest tweet, last write, the processor's offsets per partition."""

    newest_tweet: datetime | None
    last_write: datetime | None
    now: datetime
    offsets: dict[int, int]  # partition -> next offset stored in PostgreSQL


_NEWEST = """
select (select max(created_at) from tweets where created_at <= now()) as newest_tweet,
       (select max(updated_at) from kafka_offsets
        where consumer_group = %(group)s and topic = %(topic)s and sink = 'postgres')
           as last_write,
       now() as now
"""

_OFFSETS = """
select partition, next_offset from kafka_offsets
where consumer_group = %(group)s and topic = %(topic)s and sink = 'postgres'
order by partition
"""


def store_state(conn: Connection, group: str, topic: str) -> StoreState:
    """Newest stored tweet, last processor write and stored offsets of the group on the topic."""
    params = {"group": group, "topic": topic}
    head = _frame(conn, _NEWEST, params).iloc[0]
    offsets = _frame(conn, _OFFSETS, params)

    def when(value: Any) -> datetime | None:
        return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()

    now = when(head["now"])
    assert now is not None
    return StoreState(
        newest_tweet=when(head["newest_tweet"]),
        last_write=when(head["last_write"]),
        now=now,
        offsets={
            int(p): int(o)
            for p, o in zip(offsets["partition"], offsets["next_offset"], strict=True)
        },
    )


# ------------------------------------------------------------------------------- lake (DuckDB) ---
# `lake` is the Parquet lake registered as an Arrow dataset; these make it look like the tables.
# tweets: the columns the page shows and those the aggregate reads
_LAKE_TWEET_COLUMNS: Final = ", ".join(
    dict.fromkeys(
        ["id", "created_at", "text", "author_username", "coins", "compound", "label",
         "confidence", "vader_compound", "vader_label", "author_id", "campaign_id",
         *aggregates.INPUTS]
    )
)  # fmt: skip
LAKE_VIEWS: Final = (
    f"create or replace table tweets as select {_LAKE_TWEET_COLUMNS} from lake",  # noqa: S608
    """create or replace table tweet_coins as
       select unnest(coins) as coin, id as tweet_id, created_at from tweets""",
    f"create or replace table coin_minute as {aggregates.duckdb_minutes('tweets')}",
    f"create or replace table coin_hour as {aggregates.duckdb_hours('coin_minute')}",
    """create or replace table alerts (coin text, minute timestamptz, kind text,
       value double, baseline double, message text, created_at timestamptz)""",
    """create or replace table kafka_offsets (consumer_group text, topic text,
       partition integer, sink text, next_offset bigint, updated_at timestamptz)""",
)


# ---------------------------------------------------------------------------- analyzer choice ---
def pick_analyzer(frame: pd.DataFrame, analyzer: Analyzer) -> pd.DataFrame:
    """The frame with the chosen analyzer's columns under the plain names (compound, label, ...)."""
    if analyzer == "learned":
        vader = [c for c in frame.columns if c.startswith(("vader_", "prev_vader_"))]
        return frame.drop(columns=vader)
    plain = [c[len("vader_") :] for c in frame.columns if c.startswith("vader_")]
    frame = frame.drop(columns=[c for c in plain if c in frame.columns])
    renames = {c: c[len("vader_") :] for c in frame.columns if c.startswith("vader_")}
    renames.update({"prev_vader_compound_sum": "prev_compound_sum"})
    frame = frame.drop(columns=["prev_compound_sum"], errors="ignore")
    return frame.rename(columns=renames)


def pick_totals(row: Mapping[str, float], analyzer: Analyzer) -> dict[str, float]:
    """The totals of one analyzer: tweets, positive, neutral, negative, compound_sum."""
    prefix = "vader_" if analyzer == "vader" else ""
    keys = ("positive", "neutral", "negative", "compound_sum")
    return {"tweets": row["tweets"], **{key: row[prefix + key] for key in keys}}
