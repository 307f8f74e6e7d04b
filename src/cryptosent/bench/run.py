"""`cryptosent bench`: every stage measured in one run, side by side, on the real local stack.

Stages: sentiment (vaderSentiment vs our analyzers), produce, process (1 member: the median of
five runs, each run's figures beside it; and 2 members), instructions (the processor's work per
tweet counted by callgrind: the figure the machine's state does not move), freshness (2,000/min
and 10,000/s), dashboard (queries at 10M tweets), peers (cryptosent beside a seed-style script
and Quix Streams on one topic), history (1M tweets of a year replayed to the lake, the 90-day and
1-year views from it). `--quick` shrinks every size so the harness itself can be smoke-tested in
`make test`; its numbers mean nothing. `--quick` leaves three stages out unless asked for: the
peers (`--only peers`: they build a venv and run three jobs; tests/integration/
test_bench_peers.py covers them), the history (`--only history`: it scores every tweet it loads;
tests/integration/test_dashboard_history.py covers its parts) and the instructions (`--only
instructions`: two drains under callgrind take minutes; tests/unit/test_bench_instructions.py
covers the counting).
Shipped with the package: an installed `cryptosent bench` needs no checkout.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptosent.config import Settings


@dataclass(frozen=True)
class Sizes:
    """How much work each stage does."""

    sentiment_texts: int
    produce: int
    process: int
    fresh_slow_s: float
    fresh_fast_s: float
    dashboard_rows: int
    peers: int
    history_tweets: int = 1_000_000
    process_runs: int = 3
    """One processor's runs, each on its own topic: its figures are their medians."""
    instructions: tuple[int, int] = (40_000, 80_000)
    """The two drains the processor's instructions per tweet are counted between (one and two
    batches of the default size; under callgrind a drain runs about 50 times slower)."""


# five one-processor runs: within one full run they moved by 17 % (0.0145 to 0.0170 CPU s per
# 1,000 at 19:25), so a median of three still moved with one slow minute
FULL = Sizes(50_000, 1_000_000, 200_000, 60.0, 20.0, 10_000_000, 300_000, process_runs=5)
QUICK = Sizes(2_000, 20_000, 10_000, 5.0, 3.0, 20_000, 3_000, history_tweets=5_000,
              process_runs=2, instructions=(1_000, 2_000))  # fmt: skip

TARGETS = {
    "sentiment_speedup_vs_vadersentiment": (">=", 5.0),
    "sentiment_student_core_per_s": (">=", 200_000.0),
    "sentiment_teacher_per_s": (">=", 300.0),
    "produce_tweets_per_s": (">=", 50_000.0),
    # issue 14 (was 20,000); both process figures are medians of `Sizes.process_runs` runs
    "process_tweets_per_s": (">=", 60_000.0),
    # issue 14's "sustained": start-up off (start-up is a fixed ~1 CPU s, whatever the run's
    # length: with it, 200,000 tweets would need under 0.010 of work per 1,000); the figure with
    # start-up stays in the table, beside it
    "process_cpu_s_per_1000_sustained": ("<=", 0.015),
    "freshness_p95_s": ("<=", 2.0),
    "freshness_10k_p95_s": ("<=", 0.5),
    "dashboard_query_ms_max": ("<=", 200.0),
    "dashboard_refresh_ms": ("<=", 1000.0),
    "peers_ratio_vs_seed": (">=", 12.0),
    "peers_ratio_vs_quix": (">=", 5.0),
    "peers_cryptosent_cpu_s_per_1000": ("<=", 0.015),
    "history_view_90d_cold_ms": ("<=", 1000.0),
    "history_view_90d_warm_ms": ("<=", 1000.0),
}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def python_speed(rounds: int = 5, steps: int = 200_000) -> float:
    """How fast this machine runs one fixed piece of pure Python (arithmetic, a dict, strings),
    best of `rounds`, in million steps per CPU second. The same code gives about the same figure
    whenever the machine is in the same state; on a shared machine that state changes (a third
    slower within one afternoon here), so two runs' absolute figures compare only when their
    speeds do. Measured at a run's start and end."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        table: dict[int, str] = {}
        total = 0
        for step in range(steps):
            total += step * step % 7
            table[step & 1023] = str(step)
        "".join(table.values())
        best = min(best, time.process_time() - started)
    return steps / max(best, 1e-9) / 1e6


def stages(settings: Settings, sizes: Sizes) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """The stages in order, each a name and a function returning its figures."""
    from cryptosent.bench import history, instructions, pipeline, voices

    def sentiment() -> dict[str, Any]:
        from cryptosent.bench.sentiment import generated_tweets, measure

        return dict(measure(generated_tweets(sizes.sentiment_texts, seed=42)))

    def dashboard() -> dict[str, Any]:
        from cryptosent.bench.dashboard import measure

        return dict(measure(settings, rows=sizes.dashboard_rows))

    def freshness() -> dict[str, Any]:
        slow = pipeline.measure_freshness(settings, "2000/min", sizes.fresh_slow_s, "")
        fast = pipeline.measure_freshness(settings, "10000/s", sizes.fresh_fast_s, "_10k")
        return {**slow, **fast}

    def peers() -> dict[str, Any]:
        from cryptosent.bench.peers.stage import measure_peers

        return measure_peers(settings, sizes.peers)

    return [
        ("sentiment", sentiment),
        ("voices", lambda: voices.measure(sizes.sentiment_texts)),
        ("produce", lambda: pipeline.measure_produce(settings, sizes.produce)),
        (
            "process",
            lambda: pipeline.measure_process_runs(settings, sizes.process, sizes.process_runs),
        ),
        ("process ×2", lambda: pipeline.measure_process(settings, sizes.process, 2)),
        ("instructions", lambda: instructions.measure(settings, *sizes.instructions)),
        ("freshness", freshness),
        ("dashboard", dashboard),
        ("peers", peers),
        ("history", lambda: history.measure(settings, sizes.history_tweets)),
    ]


def run(
    settings: Settings,
    *,
    quick: bool,
    only: set[str] | None = None,
    on_stage: Callable[[str, int, int], None] | None = None,
    peers_count: int | None = None,
) -> dict[str, Any]:
    """Run the stages (all, or `only`); failures are recorded, not raised. `peers_count`
    overrides the size of the peers stage."""
    sizes = QUICK if quick else FULL
    if peers_count is not None:
        sizes = replace(sizes, peers=peers_count)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {**machine(), "python_speed": python_speed()},
        "sizes": sizes.__dict__,
        "command": " ".join(["cryptosent", "bench", *sys.argv[2:]]),
        "errors": {},
    }
    wanted = only if only is not None else {n.split()[0] for n, _ in stages(settings, sizes)}
    if quick and only is None:
        wanted = wanted - {"peers", "history", "instructions"}
    todo = [(n, f) for n, f in stages(settings, sizes) if n.split()[0] in wanted]
    for index, (name, measure) in enumerate(todo):
        if on_stage is not None:
            on_stage(name, index, len(todo))
        try:
            result.update(measure())
        except Exception as err:  # one broken stage must not hide the others
            result["errors"][name] = f"{type(err).__name__}: {err}"
    result["machine"]["python_speed_end"] = python_speed()
    return result


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    """Which targets the figures meet."""
    met = {}
    for key, (op, target) in TARGETS.items():
        value = result.get(key)
        if isinstance(value, int | float):
            met[key] = value >= target if op == ">=" else value <= target
    return met


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write the figures as JSON."""
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
