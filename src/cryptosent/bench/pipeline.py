"""Pipeline benchmarks against the real local stack: produce, process, freshness.

Every measurement runs the real CLI (`cryptosent generate`, `cryptosent process`) as a user
would, each on its own fresh topic, database and lake prefix, which are removed afterwards. The
children get the sandbox through a settings file (`cryptosent --settings FILE ...`), which wins
over the environment and `.env`.
"""

from __future__ import annotations

import math
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from psycopg import sql

from cryptosent import kafka
from cryptosent.bench.peers.jobs import delete_prefix, run_child, sustained_rate
from cryptosent.config import Settings, write_settings_file
from cryptosent.sinks.migrations import migrate
from cryptosent.stack.postgres import PostgresServer

CLI = [sys.executable, "-m", "cryptosent"]


@dataclass
class Sandbox:
    """A topic, a migrated database and a lake prefix of one benchmark run."""

    settings: Settings
    topic: str
    database_url: str
    lake_url: str
    folder: Path

    def settings_file(self, **extra: object) -> Path:
        """A settings file pointing the CLI at this sandbox (extra: more settings by name)."""
        values: dict[str, object] = {
            "topic": self.topic,
            "dlq_topic": f"{self.topic}.dlq",
            "database_url": self.database_url,
            "lake_url": self.lake_url,
            "consumer_group": f"bench-{self.topic}",
            "metrics_port": 0,
            **extra,
        }
        name = "-".join(f"{k}-{v}" for k, v in sorted(extra.items())) or "sandbox"
        return write_settings_file(self.folder / f"{name}.env", values)

    def cli(self, *args: str, **extra: object) -> list[str]:
        """The command line of `cryptosent ARGS` in this sandbox."""
        return [*CLI, "--settings", str(self.settings_file(**extra)), *args]

    def scalar(self, query: str) -> Any:
        """The single value of a query on the sandbox database."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(query.encode()).fetchone()
        return None if row is None else row[0]


@contextmanager
def sandbox(settings: Settings, name: str) -> Iterator[Sandbox]:
    """A fresh topic (6 partitions), database and S3 prefix; all removed on exit."""
    suffix = f"{name}-{uuid.uuid4().hex[:8]}"
    topic = f"bench-{suffix}"
    admin = AdminClient(kafka.admin_config(settings))
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=settings.topic_partitions), NewTopic(f"{topic}.dlq", 1)]
    )
    for future in futures.values():
        future.result(timeout=30)
    database = f"bench_{suffix.replace('-', '_')}"
    admin_dsn = PostgresServer(settings).admin_conninfo()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} owner cryptosent").format(sql.Identifier(database))
        )
    url = settings.database_dsn().rsplit("/", 1)[0] + "/" + database
    migrate(url)
    folder = Path(tempfile.mkdtemp(prefix="cryptosent-bench-"))
    lake = f"s3://{settings.stack_s3_bucket}/bench/{suffix}"
    box = Sandbox(settings, topic, url, lake, folder)
    try:
        yield box
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        # the lake's objects too: a full run left about 1 GB behind before, 12 GB over a day
        delete_prefix(settings, settings.stack_s3_bucket, f"bench/{suffix}")
        for future in admin.delete_topics([topic, f"{topic}.dlq"]).values():
            future.result(timeout=30)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
            )


def run_cli(box: Sandbox, *args: str, timeout: float = 1800) -> str:
    """Run the CLI in the sandbox; return stdout; raise with stderr on failure."""
    result = subprocess.run(
        box.cli(*args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"`cryptosent {' '.join(args)}` failed: {result.stderr.strip()[-500:]}")
    return result.stdout


def fill(box: Sandbox, count: int) -> float:
    """Produce count mock tweets at max rate; return the generator's tweets/s."""
    stdout = run_cli(box, "generate", "--count", str(count), "--rate", "max", "--seed", "42")
    match = re.search(r"([\d,]+) tweets/s", stdout)
    if not match or f"{count:,} delivered" not in stdout:
        raise RuntimeError(f"unexpected generate output: {stdout.strip()}")
    return float(match[1].replace(",", ""))


def measure_produce(settings: Settings, count: int) -> dict[str, float]:
    """`cryptosent generate --rate max`: tweets/s acknowledged by Kafka."""
    with sandbox(settings, "produce") as box:
        rate = fill(box, count)
    return {"produce_tweets_per_s": rate, "produce_count": count}


def measure_process(settings: Settings, count: int, processes: int = 1) -> dict[str, float]:
    """Pre-filled topic -> `cryptosent process --until-idle` (N members), all sinks on. With one
    member, also its CPU per 1,000 tweets with start-up off: less the CPU of the same command
    on the empty topic first (imports, connections, the model, the wait to be sure it is idle),
    the sustained cost the issue's target is about, which the run's length does not change."""
    with sandbox(settings, f"process{processes}") as box:
        startup = float("nan")
        if processes == 1:
            empty = box.cli("process", "--until-idle", consumer_group=f"{box.topic}-empty")
            startup = run_child("cryptosent process (empty topic)", empty).cpu_s
        fill(box, count)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                box.cli("process", "--until-idle"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]
        outputs = [p.communicate(timeout=3600) for p in procs]
        errors = [stderr for _, stderr in outputs]
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if any(p.returncode for p in procs):
            raise RuntimeError(f"processor failed: {' | '.join(e[-300:] for e in errors)}")
        stored = int(box.scalar("select count(*) from tweets"))
        if stored != count:
            raise RuntimeError(f"processor stored {stored} of {count} tweets")
        # sustained: the rows committed after the first commit over the time to the last one
        # (counting the first batch too would flatter large batches: 10 of 20,000 by 11 %)
        rate = sustained_rate(box.database_url, "tweets")
        if math.isnan(rate):
            # everything landed in one commit (`--quick`: fewer tweets than a batch holds), so
            # there is no "after the first commit": the whole run, start-up included, instead
            rate = count / wall
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        peaks = [re.search(r"peak memory ([\d,]+) MiB", stdout) for stdout, _ in outputs]
    suffix = "" if processes == 1 else f"_{processes}_procs"
    sustained = {}
    if processes == 1:
        # on a few thousand tweets (`--quick`) start-up noise can exceed the work: no figure
        net = (cpu - startup) / count * 1000 if cpu > startup else float("nan")
        sustained = {"process_cpu_s_per_1000_sustained": net, "process_startup_cpu_s": startup}
    return sustained | {
        f"process_tweets_per_s{suffix}": rate,
        f"process_wall_s{suffix}": wall,
        f"process_cpu_s_per_1000{suffix}": cpu / count * 1000,
        f"process_count{suffix}": count,
        f"process_peak_rss_mib{suffix}": max(
            float(peak[1].replace(",", "")) if peak else float("nan") for peak in peaks
        ),
    }


# the figures of one processor's run whose spread a median of several runs shows, by name
_SPREAD = ("process_tweets_per_s", "process_cpu_s_per_1000_sustained", "process_cpu_s_per_1000")


def measure_process_runs(settings: Settings, count: int, runs: int) -> dict[str, Any]:
    """`measure_process` of one processor `runs` times, each on its own topic and database;
    `median_of_runs` of their figures."""
    return median_of_runs([measure_process(settings, count) for _ in range(runs)])


def median_of_runs(results: list[dict[str, float]]) -> dict[str, Any]:
    """Several runs' figures as one: each figure the median of the runs' (the figures of one run
    move by 8 % and more from run to run on this shared machine, as much as issue 14's margins),
    peak memory the largest (a bound, not a typical run), and each run's own rate and CPU figures
    beside them in order (``<figure>_runs``). A run with no figure (nan) is left out of its
    median; nan when no run has one."""
    out: dict[str, Any] = {"process_runs": len(results)}
    for key in results[0]:
        values = [r[key] for r in results if not math.isnan(r[key])]
        if not values:
            out[key] = float("nan")
        elif key.startswith("process_peak_rss_mib"):
            out[key] = max(values)
        else:
            out[key] = statistics.median(values)
    if len(results) > 1:
        for key in _SPREAD:
            out[f"{key}_runs"] = [r[key] for r in results]
    return out


def measure_freshness(
    settings: Settings, rate: str, seconds: float, label: str
) -> dict[str, float]:
    """created_at -> row committed in PostgreSQL, p50/p95/p99, at a steady generator rate."""
    with sandbox(settings, f"fresh-{label}") as box, tempfile.TemporaryFile("w+") as log:
        processor = subprocess.Popen(
            box.cli("process", "--verbose"),
            stdout=subprocess.DEVNULL, stderr=log, text=True,
        )  # fmt: skip
        try:
            _wait_for_assignment(processor, log)
            out = run_cli(box, "generate", "--rate", rate, "--duration", str(seconds))
            delivered = int(re.search(r"([\d,]+) delivered", out)[1].replace(",", ""))  # type: ignore[index]
            deadline = time.monotonic() + 600
            while int(box.scalar("select count(*) from tweets")) < delivered:
                if time.monotonic() > deadline or processor.poll() is not None:
                    raise RuntimeError("processor did not catch up with the generator")
                time.sleep(0.5)
        finally:
            processor.send_signal(signal.SIGINT)
            processor.wait(timeout=120)
        with psycopg.connect(box.database_url) as conn:
            row = conn.execute(
                "select percentile_cont(array[0.5, 0.95, 0.99]) within group"
                " (order by extract(epoch from stored_at - created_at)) from tweets"
            ).fetchone()
    assert row is not None
    p50, p95, p99 = (float(v) for v in row[0])
    return {
        f"freshness{label}_p50_s": p50,
        f"freshness{label}_p95_s": p95,
        f"freshness{label}_p99_s": p99,
        f"freshness{label}_tweets": float(delivered),
    }


def _wait_for_assignment(proc: subprocess.Popen[str], log: IO[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        log.seek(0)
        seen = log.read()
        if "assigned partitions" in seen:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"processor exited: {seen[-300:]}")
        time.sleep(0.2)
    raise RuntimeError("processor got no partitions within a minute")
