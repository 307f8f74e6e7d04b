"""`cryptosent generate` into real Kafka, checked by consumers outside the producer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime

import pytest

from cryptosent.config import Settings
from cryptosent.model import decode_tweet


def cli_env(topic: str) -> dict[str, str]:
    return dict(os.environ, CRYPTOSENT_TOPIC=topic)


def generate(topic: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptosent", "generate", *args],
        capture_output=True, text=True, timeout=timeout, env=cli_env(topic), check=False,
    )  # fmt: skip


def consume_all(settings: Settings, topic: str) -> list[tuple[str, str, int]]:
    """Every message of topic as (key, value, timestamp ms), read by kcat."""
    result = subprocess.run(
        ["kcat", "-b", settings.kafka_bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
         "-q", "-u", "-f", "%k\\t%T\\t%s\\n"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    rows = []
    for line in result.stdout.splitlines():
        key, ts, value = line.split("\t", 2)
        rows.append((key, value, int(ts)))
    return rows


@pytest.mark.timeout(400)
def test_generate_100k_at_max_rate_lands_exactly_100k(settings: Settings, topic: str) -> None:
    result = generate(topic, "--count", "100000", "--rate", "max", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert "100,000 delivered" in result.stdout
    rows = consume_all(settings, topic)
    assert len(rows) == 100_000
    ids = [decode_tweet(value.encode()).id for _, value, _ in rows]
    assert len(set(ids)) == 100_000
    assert all(key == tweet_id for (key, _, _), tweet_id in zip(rows, ids, strict=True))


@pytest.mark.timeout(120)
def test_rate_2000_per_minute_is_held_within_2_percent(settings: Settings, topic: str) -> None:
    result = generate(topic, "--rate", "2000/min", "--duration", "30")
    assert result.returncode == 0, result.stderr
    rows = consume_all(settings, topic)
    # 30 s at 2000/min is 1000 tweets
    assert 980 <= len(rows) <= 1020, len(rows)
    created = sorted(datetime.fromisoformat(json.loads(v)["created_at"]) for _, v, _ in rows)
    span = (created[-1] - created[0]).total_seconds()
    assert 29.0 <= span <= 30.5
    # and evenly: each 10-second window holds a third of them (within 2 %)
    start = created[0]
    windows = Counter(int((c - start).total_seconds() // 10) for c in created if c - start)
    for window in (0, 1, 2):
        assert abs(windows[window] - 333.3) <= 333.3 * 0.02 + 1, windows


@pytest.mark.timeout(120)
def test_sigint_flushes_every_acknowledged_tweet(settings: Settings, topic: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryptosent", "generate", "--rate", "20000/s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(topic),
    )  # fmt: skip
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 0, stderr
    assert "(interrupted by SIGINT, flushed)" in stdout
    delivered = int(stdout.split(" delivered")[0].rsplit(" ", 1)[-1].replace(",", ""))
    assert delivered > 10_000
    assert len(consume_all(settings, topic)) == delivered


def test_unreachable_kafka_is_one_line() -> None:
    env = dict(os.environ, CRYPTOSENT_KAFKA_BOOTSTRAP="127.0.0.1:1")
    result = subprocess.run(
        [sys.executable, "-m", "cryptosent", "generate", "--count", "10"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Kafka unreachable at 127.0.0.1:1" in lines[0]
    assert "cryptosent stack up" in lines[0]


def test_missing_topic_is_one_line(settings: Settings) -> None:
    result = generate("no-such-topic-here", "--count", "10")
    assert result.returncode == 1
    assert "topic 'no-such-topic-here' does not exist" in result.stderr
    assert "Traceback" not in result.stderr
