"""Market queries: a coin's minutes of sentiment and price (what `cryptosent leadlag` and the
lead-lag panel read), price per time bucket, and the sentiment index with social dominance.

PostgreSQL only (`price_minute` is not part of the lake views). Every statement is static and
parameterised; the index arithmetic is in `sentiment_index` (pure, tested on numbers).

Sentiment index of a coin for one bucket (a minute, or an hour) against its own trailing
baseline (the `BASELINES[granularity]` buckets before it: 24 h of minutes, 20 days of hours):

    z_volume    = (tweets - mean(tweets)) / max(std(tweets), 1)       empty buckets count as 0
    z_sentiment = (mood - mean(mood)) / max(std(mood), 0.05)          buckets with posts only
    index       = 100 * Phi((z_sentiment + z_volume) / sqrt(2))

where mood is the bucket's mean compound and Phi the standard normal CDF: 50 is an ordinary
bucket for that coin; both z near +2 gives about 100, both near -2 about 0. A bucket without
posts has z_sentiment = 0; a baseline without posts has z_sentiment = 0.
Social dominance: the coin's tweets in the bucket over the sum of every coin's tweets (a post
that names two coins counts for both), in percent. With `organic=True` every count and sum is
the aggregate's organic one (posts not flagged as spam), as the dashboard's "Organic only".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import psycopg

from cryptosent.analysis.leadlag import MinuteSeries
from cryptosent.errors import FatalError

if TYPE_CHECKING:
    import pandas as pd  # imported when used: `cryptosent leadlag` starts faster without it

Granularity = Literal["minute", "hour"]
Analyzer = Literal["learned", "vader"]

BASELINES: Final[dict[Granularity, int]] = {"minute": 24 * 60, "hour": 20 * 24}
"""Trailing baseline per granularity, in buckets (24 h of minutes, 20 days of hours)."""
STEP: Final[dict[Granularity, timedelta]] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
}
MIN_VOLUME_STD: Final = 1.0
MIN_MOOD_STD: Final = 0.05

_PREFIX: Final[dict[Analyzer, str]] = {"learned": "", "vader": "vader_"}
ORGANIC: Final = "organic_"
"""The aggregates' prefix of the measures over organic posts (not spam; docs/campaigns.md)."""


def _columns(analyzer: Analyzer, organic: bool) -> tuple[str, str]:
    """(tweets column, prefix of the label counts and compound sum) of one analyzer and view."""
    if organic:
        return f"{ORGANIC}tweets", ORGANIC + _PREFIX[analyzer]
    return "tweets", _PREFIX[analyzer]


Connection = Any  # psycopg.Connection


class MissingPrices(FatalError):
    """`price_minute` does not exist in this database yet."""


def _rows(
    conn: Connection, query: str, params: dict[str, object]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        with conn.cursor() as cur:
            cur.execute(query.encode(), params)
            return [col.name for col in cur.description or ()], cur.fetchall()
    except psycopg.errors.UndefinedTable as exc:
        raise MissingPrices(
            "table price_minute is missing: run `cryptosent db migrate` (and `cryptosent process`"
            " to fill it from the `prices` topic)"
        ) from exc


def _frame(conn: Connection, query: str, params: dict[str, object]) -> pd.DataFrame:
    import pandas as pd

    columns, rows = _rows(conn, query, params)
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------- one coin's minute series ---
def _coin_minutes(tweets: str, prefix: str) -> str:
    return f"""
select (extract(epoch from minute - %(since)s) / 60)::int as at, {tweets}::float8,
       ({prefix}positive + {prefix}neutral + {prefix}negative)::float8 as scored,
       {prefix}compound_sum as compound_sum
from coin_minute where coin = %(coin)s and minute >= %(since)s and minute < %(until)s
order by minute"""  # noqa: S608 - column prefixes are this module's constants


_COIN_MINUTES: Final = {
    (analyzer, organic): _coin_minutes(*_columns(analyzer, organic))
    for analyzer in _PREFIX
    for organic in (False, True)
}
_PRICE_MINUTES: Final = """
select (extract(epoch from minute - %(since)s) / 60)::int as at, close from price_minute
where coin = %(coin)s and minute >= %(since)s and minute < %(until)s order by minute"""
_NOW_MINUTE: Final = "select date_trunc('minute', now()) as now"


@dataclass(frozen=True)
class CoinWindow:
    """The minutes read for one coin: [since, until), and the series on them."""

    coin: str
    since: datetime
    until: datetime
    series: MinuteSeries


def coin_window(
    conn: Connection,
    coin: str,
    hours: float,
    analyzer: Analyzer = "learned",
    until: datetime | None = None,
    organic: bool = False,
) -> CoinWindow:
    """The coin's mean sentiment, mentions and close on every minute of the `hours` before
    `until` (default: the current, unfinished minute, which is left out); organic posts only
    if asked."""
    if until is None:
        until = _rows(conn, _NOW_MINUTE, {})[1][0][0]
        assert until is not None
    since = until - timedelta(hours=hours)
    params: dict[str, object] = {"coin": coin, "since": since, "until": until}
    _, posts = _rows(conn, _COIN_MINUTES[(analyzer, organic)], params)
    _, prices = _rows(conn, _PRICE_MINUTES, params)
    n = int((until - since).total_seconds() // 60)
    sentiment = np.full(n, np.nan)
    mentions = np.zeros(n)
    close = np.full(n, np.nan)
    if posts:
        table = np.array(posts, dtype=np.float64)  # minute, tweets, scored, compound sum
        at = table[:, 0].astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            sentiment[at] = np.where(table[:, 2] > 0, table[:, 3] / table[:, 2], np.nan)
        mentions[at] = table[:, 1]
    if prices:
        table = np.array(prices, dtype=np.float64)
        close[table[:, 0].astype(np.int64)] = table[:, 1]
    return CoinWindow(coin, since, until, MinuteSeries(sentiment, mentions, close))


# ----------------------------------------------------------------------- price per time bucket ---
_PRICE_BUCKETS: Final = """
select distinct on (coin, bucket) coin,
       to_timestamp(floor(extract(epoch from minute) / %(bucket)s) * %(bucket)s) as bucket, close
from price_minute
where coin = any(%(coins)s) and minute >= now() - %(window)s and minute <= now()
order by coin, bucket, minute desc"""


def price_buckets(
    conn: Connection, coins: list[str], window: timedelta, bucket: int
) -> pd.DataFrame:
    """The last close of each chosen coin in each time bucket of the window."""
    import pandas as pd

    if not coins:
        return pd.DataFrame(columns=["coin", "bucket", "close"])
    params: dict[str, object] = {"coins": coins, "window": window, "bucket": bucket}
    frame = _frame(conn, _PRICE_BUCKETS, params)
    if len(frame):
        frame["close"] = frame["close"].astype("float64")
    return frame


# ---------------------------------------------------------------- sentiment index, dominance ---
def _index_inputs(table: str, key: str, tweets: str, prefix: str) -> str:
    scored = f"({prefix}positive + {prefix}neutral + {prefix}negative)"
    mood = f"{prefix}compound_sum / nullif({scored}, 0)"
    before = f"{key} < %(at)s"
    return f"""
select coin,
       coalesce(sum({tweets}) filter (where {key} = %(at)s), 0)::float8 as tweets,
       coalesce(sum({scored}) filter (where {key} = %(at)s), 0)::float8 as scored,
       coalesce(sum({prefix}compound_sum) filter (where {key} = %(at)s), 0)::float8
           as compound_sum,
       coalesce(sum({tweets}) filter (where {before}), 0)::float8 as base_tweets,
       coalesce(sum({tweets}::float8 * {tweets}) filter (where {before}), 0)::float8
           as base_tweets_sq,
       count({mood}) filter (where {before}) as base_posted,
       coalesce(sum({mood}) filter (where {before}), 0)::float8 as base_mood,
       coalesce(sum(({mood}) ^ 2) filter (where {before}), 0)::float8 as base_mood_sq
from {table}
where coin <> '*' and {key} >= %(at)s - %(baseline)s and {key} <= %(at)s
group by coin"""  # noqa: S608 - table, key and prefixes are this module's constants


_INDEX_INPUTS: Final = {
    (granularity, analyzer, organic): _index_inputs(
        "coin_minute" if granularity == "minute" else "coin_hour",
        granularity,
        *_columns(analyzer, organic),
    )
    for granularity in ("minute", "hour")
    for analyzer in _PREFIX
    for organic in (False, True)
}
_LAST_CLOSED: Final = {
    "minute": "select date_trunc('minute', now()) - interval '1 minute' as at",
    "hour": "select date_trunc('hour', now(), 'UTC') - interval '1 hour' as at",
}


def sentiment_index(
    tweets: float,
    scored: float,
    compound_sum: float,
    base_tweets: float,
    base_tweets_sq: float,
    base_posted: float,
    base_mood: float,
    base_mood_sq: float,
    buckets: int,
) -> float:
    """The 0-100 index of one bucket from its sums and its baseline's (see the module doc)."""
    mean_volume = base_tweets / buckets
    std_volume = math.sqrt(max(base_tweets_sq / buckets - mean_volume**2, 0.0))
    z_volume = (tweets - mean_volume) / max(std_volume, MIN_VOLUME_STD)
    z_mood = 0.0
    if scored > 0 and base_posted > 0:
        mean_mood = base_mood / base_posted
        std_mood = math.sqrt(max(base_mood_sq / base_posted - mean_mood**2, 0.0))
        z_mood = (compound_sum / scored - mean_mood) / max(std_mood, MIN_MOOD_STD)
    return 100.0 * NormalDist().cdf((z_mood + z_volume) / math.sqrt(2.0))


def index_table(
    conn: Connection,
    granularity: Granularity = "hour",
    analyzer: Analyzer = "learned",
    at: datetime | None = None,
    organic: bool = False,
) -> pd.DataFrame:
    """Per coin, for the bucket starting at `at` (default: the last closed minute or hour):
    tweets, mean sentiment, the index (0-100) and social dominance (%), highest index first;
    organic posts only if asked."""
    import pandas as pd

    if at is None:
        at = _rows(conn, _LAST_CLOSED[granularity], {})[1][0][0]
    buckets = BASELINES[granularity]
    params: dict[str, object] = {"at": at, "baseline": buckets * STEP[granularity]}
    frame = _frame(conn, _INDEX_INPUTS[(granularity, analyzer, organic)], params)
    columns = ["coin", "tweets", "mean", "index", "dominance"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    numbers = frame.drop(columns=["coin"]).astype("float64")
    index = [
        sentiment_index(**{str(k): float(v) for k, v in row.items()}, buckets=buckets)
        for row in numbers.to_dict("records")
    ]
    total = float(numbers["tweets"].sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        mood = numbers["compound_sum"] / numbers["scored"].where(numbers["scored"] > 0)
    out = pd.DataFrame(
        {
            "coin": frame["coin"].astype(str),
            "tweets": numbers["tweets"].astype("int64"),
            "mean": mood,
            "index": index,
            "dominance": 100.0 * numbers["tweets"] / total if total > 0 else 0.0,
        }
    )
    return out.sort_values(["index", "coin"], ascending=[False, True]).reset_index(drop=True)
