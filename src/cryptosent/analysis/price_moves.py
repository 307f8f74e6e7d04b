"""Alerts that need the price to agree: a volume surge or sentiment swing kept only when the
coin's close moved by at least a given percentage over the alert window (pure, no I/O).

The move of a minute is the last close at or before it against the last close at or before
the window's start; a coin without both closes has no move and its alerts are dropped while
the requirement is on.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from cryptosent.analysis.alerts import Alert


def price_move(
    closes: Sequence[tuple[datetime, float]], minute: datetime, window: timedelta
) -> float | None:
    """Percent change of the close from `minute - window` to `minute` (closes sorted by
    minute; each end takes the last close at or before it); None without both."""
    times = [t for t, _ in closes]
    end = bisect_right(times, minute) - 1
    start = bisect_right(times, minute - window) - 1
    if end < 0 or start < 0 or closes[start][1] <= 0:
        return None
    return 100.0 * (closes[end][1] / closes[start][1] - 1.0)


def with_price_move(
    alerts: Sequence[Alert],
    closes: Mapping[str, Sequence[tuple[datetime, float]]],
    percent: float,
    window: timedelta,
) -> list[Alert]:
    """The alerts whose coin's close moved at least `percent` (either way) over `window`,
    their message saying by how much."""
    kept = []
    minutes = int(window.total_seconds() // 60)
    for alert in alerts:
        move = price_move(closes.get(alert.coin, ()), alert.minute, window)
        if move is not None and abs(move) >= percent:
            message = f"{alert.message}; price {move:+.1f} % in {minutes} min"
            kept.append(replace(alert, message=message))
    return kept
