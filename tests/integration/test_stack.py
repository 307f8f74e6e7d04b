"""The local stack, checked with real clients outside the project: kcat, psql, boto3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from confluent_kafka import Consumer, TopicPartition

from cryptosent.config import Settings
from cryptosent.stack.manager import Stack

CLI = [sys.executable, "-m", "cryptosent"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_status_reports_every_service_healthy(stack: Stack) -> None:
    result = run_cli("stack", "status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"kafka", "postgres", "s3"}
    assert all(row["up"] for row in rows.values())
    assert rows["kafka"]["address"] == "127.0.0.1:9092"
    assert rows["postgres"]["address"] == "127.0.0.1:55432"
    assert rows["s3"]["address"] == "http://127.0.0.1:7070"


def test_stack_up_is_idempotent(stack: Stack) -> None:
    result = run_cli("stack", "up")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already running") == 3


def test_tweets_topic_exists_with_six_partitions(settings: Settings) -> None:
    result = subprocess.run(
        ["kcat", "-b", settings.kafka_bootstrap, "-L", "-J", "-t", "tweets"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    (topic,) = json.loads(result.stdout)["topics"]
    assert topic["topic"] == "tweets"
    assert len(topic["partitions"]) >= 6


def test_kcat_produces_and_consumes_on_tweets(settings: Settings) -> None:
    # the end offset of partition 0 before our message tells kcat where to read it back
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "probe"})
    _, high = consumer.get_watermark_offsets(TopicPartition("tweets", 0), timeout=10)
    consumer.close()
    key = f"probe-{uuid.uuid4().hex}"
    value = json.dumps(
        {"id": key, "text": "kcat round trip ✓", "created_at": "2026-01-01T00:00:00Z"}
    )
    subprocess.run(
        ["kcat", "-b", settings.kafka_bootstrap, "-P", "-t", "tweets", "-p", "0", "-K", "\t"],
        input=f"{key}\t{value}\n", text=True, timeout=30, check=True,
    )  # fmt: skip
    result = subprocess.run(
        ["kcat", "-b", settings.kafka_bootstrap, "-C", "-t", "tweets", "-p", "0",
         "-o", str(high), "-c", "1", "-e", "-f", "%k\t%s\n"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert result.stdout == f"{key}\t{value}\n"


def test_psql_connects_to_the_database(settings: Settings) -> None:
    url = urlsplit(settings.database_dsn())
    env = dict(os.environ, PGPASSWORD=url.password or "")
    result = subprocess.run(
        ["psql", "-h", url.hostname or "", "-p", str(url.port), "-U", url.username or "",
         "-d", url.path.lstrip("/"), "-Atc",
         "select current_user, current_database(), (select max(version) from schema_migrations)"],
        capture_output=True, text=True, timeout=30, env=env, check=True,
    )  # fmt: skip
    from cryptosent.sinks.migrations import available

    assert result.stdout.strip() == f"cryptosent|cryptosent|{available()[-1].version}"


def test_psql_without_password_is_refused(settings: Settings) -> None:
    url = urlsplit(settings.database_dsn())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    result = subprocess.run(
        ["psql", "-w", "-h", "127.0.0.1", "-p", str(url.port), "-U", "cryptosent",
         "-d", "cryptosent", "-c", "select 1"],
        capture_output=True, text=True, timeout=30, env=env, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "password" in result.stderr


def test_boto3_puts_and_gets_an_object(settings: Settings) -> None:
    assert settings.aws_access_key_id and settings.aws_secret_access_key
    s3 = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id.get_secret_value(),
        aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
        region_name=settings.aws_region,
    )
    key = f"probe/{uuid.uuid4().hex}.bin"
    body = os.urandom(1024 * 1024) + "é🚀".encode()
    s3.put_object(Bucket=settings.stack_s3_bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=settings.stack_s3_bucket, Key=key)["Body"].read() == body
    listed = s3.list_objects_v2(Bucket=settings.stack_s3_bucket, Prefix="probe/")
    assert key in [obj["Key"] for obj in listed.get("Contents", [])]
    s3.delete_object(Bucket=settings.stack_s3_bucket, Key=key)


def test_up_and_down_of_a_second_stack_touch_only_its_own_process(
    stack: Stack, tmp_path: Path
) -> None:
    # a second stack folder with its own S3 port: up starts it, down stops it, and the
    # session's stack keeps running
    (tmp_path / "bin").mkdir()
    shutil.copy(Path(".stack/bin/versitygw"), tmp_path / "bin" / "versitygw")
    env = dict(os.environ, CRYPTOSENT_STACK_DIR=str(tmp_path), CRYPTOSENT_STACK_S3_PORT="17070")
    up = run_cli("stack", "up", "s3", env=env)
    assert up.returncode == 0, up.stderr
    pid = int((tmp_path / "run" / "s3.pid").read_text())
    assert Path(f"/proc/{pid}").exists()
    down = run_cli("stack", "down", "s3", env=env)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert all(row.up for row in stack.status())


@pytest.mark.parametrize("service", ["s3", "postgres"])
def test_a_taken_port_is_reported_not_reused(tmp_path: Path, service: str) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = dict(
            os.environ,
            CRYPTOSENT_STACK_DIR=str(tmp_path),
            **{f"CRYPTOSENT_STACK_{service.upper()}_PORT": str(port)},
        )
        result = run_cli("stack", "up", service, env=env)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr
    assert "Traceback" not in result.stderr
