"""Coin linking speed: CPU time of ``coin_mentions`` per 1,000 tweets (the processor calls it once
per tweet).

``measure(texts)`` has the shape of a ``cryptosent bench`` stage (a flat dict of numbers); the
quality on the labelled data sets, which needs the checkout, is ``benchmarks/coins.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

from cryptosent.analysis.coins import coin_mentions

Linker = Callable[[str], Sequence[str]]


def cost_per_1000(
    texts: Sequence[str], linkers: Mapping[str, Linker], rounds: int = 5
) -> dict[str, float]:
    """CPU milliseconds each linker takes per 1,000 texts, one call per text, best of ``rounds``.

    The linkers take turns, round after round, and the time is this process's CPU time, so
    neither a burst of load elsewhere on a shared machine nor the wait for a core counts.
    """
    best = dict.fromkeys(linkers, math.inf)
    for _ in range(rounds):
        for name, linker in linkers.items():
            start = time.process_time()
            for text in texts:
                linker(text)
            best[name] = min(best[name], time.process_time() - start)
    return {name: seconds * 1_000_000 / len(texts) for name, seconds in best.items()}


def measure(texts: Sequence[str], rounds: int = 5) -> dict[str, float]:
    """``coins_ms_per_1000`` (CPU ms per 1,000 texts) and ``coins_per_s`` of ``coin_mentions``."""
    ms = cost_per_1000(texts, {"coins": coin_mentions}, rounds)["coins"]
    return {"coins_ms_per_1000": ms, "coins_per_s": 1_000_000 / ms if ms else math.inf}
