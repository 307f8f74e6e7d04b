"""Spike detection on minute windows (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptosent.analysis.alerts import MINUTE, AlertRules, CoinMinute, detect

T = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES = AlertRules(window_minutes=10, min_tweets=20, volume_factor=3.0, sentiment_swing=0.35)


def steady(coin: str, tweets: int, mean: float, minutes: int = 10) -> list[CoinMinute]:
    return [CoinMinute(coin, T - (i + 1) * MINUTE, tweets, tweets * mean) for i in range(minutes)]


def test_volume_surge_against_the_trailing_mean() -> None:
    rows = [*steady("BTC", 10, 0.1), CoinMinute("BTC", T, 30, 3.0)]
    (alert,) = detect(rows, T, RULES)
    assert (alert.coin, alert.kind, alert.value, alert.baseline) == ("BTC", "volume_surge", 30, 10)
    assert alert.message == "BTC: 30 tweets in a minute, 3.0x its 10-minute average of 10.0"


def test_just_below_the_factor_is_quiet() -> None:
    rows = [*steady("BTC", 10, 0.1), CoinMinute("BTC", T, 29, 2.9)]
    assert detect(rows, T, RULES) == []


def test_a_new_coin_needs_min_tweets() -> None:
    assert detect([CoinMinute("PEPE", T, 19, 0.0)], T, RULES) == []
    (alert,) = detect([CoinMinute("PEPE", T, 20, 0.0)], T, RULES)
    assert alert.kind == "volume_surge" and alert.baseline == 0.0


def test_sentiment_swing_both_ways_and_the_all_row_is_ignored() -> None:
    rows = [
        *steady("ETH", 30, 0.10),
        CoinMinute("ETH", T, 30, 30 * -0.30),  # mean -0.30 vs +0.10: down by 0.40
        *steady("SOL", 30, -0.20),
        CoinMinute("SOL", T, 30, 30 * 0.10),  # up by 0.30: below the 0.35 threshold
        CoinMinute("*", T, 10_000, 0.0),
    ]
    (alert,) = detect(rows, T, RULES)
    assert (alert.coin, alert.kind) == ("ETH", "sentiment_swing")
    assert round(alert.value, 6) == -0.3 and round(alert.baseline, 6) == 0.1
    assert alert.message == "ETH: sentiment swung down to -0.30 from +0.10 over 30 tweets"


def test_rows_outside_the_window_do_not_count() -> None:
    old = CoinMinute("BTC", T - 11 * MINUTE, 1000, 0.0)
    rows = [old, CoinMinute("BTC", T, 25, 0.0)]
    (alert,) = detect(rows, T, RULES)
    assert alert.baseline == 0.0
