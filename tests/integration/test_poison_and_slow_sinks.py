"""Poison pills and slow sinks, on the shared stack (nothing here stops a server).

- A message that makes an analyzer raise (a test hook: `faults_support.POISON_HOOK` runs the
  processor with a VADER that raises on marked texts) goes to the dead-letter topic with the
  reason, and its partition moves on.
- A PostgreSQL that answers slowly (`faults_support.LatencyProxy` holds every answer) slows the
  processor, loses nothing, and the consumer group never evicts it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from conftest import Pipeline
from faults_support import (
    POISON_HOOK,
    Background,
    LatencyProxy,
    assert_exact,
    stored,
    wait_for,
)

from cryptosent.kafka import connection_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MARK = "\u2620poison"


def tweet(id_: str, text: str) -> bytes:
    return json.dumps({"id": id_, "text": text, "created_at": "2026-11-23T10:00:00Z"}).encode()


def dead_letters(p: Pipeline) -> dict[int, dict[str, str]]:
    """source offset -> headers of every dead letter (read by kcat)."""
    out = subprocess.run(
        ["kcat", "-b", p.settings.kafka_bootstrap, "-C", "-t", f"{p.topic}.dlq",
         "-o", "beginning", "-e", "-q", "-J"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    found = {}
    for line in out.stdout.splitlines():
        headers = json.loads(line)["headers"]
        named = dict(zip(headers[::2], headers[1::2], strict=True))
        found[int(named["source.offset"])] = named
    return found


def test_a_message_an_analyzer_raises_on_is_dead_lettered_and_its_partition_moves_on(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    total, poison_at = 600, {0, 250, 599}  # the first, one in the middle, the last
    producer = Producer(connection_config(p.settings))
    for offset in range(total):  # one partition: offset n is message n
        text = f"{MARK} $BTC" if offset in poison_at else f"tweet {offset} about $BTC and $ETH"
        producer.produce(p.topic, tweet(f"t{offset}", text), f"t{offset}".encode(), partition=0)
    assert producer.flush(30) == 0
    proc = Background(p, "process", "--until-idle", log_dir=tmp_path,
                      python_args=("-c", POISON_HOOK, MARK))  # fmt: skip
    assert proc.wait(180) == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "made an analyzer raise: dead-lettered" in proc.stderr
    dead = dead_letters(p)
    assert sorted(dead) == sorted(poison_at)
    for headers in dead.values():
        assert headers["error"] == "analyzer failed: ValueError: test hook: poisoned text"
        assert (headers["source.topic"], headers["source.partition"]) == (p.topic, "0")
    # every other message is stored, up to the partition's last offset
    valid = total - len(poison_at)
    assert p.scalar("select count(*) from tweets where text like '%poison%'") == 0
    assert p.scalar("select max(kafka_offset) from tweets") == total - 2
    assert p.query(
        "select sink, next_offset from kafka_offsets where partition = 0 and topic = "
        f"'{p.topic}' order by sink"
    ) == [("lake", total), ("postgres", total)]
    assert_exact(p, valid)


@pytest.mark.slow
def test_a_slow_postgres_slows_the_processor_without_loss_or_eviction(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    port = p.settings.stack_postgres_port
    proxy = LatencyProxy(port, delay_s=0.0)
    try:
        p.env["CRYPTOSENT_DATABASE_URL"] = p.database_url.replace(f":{port}/", f":{proxy.port}/")
        # the broker's smallest session timeout: a write takes longer than it (below)
        p.env["CRYPTOSENT_KAFKA_SESSION_TIMEOUT_MS"] = "6000"
        p.env["CRYPTOSENT_BATCH_SIZE"] = "1000"
        p.env["CRYPTOSENT_LAKE_FLUSH_SECONDS"] = "30"
        proc = Background(p, "process", "-v", log_dir=tmp_path)
        wait_for(lambda: "assigned partitions" in proc.stderr, timeout=60, what="an assignment")
        time.sleep(2)  # the prices' consumer joins its own group beside the tweets' one
        joined = proc.stderr.count("assigned partitions")
        # from now on every answer of PostgreSQL comes 1 s late: a write (offsets, COPY,
        # insert, commit) takes several seconds, a new connection (3 round trips) about 3 s
        proxy.delay_s = 1.0
        slow_from = time.monotonic()
        gen = p.cli("generate", "--count", "1000", "--rate", "max", "--seed", "61")
        assert gen.returncode == 0, gen.stderr
        wait_for(lambda: stored(p) == 1000, timeout=180, what="1,000 stored")
        slow_for = time.monotonic() - slow_from
        # a stop gives work in hand 1 s: answers the proxy already holds keep their 1 s delay
        # (a commit sent just before the change), so let them through before stopping
        proxy.delay_s = 0.0
        time.sleep(1.5)
        assert proc.stop() == 0, proc.stderr
    finally:
        proxy.close()
    # slower than the session timeout, yet no assignment after the first: never evicted
    assert slow_for > 6.0
    assert proc.stderr.count("assigned partitions") == joined, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_exact(p, 1000)
    print(f"SLOW postgres: 1,000 tweets in {slow_for:.1f} s with answers 1 s late")
