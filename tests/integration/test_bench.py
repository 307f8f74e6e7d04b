"""`cryptosent bench --quick`: the harness runs every stage and writes the JSON contract."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from cryptosent.bench.peers.jobs import s3_client
from cryptosent.config import Settings
from cryptosent.stack.manager import Stack

REQUIRED = [
    "sentiment_vadersentiment_per_s", "sentiment_vader_per_s", "sentiment_vader_exact",
    "sentiment_speedup_vs_vadersentiment", "produce_tweets_per_s", "process_tweets_per_s",
    "process_tweets_per_s_2_procs", "process_cpu_s_per_1000_sustained", "process_startup_cpu_s",
    "freshness_p95_s", "dashboard_query_ms_max",
]  # fmt: skip


def _bench_objects(settings: Settings) -> int:
    client = s3_client(settings)
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=settings.stack_s3_bucket, Prefix="bench/"
    )
    return sum(len(page.get("Contents", [])) for page in pages)


@pytest.mark.timeout(900)
def test_quick_bench_writes_every_figure(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    objects_before = _bench_objects(stack.settings)
    result = subprocess.run(
        [sys.executable, "-m", "cryptosent", "bench", "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=850, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    missing = [key for key in REQUIRED if key not in figures]
    assert not missing, missing
    assert figures["errors"] == {}
    assert figures["sentiment_vader_exact"] is True
    assert figures["machine"]["cores"] >= 1 and figures["date"]
    # the machine's speed at the start and the end, to compare runs by
    assert figures["machine"]["python_speed"] > 0 and figures["machine"]["python_speed_end"] > 0
    assert figures["process_count"] == 10_000
    # the start-up, measured on the empty topic, is a real run of the processor (imports alone
    # take a CPU second)
    assert 0.2 < figures["process_startup_cpu_s"] < 30
    # a quick run fits one batch: its rate is the whole run's, never "nan"
    for key in ("process_tweets_per_s", "process_tweets_per_s_2_procs"):
        assert math.isfinite(figures[key]) and figures[key] > 0, (key, figures[key])
    assert "produce_tweets_per_s" in result.stdout
    # every stage's sandbox removes its lake objects with its topic and database
    assert _bench_objects(stack.settings) == objects_before
