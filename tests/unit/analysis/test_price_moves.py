"""Alerts that need the price to agree: the move over the window, worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cryptosent.analysis.alerts import Alert
from cryptosent.analysis.price_moves import price_move, with_price_move

T = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)


def at(minutes: int) -> datetime:
    return T + timedelta(minutes=minutes)


def test_each_end_takes_the_last_close_at_or_before_it() -> None:
    closes = [(at(-45), 100.0), (at(-31), 102.0), (at(-10), 103.0), (at(1), 999.0)]
    # start: the close at -31 (the last at or before -30); end: the one at -10 (before 0)
    assert price_move(closes, T, WINDOW) == pytest.approx(100 * (103 / 102 - 1))
    assert price_move(closes, at(-15), WINDOW) == pytest.approx(2.0)  # -45 -> -31
    assert price_move(closes, at(-31), WINDOW) is None  # nothing at or before -61
    assert price_move(closes, at(-46), WINDOW) is None  # no close before either end
    assert price_move([], T, WINDOW) is None


def test_alerts_kept_only_with_a_large_enough_move_either_way() -> None:
    up = Alert("BTC", T, "volume_surge", 90.0, 10.0, "BTC: 90 tweets")
    flat = Alert("ETH", T, "volume_surge", 50.0, 5.0, "ETH: 50 tweets")
    down = Alert("SOL", T, "sentiment_swing", -0.6, 0.1, "SOL: mood fell")
    unpriced = Alert("DOGE", T, "volume_surge", 40.0, 4.0, "DOGE: 40 tweets")
    closes = {
        "BTC": [(at(-30), 100.0), (T, 105.0)],
        "ETH": [(at(-30), 100.0), (T, 101.0)],
        "SOL": [(at(-40), 50.0), (at(-5), 48.0)],
    }
    kept = with_price_move([up, flat, down, unpriced], closes, 2.0, WINDOW)
    assert [a.coin for a in kept] == ["BTC", "SOL"]
    assert kept[0].message == "BTC: 90 tweets; price +5.0 % in 30 min"
    assert kept[1].message == "SOL: mood fell; price -4.0 % in 30 min"
    assert kept[0].value == 90.0 and kept[0].kind == "volume_surge"
