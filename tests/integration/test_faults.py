"""Fault injection against real servers: crashes, outages, a lost group member, a failing disk.

Every test ends with exact counts after recovery: each tweet once in `tweets`, `coin_minute`
equal to a recomputation, as many Parquet rows and raw lines as stored tweets, no lake intent
left. Tests that stop servers use a private stack (`faults_support.PrivateStack`), never the
shared one.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import Pipeline
from faults_support import (
    Background,
    PrivateStack,
    assert_exact,
    private_stack_root,
    stored,
    topic_end,
    topic_messages,
    wait_for,
)


@pytest.fixture(scope="module")
def private(stack: object) -> Iterator[PrivateStack]:
    """A second Kafka + PostgreSQL + S3 that these tests may stop, restart and kill."""
    root = private_stack_root()
    private = PrivateStack(root)
    try:
        private.up()
        yield private
    finally:
        private.down()
        shutil.rmtree(root, ignore_errors=True)


def generate(p: Pipeline, count: int, seed: int) -> None:
    gen = p.cli("generate", "--count", str(count), "--rate", "max", "--seed", str(seed))
    assert gen.returncode == 0, gen.stderr
    assert f"{count:,} delivered" in gen.stdout


# ---- 1. processor SIGKILLed three times ----------------------------------------------------------
@pytest.mark.timeout(900)
def test_three_sigkills_during_a_100k_run_lose_and_double_count_nothing(
    private: PrivateStack, tmp_path: Path
) -> None:
    p = private.pipeline("s3")
    generate(p, 100_000, seed=71)
    for threshold in (15_000, 40_000, 65_000):
        proc = Background(p, "process", log_dir=tmp_path)
        wait_for(lambda t=threshold: stored(p) >= t, timeout=300, what=f"{threshold:,} stored")
        proc.kill()
        assert stored(p) < 100_000, "a kill landed after the run had finished"
    run = p.cli("process", "--until-idle", timeout=400)
    assert run.returncode == 0, run.stderr
    assert_exact(p, 100_000)


# ---- 2. broker stopped and restarted under the generator ----------------------------------------
def summary(text: str) -> tuple[int, int]:
    match = re.search(r"generate: ([\d,]+) delivered to '[^']+', ([\d,]+) failed", text)
    assert match, text
    return int(match[1].replace(",", "")), int(match[2].replace(",", ""))


@pytest.mark.timeout(600)
def test_broker_restart_while_generating_stores_every_delivered_tweet(
    private: PrivateStack, tmp_path: Path
) -> None:
    p = private.pipeline("s3")
    kafka = private.stack.kafka
    # a short outage: the idempotent producer retries through it, nothing fails or doubles
    gen = Background(p, "generate", "--count", "30000", "--rate", "3000/s", "--seed", "3",
                     log_dir=tmp_path)  # fmt: skip
    wait_for(lambda: topic_end(p) >= 5_000, timeout=60, what="the generator to produce")
    assert kafka.stop() == "stopped"
    time.sleep(5)
    kafka.start()
    assert gen.wait(300) == 0, gen.stderr
    delivered, failed = summary(gen.stdout)
    assert (delivered, failed) == (30_000, 0)
    assert topic_messages(p) == 30_000
    # an outage longer than the run: the generator is stopped while the broker is down; what
    # it could not deliver is counted as failed and reported in one line, exit 1
    gen = Background(p, "generate", "--count", "1000000", "--rate", "5000/s", "--seed", "4",
                     log_dir=tmp_path)  # fmt: skip
    wait_for(lambda: topic_end(p) >= 35_000, timeout=60, what="the generator to produce")
    assert kafka.stop() == "stopped"
    time.sleep(1)
    gen.proc.send_signal(signal.SIGINT)  # Ctrl-C: flush what it can, then report
    assert gen.wait(120) == 1
    delivered, failed = summary(gen.stdout)
    assert delivered > 0 and failed > 0
    errors = [line for line in gen.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and f"{failed:,} tweets were not delivered" in errors[0]
    assert "Traceback" not in gen.stderr
    kafka.start()
    in_topic = topic_messages(p)
    # every delivered tweet is in the topic; a failed one may have landed before the broker
    # went away without its acknowledgement coming back, never more than that
    assert 30_000 + delivered <= in_topic <= 30_000 + delivered + failed
    run = p.cli("process", "--until-idle", timeout=300)
    assert run.returncode == 0, run.stderr
    assert_exact(p, in_topic)


# ---- 3 and 4. PostgreSQL or S3 down for 30 s during processing ----------------------------------
def outage(
    private: PrivateStack,
    tmp_path: Path,
    stop: Callable[[], object],
    start: Callable[[], object],
    logged: str,
) -> None:
    p = private.pipeline("s3")
    generate(p, 40_000, seed=13)
    proc = Background(p, "process", "--until-idle", log_dir=tmp_path)
    wait_for(lambda: stored(p) >= 5_000, timeout=120, what="5,000 stored")
    stop()
    down_at = time.monotonic()
    while time.monotonic() - down_at < 30:
        assert proc.alive(), proc.stderr
        time.sleep(1)
    assert f"{logged} unavailable (" in proc.stderr, proc.stderr
    assert re.search(r"retrying in \d+\.\d s", proc.stderr)
    start()
    assert proc.wait(240) == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_exact(p, 40_000)


@pytest.mark.timeout(600)
def test_postgres_down_30s_pauses_the_processor_which_resumes_by_itself(
    private: PrivateStack, tmp_path: Path
) -> None:
    outage(private, tmp_path, private.stack.postgres.stop, private.restart_postgres, "PostgreSQL")


@pytest.mark.timeout(600)
def test_s3_down_30s_pauses_the_processor_which_resumes_by_itself(
    private: PrivateStack, tmp_path: Path
) -> None:
    outage(private, tmp_path, private.stack.s3.stop, private.restart_s3, "the lake")


# ---- 5. two members, one killed -----------------------------------------------------------------
@pytest.mark.timeout(600)
def test_two_processors_one_killed_the_other_takes_over_exactly(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    a = Background(pipeline, "process", "-v", log_dir=tmp_path)
    b = Background(pipeline, "process", "-v", log_dir=tmp_path)
    owns = re.compile(r"assigned partitions \d")
    wait_for(
        lambda: bool(owns.search(a.stderr) and owns.search(b.stderr)),
        timeout=120, what="both members to own partitions",
    )  # fmt: skip
    # the tweets come once the group has settled, so both members have work when one dies
    generate(pipeline, 40_000, seed=17)
    wait_for(lambda: stored(pipeline) >= 8_000, timeout=120, what="8,000 stored")
    a.kill()
    assert stored(pipeline) < 40_000, "the kill landed after the run had finished"
    # the survivor gets all six partitions once the group drops the dead member
    wait_for(lambda: stored(pipeline) == 40_000, timeout=300, what="all tweets stored")
    assert b.stop() == 0, b.stderr
    assignments = re.findall(r"assigned partitions ([\d@,-]*)", b.stderr)
    assert len(assignments[-1].split(",")) == 6, assignments
    assert_exact(pipeline, 40_000)


# ---- 6. a local lake path that cannot be written ------------------------------------------------
def _file_size_limit() -> None:
    # a process over RLIMIT_FSIZE gets SIGXFSZ (fatal by default) or, ignored, EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))


def assert_whole_objects(root: Path) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            assert not name.startswith(".tmp-"), f"partial file left: {folder}/{name}"
            data = Path(folder, name).read_bytes()
            if name.endswith(".parquet"):
                pq.read_table(io.BytesIO(data))
            else:
                assert name.endswith(".jsonl.gz") and gzip.decompress(data).endswith(b"\n")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("failure", ["disk full", "file size limit", "not a directory"])
def test_unwritable_local_lake_gives_one_clear_line_and_no_partial_file(
    file_pipeline: Pipeline, tmp_path: Path, failure: str
) -> None:
    p = file_pipeline
    lake = Path(p.lake_url.removeprefix("file://"))
    preexec = None
    # a full disk or a file size limit can be fixed while the processor waits (transient: it
    # retries); a file where the lake's folder should be cannot (fatal: it stops at once)
    transient = failure != "not a directory"
    if failure == "disk full":
        lake.mkdir(parents=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(lake)],
            capture_output=True, check=False,
        )  # fmt: skip
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
        os_error = "No space left on device"
    elif failure == "file size limit":
        preexec = _file_size_limit
        os_error = "File too large"
    else:
        lake.parent.mkdir(parents=True, exist_ok=True)
        lake.write_text("a regular file where the lake folder should be\n")
        os_error = "Not a directory"
    try:
        generate(p, 5_000, seed=23)
        proc = Background(p, "process", log_dir=tmp_path / "logs", preexec=preexec)
        if transient:
            wait_for(
                lambda: "the lake unavailable (" in proc.stderr, timeout=120, what="lake error"
            )
            warning = next(x for x in proc.stderr.splitlines() if "the lake unavailable (" in x)
            assert f"lake write failed for {p.lake_url}/" in warning and os_error in warning
            assert re.search(r"retrying in \d+\.\d s", warning)
            # nothing a reader would take for data: no half-written temporary file; an object
            # that is there is whole (the same name is rewritten with the same rows later)
            if lake.is_dir():
                assert_whole_objects(lake)
            assert proc.stop() == 1
        else:
            assert proc.wait(120) == 1
            assert "the lake unavailable (" not in proc.stderr
        errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
        assert len(errors) == 1 and os_error in errors[0] and p.lake_url in errors[0]
        assert "Traceback" not in proc.stderr
        assert p.scalar("select count(*) from kafka_offsets where sink = 'lake'") == 0
    finally:
        if failure == "disk full":
            subprocess.run(["umount", str(lake)], check=False)
    # the path fixed: the next run writes the lake from where it stopped; PostgreSQL unchanged
    if lake.is_file():
        lake.unlink()
    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert_exact(p, 5_000)
