"""Render docs/benchmarks.md from a `cryptosent bench --json` file (and optionally a profile).

.venv/bin/python -m benchmarks.report bench.json [profile.txt] > docs/benchmarks.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cryptosent.bench.run import TARGETS, verdicts

ROWS = [
    ("sentiment", "vaderSentiment 3.3.2, texts/s", "sentiment_vadersentiment_per_s"),
    ("sentiment", "our `vader` (exact), texts/s", "sentiment_vader_per_s"),
    ("sentiment", "our `crypto`, texts/s", "sentiment_crypto_per_s"),
    ("sentiment", "`vader` identical to vaderSentiment on every text", "sentiment_vader_exact"),
    ("sentiment", "speed-up of `vader` over vaderSentiment", "sentiment_speedup_vs_vadersentiment"),
    ("sentiment", "student in the compiled core, texts/s", "sentiment_student_core_per_s"),
    ("sentiment", "`learned` end to end, texts/s", "sentiment_learned_per_s"),
    ("sentiment", "`teacher` (ONNX, static int8, one thread), texts/s", "sentiment_teacher_per_s"),
    ("voices", "coin linking, CPU ms per 1,000 tweets", "coins_ms_per_1000"),
    ("voices", "campaign detection, CPU ms per 1,000 tweets", "campaigns_ms_per_1000"),
    ("produce", "`generate --rate max` into Kafka, tweets/s", "produce_tweets_per_s"),
    ("process", "1 processor, all sinks, tweets/s (sustained; median of the runs)",
     "process_tweets_per_s"),
    ("process", "same, each run", "process_tweets_per_s_runs"),
    ("process", "1 processor, CPU s per 1,000 tweets (start-up off; median of the runs)",
     "process_cpu_s_per_1000_sustained"),
    ("process", "same, each run", "process_cpu_s_per_1000_sustained_runs"),
    ("process", "1 processor, CPU s per 1,000 tweets, start-up included", "process_cpu_s_per_1000"),
    ("process", "1 processor, start-up CPU s (empty topic)", "process_startup_cpu_s"),
    ("process", "1 processor, peak resident memory, MiB", "process_peak_rss_mib"),
    ("process", "2 processors in one group, tweets/s", "process_tweets_per_s_2_procs"),
    ("instructions", "1 processor, instructions per tweet (callgrind; marginal between two"
     " drains)", "process_instructions_per_tweet"),
    ("freshness", "created_at -> row in PostgreSQL at 2,000/min, p50 s", "freshness_p50_s"),
    ("freshness", "same, p95 s", "freshness_p95_s"),
    ("freshness", "same, p99 s", "freshness_p99_s"),
    ("freshness", "at 10,000 tweets/s, p50 s", "freshness_10k_p50_s"),
    ("freshness", "at 10,000 tweets/s, p95 s", "freshness_10k_p95_s"),
    ("freshness", "at 10,000 tweets/s, p99 s", "freshness_10k_p99_s"),
    ("dashboard", "slowest query at 10M tweets, max ms", "dashboard_query_ms_max"),
    ("dashboard", "queries at 10M tweets, p95 ms", "dashboard_query_ms_p95"),
    ("dashboard", "full refresh at 10M tweets, ms", "dashboard_refresh_ms"),
    ("peers", "cryptosent `process`, tweets/s (the peers' topic)", "peers_cryptosent_tweets_per_s"),
    ("peers", "seed-style script, tweets/s", "peers_seed_tweets_per_s"),
    ("peers", "Quix Streams 3.28.1, tweets/s", "peers_quix_tweets_per_s"),
    ("peers", "cryptosent / seed-style", "peers_ratio_vs_seed"),
    ("peers", "cryptosent / Quix Streams", "peers_ratio_vs_quix"),
    ("peers", "cryptosent CPU s per 1,000 (start-up off)", "peers_cryptosent_cpu_s_per_1000"),
    ("history", "replay to the lake, CPU s per million tweets", "history_load_cpu_s_per_million"),
    ("history", "90-day per-coin view from the lake, cold ms", "history_view_90d_cold_ms"),
    ("history", "same, warm ms", "history_view_90d_warm_ms"),
    ("history", "1-year view, cold ms", "history_view_1y_cold_ms"),
]  # fmt: skip


def fmt(value: Any) -> str:
    """A figure for the table."""
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        if 0 < value < 0.1:
            return f"{value:.3g}"
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list) and value:
        return " / ".join(fmt(v) for v in value)
    return "not measured"


def render(result: dict[str, Any], profile: str | None = None) -> str:
    """The markdown page."""
    met = verdicts(result)
    m = result["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Measured by `cryptosent bench --json bench.json` on the real local stack (Kafka, "
        "PostgreSQL, versitygw S3), each stage on its own topic, database and S3 prefix, through "
        "the real CLI. Page rendered by `python -m benchmarks.report bench.json profile.txt`.",
        "",
        f"- date: {result['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}",
        *(
            [
                f"- machine speed (`bench.run.python_speed`: a fixed pure-Python loop, million "
                f"steps per CPU second) at the start / end of the run: {m['python_speed']:.2f} / "
                f"{m.get('python_speed_end', float('nan')):.2f}; compare two runs' absolute "
                "figures only when these agree"
            ]
            if "python_speed" in m
            else []
        ),
        f"- sizes: {', '.join(f'{k}={fmt(v)}' for k, v in result['sizes'].items())}",
        "",
        *(
            ["**This is a `--quick` run: sizes are tiny and the figures mean nothing.**", ""]
            if result.get("quick")
            else []
        ),
        "| stage | figure | value | target |",
        "|---|---|---|---|",
    ]
    for stage, label, key in ROWS:
        target = TARGETS.get(key)
        target_text = ""
        if target:
            target_text = f"{target[0]} {target[1]:,.{0 if target[1] >= 1 else 3}f}" + (
                " ✓" if met.get(key) else (" ✗" if key in met else "")
            )
        lines.append(f"| {stage} | {label} | {fmt(result.get(key))} | {target_text} |")
    if result.get("errors"):
        lines += ["", "Stages that failed in this run:", ""]
        lines += [f"- {stage}: `{message}`" for stage, message in result["errors"].items()]
    if result.get("process_instructions_top"):
        small, large = result.get("process_instructions_drains", ["?", "?"])
        lines += [
            "",
            f"Where the processor's instructions go: the functions whose own instructions grew "
            f"most between draining {fmt(small)} and {fmt(large)} tweets under callgrind, per "
            "tweet (`cryptosent bench --only instructions`):",
            "",
            "| function (library) | instructions per tweet |",
            "|---|---|",
            *(f"| `{name}` | {fmt(cost)} |" for name, cost in result["process_instructions_top"]),
        ]
    if profile:
        lines += [
            "",
            "## Where the processor's time goes",
            "",
            "`python -m benchmarks.profile_process 100000` (pyinstrument, one processor draining "
            "100,000 tweets with every sink on):",
            "",
            "```",
            _without_banner(profile),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _without_banner(profile: str) -> str:
    """pyinstrument's report from its first timing line on (no logo, no temporary paths)."""
    lines = profile.strip().splitlines()
    first = next((i for i, line in enumerate(lines) if line[:1].isdigit()), 0)
    return "\n".join(lines[first:])


if __name__ == "__main__":
    data = json.loads(Path(sys.argv[1]).read_text())
    prof = Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else None
    sys.stdout.write(render(data, prof))
