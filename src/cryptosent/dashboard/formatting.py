"""Numbers and durations as people read them on the page."""

from __future__ import annotations

from collections.abc import Mapping


def age(seconds: float | None) -> str:
    """'4 s', '12 min', '3.5 h', '2.0 d'; an em dash when unknown."""
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def count(n: float) -> str:
    """Thousands separated by thin commas: 1,234,567."""
    return f"{n:,.0f}"


def share(part: float, whole: float) -> str:
    """Percentage of `whole` with one decimal; an em dash when `whole` is zero."""
    return f"{100.0 * part / whole:.1f} %" if whole else "—"


def mean_compound(totals: Mapping[str, float]) -> float | None:
    """Mean compound of totals holding `compound_sum` and the label counts (or `tweets`), None
    without scored tweets; ``unscored`` posts are in no label count and in no mean."""
    labels = ("positive", "neutral", "negative")
    count = (
        sum(totals[k] for k in labels) if all(k in totals for k in labels) else totals.get("tweets")
    )
    return totals["compound_sum"] / count if count else None


def mood(value: float | None) -> str:
    """A word for a mean compound, with VADER's thresholds."""
    if value is None:
        return ""
    if value >= 0.05:
        return "bullish"
    if value <= -0.05:
        return "bearish"
    return "neutral"
