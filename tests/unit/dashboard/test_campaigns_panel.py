"""The dashboard's organic switch and bot-share maths, without a browser or a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from cryptosent.dashboard.campaigns import bot_share, organic_columns, organic_totals, summarise

T = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def coin_totals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "coin": ["BTC", "PEPE"],
            "tweets": [100, 40],
            "positive": [50, 30], "neutral": [30, 5], "negative": [20, 5],
            "compound_sum": [20.0, 20.0],
            "organic_tweets": [98, 10],
            "organic_positive": [49, 2], "organic_neutral": [29, 4], "organic_negative": [20, 4],
            "organic_compound_sum": [19.6, -1.0],
            "weight_sum": [200.0, 50.0], "weighted_compound_sum": [60.0, 25.0],
            "organic_weight_sum": [198.0, 20.0], "organic_weighted_compound_sum": [59.4, -4.0],
        }
    )  # fmt: skip


def test_organic_columns_take_the_plain_names() -> None:
    frame = organic_columns(coin_totals())
    assert list(frame["tweets"]) == [98, 10]
    assert list(frame["positive"]) == [49, 2]
    assert list(frame["weight_sum"]) == [198.0, 20.0]
    assert not [c for c in frame.columns if c.startswith("organic_")]
    # a frame without organic columns (an older lake) is left as it is
    plain = pd.DataFrame({"tweets": [1]})
    assert organic_columns(plain) is plain


def test_organic_totals() -> None:
    totals = {"tweets": 10.0, "positive": 4.0, "organic_tweets": 7.0, "organic_positive": 3.0}
    assert organic_totals(totals) == {"tweets": 7.0, "positive": 3.0}


def test_bot_share_and_weighted_means() -> None:
    organic = bot_share(coin_totals(), organic=True)
    assert list(organic["coin"]) == ["BTC", "PEPE"]
    assert list(organic["bot_share"]) == pytest.approx([2.0, 75.0])
    assert list(organic["mean"]) == pytest.approx([19.6 / 98, -1.0 / 10])
    assert list(organic["weighted_mean"]) == pytest.approx([59.4 / 198, -4.0 / 20])
    every = bot_share(coin_totals(), organic=False)
    assert list(every["mean"]) == pytest.approx([0.2, 0.5])
    assert list(every["weighted_mean"]) == pytest.approx([0.3, 0.5])
    assert bot_share(pd.DataFrame(), organic=True).empty


def test_campaign_summary() -> None:
    posts = pd.DataFrame(
        {
            "campaign_id": ["ca", "ca", "cb", "ca"],
            "created_at": [T, T.replace(minute=2), T.replace(minute=1), T.replace(minute=1)],
            "id": ["1", "4", "3", "2"],
            "account": ["u1", "u2", "u9", "u1"],
            "text": ["first", "last", "other", "second"],
            "coins": [["PEPE"], ["PEPE", "BONK"], None, ["BONK", "PEPE"]],
        }
    )
    table = summarise(posts)
    assert table.to_dict("records") == [
        {"campaign": "ca", "posts": 3, "accounts": 2, "coins": "PEPE BONK",
         "first_post": T, "last_post": T.replace(minute=2), "sample": "first"},
        {"campaign": "cb", "posts": 1, "accounts": 1, "coins": "",
         "first_post": T.replace(minute=1), "last_post": T.replace(minute=1), "sample": "other"},
    ]  # fmt: skip
    assert summarise(posts.iloc[:0]).empty
