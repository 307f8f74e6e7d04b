"""Every figure builds from small frames shaped like the queries' results."""

from __future__ import annotations

import pandas as pd

from cryptosent.dashboard import charts

BUCKETS = pd.to_datetime(["2026-01-01T10:00Z", "2026-01-01T10:01Z"])


def test_figures_build() -> None:
    timeline = pd.DataFrame(
        {"bucket": BUCKETS, "tweets": [3, 0], "positive": [2, 0], "neutral": [1, 0],
         "negative": [0, 0], "compound_sum": [0.9, 0.0]}
    )  # fmt: skip
    coins = pd.DataFrame(
        {"coin": ["BTC", "ETH"], "tweets": [10, 6], "positive": [5, 1], "neutral": [3, 2],
         "negative": [2, 3], "compound_sum": [2.0, -1.2], "prev_tweets": [4, 0],
         "prev_compound_sum": [0.4, 0.0]}
    )  # fmt: skip
    buckets = pd.DataFrame(
        {"coin": ["BTC", "BTC", "ETH"], "bucket": [BUCKETS[0], BUCKETS[1], BUCKETS[0]],
         "tweets": [6, 4, 6], "compound_sum": [1.2, 0.8, -1.2]}
    )  # fmt: skip
    figures = [
        charts.sentiment_pie(5, 3, 2),
        charts.sentiment_timeline(timeline),
        charts.top_mentions(coins, {"BTC": "Bitcoin"}),
        charts.leaderboard(coins, min_tweets=5),
        charts.heatmap(buckets, ["BTC", "ETH"]),
        charts.coin_drilldown(buckets, ["BTC", "ETH"]),
        charts.throughput(timeline),
    ]
    assert all(fig.to_dict()["data"] for fig in figures)
    # the quiet minute has no mean (a gap in the line, not a fake 0)
    assert pd.isna(charts.mean(timeline["compound_sum"], timeline["tweets"]).iloc[1])
    board = charts.leaderboard(coins, min_tweets=5).to_dict()["data"][0]
    assert list(board["y"]) == ["ETH", "BTC"]
    assert board["text"][1] == "+0.20 (+0.10)"
