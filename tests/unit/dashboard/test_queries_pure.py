"""The query layer's pure parts: bucket widths, analyzer choice, lag arithmetic, formatting."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from cryptosent.dashboard import formatting
from cryptosent.dashboard.kafka_lag import TopicPositions, consumer_lag
from cryptosent.dashboard.queries import (
    _PARAM,
    RANGES,
    bucket_seconds,
    pick_analyzer,
    pick_totals,
)


def test_buckets_keep_series_short_and_long_ranges_hourly() -> None:
    assert bucket_seconds(RANGES["15 min"]) == 60
    assert bucket_seconds(RANGES["1 h"]) == 60
    assert bucket_seconds(RANGES["24 h"]) == 900
    assert bucket_seconds(RANGES["7 d"]) == 3 * 3600
    assert bucket_seconds(timedelta(days=365)) == 7 * 86_400
    assert bucket_seconds(timedelta(seconds=5)) == 60


def test_pick_analyzer_renames_the_chosen_columns() -> None:
    frame = pd.DataFrame(
        {"coin": ["BTC"], "tweets": [3], "positive": [2], "compound_sum": [0.5],
         "vader_positive": [1], "vader_compound_sum": [0.1], "prev_tweets": [1],
         "prev_compound_sum": [0.2], "prev_vader_compound_sum": [-0.2]}
    )  # fmt: skip
    crypto = pick_analyzer(frame, "learned")
    assert list(crypto.columns) == [
        "coin", "tweets", "positive", "compound_sum", "prev_tweets", "prev_compound_sum"
    ]  # fmt: skip
    assert crypto["positive"].tolist() == [2]
    vader = pick_analyzer(frame, "vader")
    assert sorted(vader.columns) == sorted(crypto.columns)
    assert vader["positive"].tolist() == [1]
    assert vader["compound_sum"].tolist() == [0.1]
    assert vader["prev_compound_sum"].tolist() == [-0.2]


def test_pick_totals() -> None:
    row = {"tweets": 4.0, "positive": 1.0, "neutral": 2.0, "negative": 1.0, "compound_sum": 0.3,
           "vader_positive": 3.0, "vader_neutral": 1.0, "vader_negative": 0.0,
           "vader_compound_sum": 0.9}  # fmt: skip
    assert pick_totals(row, "vader") == {
        "tweets": 4.0, "positive": 3.0, "neutral": 1.0, "negative": 0.0, "compound_sum": 0.9
    }  # fmt: skip


def test_duckdb_parameters_are_named_dollars() -> None:
    assert _PARAM.sub(r"$\1", "a >= now() - %(window)s and c = any(%(coins)s)") == (
        "a >= now() - $window and c = any($coins)"
    )


def test_lag_uses_stored_offsets_then_commits() -> None:
    positions = TopicPositions(high={0: 100, 1: 50, 2: 7}, committed={0: 90, 1: 40, 2: -1001})
    assert consumer_lag(positions, {0: 95}) == {0: 5, 1: 10, 2: 7}


def test_formatting() -> None:
    assert formatting.age(None) == "—"
    assert formatting.age(4.2) == "4 s"
    assert formatting.age(600) == "10 min"
    assert formatting.age(3 * 3600) == "3.0 h"
    assert formatting.age(3 * 86_400) == "3.0 d"
    assert formatting.count(1234567) == "1,234,567"
    assert formatting.share(1, 3) == "33.3 %"
    assert formatting.share(1, 0) == "—"
    assert formatting.mean_compound({"tweets": 4, "compound_sum": 1.0}) == 0.25
    assert formatting.mean_compound({"tweets": 0, "compound_sum": 0.0}) is None
    assert formatting.mood(0.3) == "bullish"
    assert formatting.mood(-0.05) == "bearish"
    assert formatting.mood(0.0) == "neutral"
