"""One page's worth of data: every query of a refresh, run in order on one connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from cryptosent.dashboard import queries

HEATMAP_COINS = 12
LATEST_ROWS = 200
WORDCLOUD_ROWS = 1000
THROUGHPUT_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class Snapshot:
    """What the page shows for one time range (both analyzers' columns)."""

    range_key: str
    state: queries.StoreState
    first_minute: datetime | None
    bucket: int = 60
    totals: dict[str, float] = field(default_factory=dict)
    rate: tuple[int, int] = (0, 0)
    timeline: pd.DataFrame = field(default_factory=pd.DataFrame)
    coin_totals: pd.DataFrame = field(default_factory=pd.DataFrame)
    coin_buckets: pd.DataFrame = field(default_factory=pd.DataFrame)
    heatmap_coins: list[str] = field(default_factory=list)
    latest: pd.DataFrame = field(default_factory=pd.DataFrame)
    alerts: pd.DataFrame = field(default_factory=pd.DataFrame)
    throughput: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def empty(self) -> bool:
        """True when nothing at all is stored yet."""
        return self.first_minute is None


def load_snapshot(
    conn: queries.Connection,
    range_key: str,
    *,
    group: str,
    topic: str,
    drill_coins: Sequence[str] = (),
    tweets_coin: str | None = None,
) -> Snapshot:
    """Run the refresh's queries (about ten, each an index range) and bundle the results."""
    state = queries.store_state(conn, group, topic)
    first = queries.first_minute(conn)
    if first is None:
        return Snapshot(range_key, state, None)
    window = queries.RANGES[range_key]
    span = min(window, max(state.now - first, timedelta(minutes=1)))
    bucket = queries.bucket_seconds(span)
    coin_totals = queries.coin_totals(conn, window)
    heatmap_coins = [str(c) for c in coin_totals["coin"].head(HEATMAP_COINS)]
    wanted = list(dict.fromkeys([*heatmap_coins, *drill_coins]))
    return Snapshot(
        range_key=range_key,
        state=state,
        first_minute=first,
        bucket=bucket,
        totals=queries.totals(conn, window),
        rate=queries.tweet_rate(conn),
        timeline=queries.timeline(conn, window, bucket),
        coin_totals=coin_totals,
        coin_buckets=queries.coin_buckets(conn, wanted, window, bucket),
        heatmap_coins=heatmap_coins,
        latest=queries.latest_tweets(conn, window, LATEST_ROWS, tweets_coin),
        alerts=queries.recent_alerts(conn, window),
        throughput=queries.timeline(conn, THROUGHPUT_WINDOW, 60),
    )
