"""Does a coin's sentiment move before its price? Lagged correlation on minute buckets, with a
significance measure that accounts for autocorrelation and for the number of lags tried
(pure, no I/O; the method and its limits are in docs/market.md).

Convention: at lag ``k`` the signal of minute ``t`` is paired with the price return of minute
``t + k``; a positive best lag means the signal (sentiment or mention volume) moved first.

Significance: the correlation at each lag is tested against "no relation" with Bartlett's
variance for the cross-correlation of two autocorrelated series, i.e. an effective sample size
``n_eff = n / (1 + 2 * sum_j rho_x(j) * rho_y(j))``, and a Bonferroni correction over the
``2 * max_lag + 1`` lags tried, so picking the best lag does not manufacture significance.
The interval around the best correlation is Fisher's z at that adjusted level with ``n_eff``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

ALPHA: Final = 0.05
"""Family-wise error rate over all lags tried."""
MIN_MINUTES: Final = 120
"""Below this many minutes (or 4 times the largest lag) there is too little data to say."""
MIN_POSTED_MINUTES: Final = 30
"""Minutes with at least one post needed for a sentiment series worth correlating."""

Signal = Literal["sentiment", "volume"]


@dataclass(frozen=True)
class MinuteSeries:
    """One coin on consecutive minutes: mean sentiment (NaN without posts), mentions and the
    closing price (NaN in a minute without trades)."""

    sentiment: Floats
    mentions: Floats
    close: Floats

    def __post_init__(self) -> None:
        sizes = {len(self.sentiment), len(self.mentions), len(self.close)}
        if len(sizes) != 1:
            raise ValueError(f"series of different lengths: {sorted(sizes)}")


@dataclass(frozen=True)
class LagResult:
    """The lagged correlations of one signal with the price returns and the verdict."""

    signal: Signal
    best_lag_minutes: int | None
    correlation: float | None
    ci_low: float | None
    ci_high: float | None
    significant: bool
    threshold: float | None
    """|r| above which a single lag's correlation is significant (the band the dashboard draws)."""
    n_effective: float | None
    lags: list[tuple[int, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The JSON shape (lags as {lag_minutes, correlation})."""
        return {
            "best_lag_minutes": self.best_lag_minutes,
            "correlation": _round(self.correlation),
            "ci_low": _round(self.ci_low),
            "ci_high": _round(self.ci_high),
            "significant": self.significant,
            "threshold": _round(self.threshold),
            "n_effective": None if self.n_effective is None else round(self.n_effective, 1),
            "lags": [{"lag_minutes": k, "correlation": _round(r)} for k, r in self.lags],
        }


@dataclass(frozen=True)
class LeadLag:
    """The answer for one coin: sentiment vs returns (the headline) and mention volume vs the
    size of the move; `reason` says why there is no answer (too little data), else None."""

    n_minutes: int
    max_lag: int
    sentiment: LagResult
    volume: LagResult
    reason: str | None = None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def returns(close: Floats) -> Floats:
    """Log returns per minute: close carried forward over minutes without trades; NaN until the
    second known price."""
    filled = _forward_fill(close)
    out = np.full(len(close), np.nan)
    if len(close) > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[1:] = np.diff(np.log(filled))
    return out


def _forward_fill(values: Floats) -> Floats:
    known = ~np.isnan(values)
    index = np.where(known, np.arange(len(values)), 0)
    np.maximum.accumulate(index, out=index)
    filled = values[index]
    filled[: int(np.argmax(known)) if known.any() else len(values)] = np.nan
    return filled


def _lagged_products(x: Floats, y: Floats) -> tuple[Floats, int]:
    """sum_t x[t] * y[t + k] for every k, by FFT (index k, negative k from the end), and the
    FFT length."""
    size = 1 << (2 * len(x) - 1).bit_length()
    spectrum = np.conj(np.fft.rfft(x, size)) * np.fft.rfft(y, size)
    return np.fft.irfft(spectrum, size), size


def cross_correlations(x: Floats, y: Floats, max_lag: int) -> list[tuple[int, float]]:
    """Pearson correlation of x[t] with y[t + k] over the overlapping minutes, k = -max..max
    (each lag with its own overlap's means and variances; FFT and prefix sums, O(n log n))."""
    n = len(x)
    x = x - x.mean()  # centred first: the sums below then cancel no large terms
    y = y - y.mean()
    products, size = _lagged_products(x, y)
    zero = np.zeros(1)
    sx, sxx = np.concatenate([zero, np.cumsum(x)]), np.concatenate([zero, np.cumsum(x * x)])
    sy, syy = np.concatenate([zero, np.cumsum(y)]), np.concatenate([zero, np.cumsum(y * y)])
    out = []
    for k in range(-max_lag, max_lag + 1):
        m = n - abs(k)
        if m < 3:
            out.append((k, math.nan))
            continue
        # x[a:a+m] pairs with y[b:b+m]
        a, b = (0, k) if k >= 0 else (-k, 0)
        sum_x, sum_y = sx[a + m] - sx[a], sy[b + m] - sy[b]
        var_x = sxx[a + m] - sxx[a] - sum_x * sum_x / m
        var_y = syy[b + m] - syy[b] - sum_y * sum_y / m
        cov = products[k % size] - sum_x * sum_y / m
        denominator = math.sqrt(var_x * var_y) if var_x > 0 and var_y > 0 else 0.0
        out.append((k, float(cov / denominator) if denominator > 0 else math.nan))
    return out


def autocorrelations(x: Floats, lags: int) -> Floats:
    """Sample autocorrelations rho(1..lags) (the usual biased estimator)."""
    x = x - x.mean()
    products, _ = _lagged_products(x, x)
    if products[0] <= 0:
        return np.zeros(lags)
    return np.asarray(products[1 : lags + 1] / products[0], dtype=np.float64)


def effective_size(x: Floats, y: Floats, lags: int) -> float:
    """Bartlett's effective sample size for the correlation of two autocorrelated series."""
    n = len(x)
    lags = max(1, min(lags, n // 4))
    inflation = 1.0 + 2.0 * float(autocorrelations(x, lags) @ autocorrelations(y, lags))
    return float(min(n, max(4.0, n / max(inflation, 1e-9))))


def lag_test(x: Floats, y: Floats, max_lag: int, signal: Signal, alpha: float = ALPHA) -> LagResult:
    """Correlations at every lag, the best (largest |r|), its interval and whether it holds
    after the autocorrelation and multiple-lag corrections."""
    lags = cross_correlations(x, y, max_lag)
    finite = [(k, r) for k, r in lags if math.isfinite(r)]
    if not finite:
        return LagResult(signal, None, None, None, None, False, None, None, lags)
    best, r = max(finite, key=lambda kr: (abs(kr[1]), -abs(kr[0])))
    z = NormalDist().inv_cdf(1 - alpha / (2 * len(lags)))
    n_eff = effective_size(x, y, 2 * max_lag + 1)
    n_best = n_eff * (len(x) - abs(best)) / len(x)  # the best lag's overlap is shorter
    half = z / math.sqrt(max(n_best - 3.0, 1.0))
    centre = math.atanh(max(min(r, 0.999999), -0.999999))
    low, high = math.tanh(centre - half), math.tanh(centre + half)
    threshold = math.tanh(z / math.sqrt(max(n_eff - 3.0, 1.0)))
    return LagResult(signal, best, r, low, high, low > 0 or high < 0, threshold, n_eff, lags)


def _no_answer(signal: Signal, max_lag: int) -> LagResult:
    return LagResult(signal, None, None, None, None, False, None, None, [])


def lead_lag(series: MinuteSeries, max_lag: int = 60, alpha: float = ALPHA) -> LeadLag:
    """Sentiment vs price returns and mention volume vs absolute returns at every lag in
    -max_lag..max_lag, on the minutes from the first to the last known price."""
    if max_lag < 1:
        raise ValueError("max_lag must be at least 1 minute")
    known = np.flatnonzero(~np.isnan(series.close))
    if len(known):
        window = slice(int(known[0]), int(known[-1]) + 1)
        sentiment, mentions = series.sentiment[window], series.mentions[window]
        moves = returns(series.close[window])[1:]  # the first minute has no return
        sentiment, mentions = sentiment[1:], mentions[1:]
    else:
        sentiment = mentions = moves = np.zeros(0)
    n = len(moves)
    posted = int(np.count_nonzero(~np.isnan(sentiment)))
    needed = max(MIN_MINUTES, 4 * max_lag)
    reason = None
    if n < needed:
        reason = (
            f"too little data: {n} minutes with prices, {needed} needed for lags up to "
            f"{max_lag} min"
        )
    elif posted < MIN_POSTED_MINUTES:
        reason = f"too little data: {posted} minutes with posts, {MIN_POSTED_MINUTES} needed"
    elif not np.any(moves != 0):
        reason = "too little data: the price did not move"
    if reason is not None:
        return LeadLag(n, max_lag, _no_answer("sentiment", max_lag), _no_answer("volume", max_lag),
                       reason)  # fmt: skip
    # minutes without posts carry no opinion: the window's mean, so they add nothing to the sum
    mood = np.where(np.isnan(sentiment), np.nanmean(sentiment), sentiment)
    return LeadLag(
        n,
        max_lag,
        lag_test(mood, moves, max_lag, "sentiment", alpha),
        lag_test(np.log1p(mentions), np.abs(moves), max_lag, "volume", alpha),
    )


def verdict(result: LagResult, hours: float) -> str:
    """Plain words: 'sentiment led price by ~12 min, r = 0.41, significant over the last 24 h'."""
    span = f"{hours:g} h"
    if result.best_lag_minutes is None or result.correlation is None:
        return f"not enough data over the last {span}"
    if not result.significant:
        return f"no significant relation over the last {span}"
    k, r = result.best_lag_minutes, result.correlation
    what = "sentiment" if result.signal == "sentiment" else "mention volume"
    if k > 0:
        how = f"{what} led price by ~{k} min"
    elif k < 0:
        how = f"price led {what} by ~{-k} min"
    else:
        how = f"{what} and price moved in the same minute"
    return f"{how}, r = {r:.2f}, significant over the last {span}"
