"""Per-coin spike detection on closed minutes against a trailing baseline (pure, no I/O).

Two kinds of alert for a coin's minute:
- ``volume_surge``: at least ``min_tweets`` tweets and ``volume_factor`` times the baseline's mean
  tweets per minute (minutes without tweets count as zero);
- ``sentiment_swing``: at least ``min_tweets`` tweets and a mean compound that differs from the
  baseline's (tweet-weighted) mean by ``sentiment_swing`` or more, where the baseline holds at
  least ``min_tweets`` tweets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class AlertRules:
    """Thresholds (all configurable through Settings)."""

    window_minutes: int = 30
    min_tweets: int = 20
    volume_factor: float = 3.0
    sentiment_swing: float = 0.35


@dataclass(frozen=True)
class CoinMinute:
    """One row of `coin_minute`: tweets and summed compound of a coin in a minute."""

    coin: str
    minute: datetime
    tweets: int
    compound_sum: float


@dataclass(frozen=True)
class Alert:
    """A detected spike."""

    coin: str
    minute: datetime
    kind: str
    value: float
    baseline: float
    message: str


def detect(rows: Iterable[CoinMinute], minute: datetime, rules: AlertRules) -> list[Alert]:
    """Alerts for `minute`, given coin_minute rows of it and of the window before it."""
    start = minute - rules.window_minutes * MINUTE
    current: dict[str, CoinMinute] = {}
    base_tweets: dict[str, int] = defaultdict(int)
    base_sum: dict[str, float] = defaultdict(float)
    for row in rows:
        if row.coin == "*":
            continue
        if row.minute == minute:
            current[row.coin] = row
        elif start <= row.minute < minute:
            base_tweets[row.coin] += row.tweets
            base_sum[row.coin] += row.compound_sum
    alerts = []
    for coin, now in sorted(current.items()):
        if now.tweets < rules.min_tweets:
            continue
        mean_volume = base_tweets[coin] / rules.window_minutes
        ratio = now.tweets / max(mean_volume, 1.0)
        if ratio >= rules.volume_factor:
            alerts.append(
                Alert(
                    coin, minute, "volume_surge", float(now.tweets), mean_volume,
                    f"{coin}: {now.tweets} tweets in a minute, {ratio:.1f}x "
                    f"its {rules.window_minutes}-minute average of {mean_volume:.1f}",
                )
            )  # fmt: skip
        if base_tweets[coin] >= rules.min_tweets:
            mean_now = now.compound_sum / now.tweets
            mean_before = base_sum[coin] / base_tweets[coin]
            if abs(mean_now - mean_before) >= rules.sentiment_swing:
                direction = "up" if mean_now > mean_before else "down"
                alerts.append(
                    Alert(
                        coin, minute, "sentiment_swing", mean_now, mean_before,
                        f"{coin}: sentiment swung {direction} to {mean_now:+.2f} from "
                        f"{mean_before:+.2f} over {now.tweets} tweets",
                    )
                )  # fmt: skip
    return alerts
