"""`cryptosent prices ...` into real Kafka, checked by kcat (a client outside the producer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cryptosent.analysis.coins import COINS
from cryptosent.config import Settings
from cryptosent.model import decode_price


def prices(topic: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptosent", "prices", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
        env=dict(os.environ, CRYPTOSENT_PRICES_TOPIC=topic),
    )  # fmt: skip


def consume_all(settings: Settings, topic: str) -> list[tuple[str, int, bytes]]:
    """Every message of topic as (key, partition, value), read by kcat."""
    result = subprocess.run(
        ["kcat", "-b", settings.kafka_bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
         "-q", "-u", "-f", "%k\\t%p\\t%s\\n"],
        capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    rows = []
    for line in result.stdout.splitlines():
        key, partition, value = line.split(b"\t", 2)
        rows.append((key.decode(), int(partition), value))
    return rows


@pytest.mark.timeout(300)
def test_replay_of_a_price_file_lands_every_valid_message(
    settings: Settings, topic: str, tmp_path: Path
) -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    coins = ["BTC", "ETH", "SOL", "DOGE", "XRP", "ADA", "LINK"]
    expected = []
    lines = []
    for i in range(5_000):
        record = {
            "coin": coins[i % len(coins)],
            "ts": (start + timedelta(milliseconds=250 * i)).isoformat().replace("+00:00", "Z"),
            "price": round(100 + (i % 97) * 1.25, 2),
            "size": round(0.001 * (i % 13), 3),
            "source": "coinbase",
        }
        expected.append(record)
        lines.append(json.dumps(record))
        if i % 1_000 == 0:
            lines.append('{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":-1}')  # bad line
    path = tmp_path / "prices.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = prices(topic, "replay", str(path))
    assert result.returncode == 0, result.stderr
    assert "5,000 delivered" in result.stdout and "0 failed" in result.stdout
    stderr = " ".join(result.stderr.split())  # the console wraps long lines
    assert "5 bad line(s) skipped" in stderr
    assert "prices.jsonl:2: skipped: schema: `price` is -1.0" in stderr  # with its line number
    assert "prices.jsonl:1003: skipped" in stderr

    rows = consume_all(settings, topic)
    assert len(rows) == 5_000
    decoded = [decode_price(value, COINS) for _, _, value in rows]
    assert all(key == tick.coin for (key, _, _), tick in zip(rows, decoded, strict=True))
    # every message exactly once, as in the file
    got = Counter(
        (t.coin, t.ts.isoformat().replace("+00:00", "Z"), t.price, t.size) for t in decoded
    )
    want = Counter((r["coin"], r["ts"], r["price"], r["size"]) for r in expected)
    assert got == want
    # keyed by coin: one coin's prices on one partition, in the file's order
    for coin in coins:
        partitions = {p for key, p, _ in rows if key == coin}
        assert len(partitions) == 1, coin
        stamps = [t.ts for t in decoded if t.coin == coin]
        assert stamps == sorted(stamps)


@pytest.mark.timeout(120)
def test_mock_prices_land_their_count_and_a_missing_topic_is_one_line(
    settings: Settings, topic: str
) -> None:
    result = prices(topic, "mock", "--count", "3000", "--rate", "max", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "3,000 delivered" in result.stdout
    rows = consume_all(settings, topic)
    assert len(rows) == 3_000
    assert all(decode_price(value, COINS).coin == key for key, _, value in rows)

    missing = prices("no-such-prices-topic", "mock", "--count", "10")
    assert missing.returncode == 1
    assert "Kafka topic 'no-such-prices-topic' does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_stack_creates_the_prices_topics(settings: Settings) -> None:
    from confluent_kafka.admin import AdminClient

    from cryptosent.kafka import admin_config

    topics = AdminClient(admin_config(settings)).list_topics(timeout=10).topics
    assert len(topics[settings.prices_topic].partitions) == 6
    assert len(topics[settings.prices_dlq_topic].partitions) == 1
