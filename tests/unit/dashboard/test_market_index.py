"""The sentiment index on numbers worked out by hand (docs/market.md)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from cryptosent.dashboard.market import sentiment_index


def test_an_ordinary_bucket_scores_50() -> None:
    # baseline volumes 20, 40 (mean 30, std 10); moods 0.0, 0.2 (mean 0.1, std 0.1)
    got = sentiment_index(30, 30, 3.0, 60, 2000, 2, 0.2, 0.04, buckets=2)
    assert got == pytest.approx(50.0, abs=1e-9)


def test_one_std_more_volume_and_half_a_std_better_mood() -> None:
    # 40 tweets (z = 1), mood 0.15 (z = 0.5): 100 * Phi(1.5 / sqrt 2)
    got = sentiment_index(40, 40, 6.0, 60, 2000, 2, 0.2, 0.04, buckets=2)
    assert got == pytest.approx(100 * NormalDist().cdf(1.5 / math.sqrt(2)), abs=1e-9)
    assert round(got, 2) == 85.56


def test_flat_baselines_use_the_floors() -> None:
    # volume std 0 -> 1 tweet; mood std 0 -> 0.05: z_volume 0, z_mood (-0.2 + 0.1) / 0.05 = -2
    got = sentiment_index(10, 10, -2.0, 20, 200, 2, -0.2, 0.02, buckets=2)
    assert got == pytest.approx(100 * NormalDist().cdf(-2 / math.sqrt(2)), abs=1e-9)
    assert round(got, 3) == 7.865


def test_no_posts_now_or_no_baseline_posts_leave_mood_out() -> None:
    # empty bucket: z_volume = (0 - 30) / 10 = -3, no mood
    assert sentiment_index(0, 0, 0.0, 60, 2000, 2, 0.2, 0.04, buckets=2) == pytest.approx(
        100 * NormalDist().cdf(-3 / math.sqrt(2)), abs=1e-9
    )
    # a coin never mentioned before: volume z = 5 against the 1-tweet floor, mood unknown
    assert sentiment_index(5, 5, 5.0, 0, 0, 0, 0.0, 0.0, buckets=60) == pytest.approx(
        100 * NormalDist().cdf(5 / math.sqrt(2)), abs=1e-9
    )
