"""Lead-lag on arrays: lags found, significance honest on unrelated series, too little data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptosent.analysis.leadlag import (
    LagResult,
    MinuteSeries,
    cross_correlations,
    effective_size,
    lead_lag,
    returns,
    verdict,
)


def synthetic(
    n: int, seed: int, lead: int = 12, related: bool = True, gaps: float = 0.0
) -> MinuteSeries:
    """AR(1) sentiment (phi 0.8); returns = noise + (if related) sentiment `lead` minutes ago."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0, 0.1, n)
    mood = np.zeros(n)
    for t in range(1, n):
        mood[t] = 0.8 * mood[t - 1] + shocks[t]
    moves = rng.normal(0, 0.001, n)
    if related:
        if lead >= 0:
            moves[lead:] += 0.004 * mood[: n - lead]
        else:
            moves[: n + lead] += 0.004 * mood[-lead:]
    close = 100 * np.exp(np.cumsum(moves))
    sentiment = mood.copy()
    if gaps:
        sentiment[rng.random(n) < gaps] = np.nan
    return MinuteSeries(sentiment, rng.poisson(20, n).astype(float), close)


def test_returns_carry_the_close_over_minutes_without_trades() -> None:
    close = np.array([np.nan, 100.0, np.nan, 110.0, 110.0])
    got = returns(close)
    assert math.isnan(got[0]) and math.isnan(got[1])
    assert got[2] == 0.0
    assert got[3] == pytest.approx(math.log(1.1), abs=1e-15)
    assert got[4] == 0.0


def test_cross_correlation_of_a_shifted_copy_is_one_at_its_lag() -> None:
    x = np.random.default_rng(1).normal(size=500)
    y = np.roll(x, 7)  # y[t + 7] = x[t]: x leads by 7
    lags = dict(cross_correlations(x, y, 10))
    assert sorted(lags) == list(range(-10, 11))
    assert lags[7] == pytest.approx(1.0, abs=1e-12)
    assert max(lags, key=lambda k: abs(lags[k])) == 7
    assert abs(lags[-7]) < 0.2


@pytest.mark.parametrize("seed", range(5))
def test_sentiment_leading_price_is_found_at_its_lag(seed: int) -> None:
    result = lead_lag(synthetic(1440, seed, lead=12, gaps=0.2), max_lag=60)
    s = result.sentiment
    assert result.reason is None
    assert result.n_minutes == 1439
    assert s.best_lag_minutes is not None and abs(s.best_lag_minutes - 12) <= 2
    assert s.significant
    assert s.ci_low is not None and s.ci_high is not None and s.correlation is not None
    assert 0 < s.ci_low < s.correlation < s.ci_high
    assert len(s.lags) == 121
    assert verdict(s, 24).startswith("sentiment led price by ~")


def test_price_leading_sentiment_is_a_negative_lag() -> None:
    s = lead_lag(synthetic(1440, 3, lead=-5), max_lag=30).sentiment
    assert s.best_lag_minutes == -5
    assert s.significant
    assert verdict(s, 24).startswith("price led sentiment by ~5 min, r = ")


def test_unrelated_series_are_rarely_significant() -> None:
    """Family-wise error over 121 lags on autocorrelated sentiment stays near 5 %."""
    runs = 200
    false = sum(
        lead_lag(synthetic(1440, 1000 + seed, related=False), max_lag=60).sentiment.significant
        for seed in range(runs)
    )
    assert false <= 0.08 * runs


def test_effective_size_shrinks_with_shared_autocorrelation() -> None:
    rng = np.random.default_rng(4)
    white = rng.normal(size=5000)
    assert effective_size(white, rng.normal(size=5000), 50) > 4500

    def ar(phi: float) -> np.ndarray:
        e, x = rng.normal(size=5000), np.zeros(5000)
        for t in range(1, 5000):
            x[t] = phi * x[t - 1] + e[t]
        return x

    # Bartlett: n (1 - phi^2) / (1 + phi^2) = 0.22 n for two AR(1) with phi = 0.8
    assert 0.15 * 5000 < effective_size(ar(0.8), ar(0.8), 50) < 0.32 * 5000


def test_too_few_minutes_says_so() -> None:
    result = lead_lag(synthetic(200, 1), max_lag=60)
    assert (
        result.reason
        == "too little data: 199 minutes with prices, 240 needed for lags up to 60 min"
    )
    assert not result.sentiment.significant
    assert result.sentiment.best_lag_minutes is None
    assert verdict(result.sentiment, 24) == "not enough data over the last 24 h"


def test_no_prices_no_posts_flat_price_each_say_so() -> None:
    n = 600
    nothing = MinuteSeries(np.full(n, np.nan), np.zeros(n), np.full(n, np.nan))
    assert lead_lag(nothing, 60).reason == (
        "too little data: 0 minutes with prices, 240 needed for lags up to 60 min"
    )
    priced = MinuteSeries(np.full(n, np.nan), np.zeros(n), np.linspace(100, 120, n))
    assert lead_lag(priced, 60).reason == "too little data: 0 minutes with posts, 30 needed"
    flat = MinuteSeries(np.zeros(n), np.ones(n), np.full(n, 100.0))
    assert lead_lag(flat, 60).reason == "too little data: the price did not move"


def test_only_the_minutes_from_first_to_last_price_count() -> None:
    series = synthetic(1440, 2)
    close = series.close.copy()
    close[:100] = np.nan
    close[-40:] = np.nan
    result = lead_lag(MinuteSeries(series.sentiment, series.mentions, close), 60)
    assert result.n_minutes == 1440 - 100 - 40 - 1


def test_json_shape_and_verdicts() -> None:
    result = LagResult("sentiment", 12, 0.41234, 0.3, 0.5, True, 0.1, 800.0, [(0, 0.012345)])
    assert result.as_dict() == {
        "best_lag_minutes": 12, "correlation": 0.4123, "ci_low": 0.3, "ci_high": 0.5,
        "significant": True, "threshold": 0.1, "n_effective": 800.0,
        "lags": [{"lag_minutes": 0, "correlation": 0.0123}],
    }  # fmt: skip
    assert (
        verdict(result, 24)
        == "sentiment led price by ~12 min, r = 0.41, significant over the last 24 h"
    )
    no = LagResult("sentiment", 3, 0.05, -0.02, 0.12, False, 0.1, 800.0, [])
    assert verdict(no, 6) == "no significant relation over the last 6 h"
    same = LagResult("volume", 0, 0.3, 0.2, 0.4, True, 0.1, 800.0, [])
    assert verdict(same, 24) == (
        "mention volume and price moved in the same minute, r = 0.30, "
        "significant over the last 24 h"
    )


def test_a_max_lag_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_lag"):
        lead_lag(synthetic(300, 1), 0)
