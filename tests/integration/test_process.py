"""The processor against real Kafka, PostgreSQL and S3: exact counts, DLQ, crashes, groups."""

from __future__ import annotations

import gzip
import io
import json
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest
from conftest import Pipeline

from cryptosent.config import Settings


def lake_counts(p: Pipeline) -> tuple[int, int, set[str]]:
    """(parquet rows, raw lines, distinct ids in parquet) of the whole lake."""
    parquet_rows = 0
    ids: set[str] = set()
    for key in p.live_lake_tables("processed"):
        assert key.endswith(".parquet") and "/dt=" not in key.split("processed")[0]
        table = pq.read_table(io.BytesIO(p.read_object(key)))
        parquet_rows += table.num_rows
        ids.update(table.column("id").to_pylist())
    raw_lines = 0
    for key in p.live_lake_tables("raw"):
        raw_lines += gzip.decompress(p.read_object(key)).count(b"\n")
    return parquet_rows, raw_lines, ids


def assert_exact(p: Pipeline, n: int) -> None:
    assert p.scalar("select count(*) from tweets") == n
    assert p.scalar("select count(distinct id) from tweets") == n
    assert p.scalar("select sum(tweets) from coin_minute where coin = '*'") == n
    assert p.scalar("select count(*) from tweet_coins") == p.scalar(
        "select sum(cardinality(coins)) from tweets"
    )
    assert p.coin_minute_mismatches() == 0
    assert p.coin_hour_mismatches() == 0
    parquet_rows, raw_lines, ids = lake_counts(p)
    assert (parquet_rows, raw_lines, len(ids)) == (n, n, n)


@pytest.mark.timeout(600)
def test_50k_generated_tweets_are_stored_exactly_once_everywhere(pipeline: Pipeline) -> None:
    gen = pipeline.cli("generate", "--count", "50000", "--rate", "max", "--seed", "11")
    assert gen.returncode == 0, gen.stderr
    run = pipeline.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert "50,000 stored" in run.stdout
    assert_exact(pipeline, 50_000)
    # partitioned by the tweet's hour, named by topic/partition/offsets
    keys = pipeline.lake_tables("processed")
    assert all("/dt=" in f"/{k}" and "/hour=" in k and f"{pipeline.topic}-p00" in k for k in keys)
    # both analyzers' scores are stored; labels follow the +-0.05 thresholds
    assert (
        pipeline.scalar(
            "select count(*) from tweets where (compound >= 0.05) <> (label = 'positive')"
            " or (vader_compound <= -0.05) <> (vader_label = 'negative')"
        )
        == 0
    )
    # a second run finds nothing new: --until-idle exits at once, nothing doubles
    again = pipeline.cli("process", "--until-idle")
    assert again.returncode == 0, again.stderr
    assert_exact(pipeline, 50_000)


def test_raw_layer_holds_the_exact_bytes_received(file_pipeline: Pipeline) -> None:
    p = file_pipeline
    sent = [
        b'{"id":"a1","text":"BTC to the moon \xf0\x9f\x9a\x80",'
        b'"created_at":"2026-11-23T10:00:00Z","extra":{"k":[1,2]}}',
        b'{ "created_at" : "2026-11-23T10:00:01+00:00", "text": "ETH dip", "id": "a2" }',
    ]
    subprocess.run(
        ["kcat", "-b", p.settings.kafka_bootstrap, "-P", "-t", p.topic, "-p", "0"],
        input=b"\n".join(sent) + b"\n", timeout=30, check=True,
    )  # fmt: skip
    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    (raw_key,) = p.lake_tables("raw")
    assert raw_key == f"raw/dt=2026-11-23/hour=10/{p.topic}-p000-000000000000-000000000001.jsonl.gz"
    assert gzip.decompress(p.read_object(raw_key)) == b"\n".join(sent) + b"\n"
    (parquet_key,) = p.lake_tables("processed")
    table = pq.read_table(io.BytesIO(p.read_object(parquet_key)))
    assert table.column("id").to_pylist() == ["a1", "a2"]
    assert table.column("coins").to_pylist() == [["BTC"], ["ETH"]]
    assert (
        pq.ParquetFile(io.BytesIO(p.read_object(parquet_key)))
        .metadata.row_group(0)
        .column(0)
        .compression
        == "ZSTD"
    )


BAD_MESSAGES = {
    "not json": b"this is not json",
    "truncated": b'{"id":"x","text":"unterminated',
    "invalid utf-8": b'{"id":"u1","text":"\xff\xfe bad","created_at":"2026-11-23T10:00:00Z"}',
    "id is a number": b'{"id":42,"text":"t","created_at":"2026-11-23T10:00:00Z"}',
    "missing text": b'{"id":"m1","created_at":"2026-11-23T10:00:00Z"}',
    "empty id": b'{"id":"","text":"t","created_at":"2026-11-23T10:00:00Z"}',
    "bad timestamp": b'{"id":"b1","text":"t","created_at":"yesterday"}',
    "no utc offset": b'{"id":"b2","text":"t","created_at":"2026-11-23T10:00:00"}',
    "array": b"[1,2,3]",
    "nul in text": b'{"id":"n1","text":"a\\u0000b","created_at":"2026-11-23T10:00:00Z"}',
    "oversized": b'{"id":"big","text":"'
    + b"x" * 70_000
    + b'","created_at":"2026-11-23T10:00:00Z"}',
}


@pytest.mark.timeout(300)
def test_malformed_messages_from_kcat_go_to_the_dlq_with_reasons(pipeline: Pipeline) -> None:
    good = [
        json.dumps({"id": f"g{i}", "text": f"$BTC looking good {i}",
                    "created_at": "2026-11-23T10:00:00Z"}).encode()
        for i in range(20)
    ]  # fmt: skip
    # good and bad interleaved on one partition: nothing valid around a bad one may be lost
    lines = []
    for i, bad in enumerate(BAD_MESSAGES.values()):
        lines += [good[i], bad]
    lines += good[len(BAD_MESSAGES) :]
    subprocess.run(
        ["kcat", "-b", pipeline.settings.kafka_bootstrap, "-P", "-t", pipeline.topic, "-p", "2",
         "-D", "\x1e"],
        input=b"\x1e".join(lines) + b"\x1e", timeout=60, check=True,
    )  # fmt: skip
    run = pipeline.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert pipeline.scalar("select count(*) from tweets") == 20
    assert sorted(r[0] for r in pipeline.query("select id from tweets")) == sorted(
        f"g{i}" for i in range(20)
    )
    dlq = subprocess.run(
        ["kcat", "-b", pipeline.settings.kafka_bootstrap, "-C", "-t", f"{pipeline.topic}.dlq",
         "-o", "beginning", "-e", "-q", "-J"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    # kcat copies payloads as they are (one is not UTF-8): decode leniently, headers are ASCII
    records = [json.loads(line.decode(errors="replace")) for line in dlq.stdout.splitlines()]
    assert len(records) == len(BAD_MESSAGES)
    reasons = {}
    for record in records:
        headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
        assert headers["source.topic"] == pipeline.topic
        assert headers["source.partition"] == "2"
        reasons[int(headers["source.offset"])] = headers["error"]
    # offsets 1, 3, 5, ... hold the bad messages, in BAD_MESSAGES order
    expected = dict(zip(range(1, 2 * len(BAD_MESSAGES), 2), BAD_MESSAGES, strict=True))
    assert set(reasons) == set(expected)
    assert reasons[1].startswith("not JSON: ")
    assert reasons[3] == "not JSON: Input data was truncated"
    assert reasons[5].startswith("not UTF-8: ")
    assert reasons[7] == "schema: Expected `str`, got `int` - at `$.id`"
    assert reasons[9] == "schema: Object missing required field `text`"
    assert reasons[11] == "schema: `id` is empty"
    assert reasons[13].startswith("schema: ") and "$.created_at" in reasons[13]
    assert reasons[15] == "schema: `created_at` has no UTC offset (RFC 3339 requires one)"
    assert reasons[17] == "schema: Expected `object`, got `array`"
    assert reasons[19] == "schema: `text` or `id` contains a NUL character"
    assert reasons[21].endswith("bytes, over the 65536-byte limit")


def kill_after(proc: subprocess.Popen[str], p: Pipeline, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if int(str(p.scalar("select count(*) from tweets"))) >= at_least:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.timeout(600)
def test_sigkill_mid_run_then_restart_is_exact(pipeline: Pipeline) -> None:
    gen = pipeline.cli("generate", "--count", "50000", "--rate", "max", "--seed", "5")
    assert gen.returncode == 0, gen.stderr
    first = pipeline.start("process")
    kill_after(first, pipeline, 15_000)
    stored = int(str(pipeline.scalar("select count(*) from tweets")))
    assert 15_000 <= stored < 50_000, "the kill landed after the run finished"
    run = pipeline.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert_exact(pipeline, 50_000)
    assert pipeline.scalar("select count(*) from lake_intents") == 0


@pytest.mark.timeout(600)
def test_two_processors_share_partitions_and_store_each_tweet_once(pipeline: Pipeline) -> None:
    gen = pipeline.cli("generate", "--count", "80000", "--rate", "max", "--seed", "9")
    assert gen.returncode == 0, gen.stderr
    a = pipeline.start("process", "--until-idle", "-v")
    # the second member joins mid-run: the group rebalances while the first is busy, and
    # neither may take the moment between revocation and assignment for "caught up"
    deadline = time.monotonic() + 120
    while int(str(pipeline.scalar("select count(*) from tweets"))) < 10_000:
        assert time.monotonic() < deadline and a.poll() is None
        time.sleep(0.1)
    b = pipeline.start("process", "--until-idle", "-v")
    _, err_a = a.communicate(timeout=400)
    _, err_b = b.communicate(timeout=400)
    assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    assert_exact(pipeline, 80_000)
    # both members got partitions
    assert "assigned partitions" in err_a and "assigned partitions" in err_b


def test_config_points_the_test_at_its_own_servers(settings: Settings) -> None:
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
