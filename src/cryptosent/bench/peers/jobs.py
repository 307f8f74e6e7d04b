"""Running a peer job on a topic, and reading back what any of the three jobs stored.

A peer job is a child process given one JSON job file (mode 600: it holds credentials): the
seed-style script in cryptosent's own Python, the Quix Streams job in its own venv.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pyarrow.parquet as pq
from psycopg import sql

from cryptosent import kafka
from cryptosent.config import Settings

SEED = "seed"
QUIX = "quix"


@dataclass(frozen=True)
class PeerJob:
    """What one peer run reads and where it stores (its own group, table and S3 prefix)."""

    name: str
    topic: str
    group: str
    database_url: str
    table: str
    bucket: str
    prefix: str
    count: int

    def write(self, settings: Settings, folder: Path) -> Path:
        """The job file the child reads; mode 600."""
        key, secret = settings.s3_credentials()
        config: dict[str, Any] = {
            **asdict(self),
            "kafka": kafka.connection_config(settings),
            "s3": {
                "endpoint_url": settings.s3_endpoint_url,
                "bucket": self.bucket,
                "prefix": self.prefix,
                "access_key": key,
                "secret_key": secret,
                "region": settings.aws_region,
            },
        }
        path = folder / f"{self.name}-job.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(config))
        return path


@dataclass(frozen=True)
class ChildRun:
    """Wall and CPU seconds (user + system) of one child process."""

    wall_s: float
    cpu_s: float


def run_child(
    name: str, command: list[str], cwd: Path | None = None, timeout: float = 3600
) -> ChildRun:
    """Run a child to completion; its wall and CPU time; raise with its stderr on failure.
    Children must run one at a time (CPU is read from RUSAGE_CHILDREN)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr.strip()[-600:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return ChildRun(wall, cpu)


def seed_command(job_file: Path) -> list[str]:
    """The seed-style script, in cryptosent's Python."""
    return [sys.executable, "-m", "cryptosent.bench.peers.seed_style", str(job_file)]


def quix_command(python: Path, job_file: Path) -> list[str]:
    """The Quix Streams job, in its own venv's Python."""
    from cryptosent.bench.peers.quix_venv import JOB

    return [str(python), str(JOB), str(job_file)]


def create_quix_table(database_url: str, table: str) -> None:
    """The table as Quix's PostgreSQLSink creates it (`timestamp`, `__key`; the sink adds the
    value's columns), plus `stored_at`, the commit time the bench reads."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            sql.SQL(
                "create table {} (timestamp timestamp not null, __key text,"
                " stored_at timestamptz not null default now())"
            ).format(sql.Identifier(table))
        )


def table_rows(database_url: str, table: str) -> tuple[int, int]:
    """(rows, distinct ids) in a table."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            sql.SQL("select count(*), count(distinct id) from {}").format(sql.Identifier(table))
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def sustained_rate(database_url: str, table: str) -> float:
    """Rows/s from the first commit to the last: the rows committed after the first commit over
    the time between them, so start-up (imports, connections, group join) is left out."""
    query = sql.SQL(
        "with t as (select stored_at from {}), first as (select min(stored_at) as at from t)"
        " select count(*) filter (where t.stored_at > first.at),"
        " extract(epoch from max(t.stored_at) - first.at) from t, first group by first.at"
    ).format(sql.Identifier(table))
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query).fetchone()
    if row is None or not row[1]:
        return float("nan")
    return int(row[0]) / float(row[1])


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client on the configured endpoint."""
    key, secret = settings.s3_credentials()
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=settings.aws_region,
    )


def parquet_rows(settings: Settings, bucket: str, prefix: str) -> tuple[int, int]:
    """(Parquet objects, rows in them) under s3://bucket/prefix/, read back with pyarrow."""
    client = s3_client(settings)
    objects = rows = 0
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
    ):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".parquet"):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                rows += pq.ParquetFile(io.BytesIO(body)).metadata.num_rows
                objects += 1
    return objects, rows


def delete_prefix(settings: Settings, bucket: str, prefix: str) -> None:
    """Remove every object under s3://bucket/prefix/."""
    client = s3_client(settings)
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
    ):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def load_average() -> float:
    """The machine's 1-minute load average."""
    return os.getloadavg()[0]
