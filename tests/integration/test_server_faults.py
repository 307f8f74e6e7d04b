"""The servers themselves crash: PostgreSQL, the Kafka broker and the S3 server SIGKILLed in the
middle of the work (a crash, not a clean stop), then restarted; the processor and PostgreSQL
killed together.

Every test ends with exact counts (`faults_support.assert_exact`: each tweet once in `tweets`,
`coin_minute` equal to a recomputation, as many Parquet rows and raw lines as stored tweets, no
lake intent left) and prints how long recovery took (`RECOVERY ...` lines, run with `-s`; the
figures are in docs/reliability.md). Everything runs on a private stack, never the shared one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Pipeline
from faults_support import (
    Background,
    PrivateStack,
    assert_exact,
    crash,
    in_flush,
    in_transaction,
    private_stack_root,
    restart,
    rss_bytes,
    stored,
    topic_end,
    topic_messages,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def private(stack: object) -> Iterator[PrivateStack]:
    """A second Kafka + PostgreSQL + S3 that these tests may kill."""
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


def report(fault: str, **seconds: float) -> None:
    """One line the docs' recovery table is read from."""
    print("RECOVERY", fault, " ".join(f"{k}={v:.2f}s" for k, v in seconds.items()))


def wait_more_stored(p: Pipeline, than: int, timeout: float) -> float:
    """Wait until PostgreSQL holds more than `than` tweets; the monotonic time it did."""
    wait_for(lambda: stored(p) > than, timeout=timeout, what=f"more than {than:,} stored")
    return time.monotonic()


N = 10_000


# ---- PostgreSQL SIGKILLed mid-transaction -------------------------------------------------------
@pytest.mark.timeout(300)
def test_postgres_sigkilled_mid_transaction_then_restarted_is_exact(
    private: PrivateStack, tmp_path: Path
) -> None:
    p = private.pipeline("s3")
    generate(p, N, seed=31)
    proc = Background(p, "process", "--until-idle", log_dir=tmp_path)
    # the sink's transaction is open (COPY and insert under way) when the server dies
    wait_for(
        lambda: stored(p) >= 1_000 and in_transaction(p),
        timeout=120, step=0.005, what="a write in flight",
    )  # fmt: skip
    killed = crash(private, "postgres")
    time.sleep(1)
    assert proc.alive(), proc.stderr
    up = restart(private, "postgres")
    before = stored(p)
    assert before < N, "the crash landed after the run had finished"
    resumed = wait_more_stored(p, before, timeout=60)
    assert proc.wait(240) == 0, proc.stderr
    assert "PostgreSQL unavailable (" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_exact(p, N)
    report("postgres", down=up - killed, resumed_after_restart=resumed - up)


# ---- the broker SIGKILLed under the generator and the processor ---------------------------------
def summary(text: str) -> tuple[int, int]:
    match = re.search(r"generate: ([\d,]+) delivered to '[^']+', ([\d,]+) failed", text)
    assert match, text
    return int(match[1].replace(",", "")), int(match[2].replace(",", ""))


@pytest.mark.timeout(300)
def test_broker_sigkilled_while_producing_and_consuming_stores_every_acknowledged_tweet(
    private: PrivateStack, tmp_path: Path
) -> None:
    p = private.pipeline("s3")
    proc = Background(p, "process", "-v", log_dir=tmp_path)
    wait_for(lambda: "assigned partitions" in proc.stderr, timeout=60, what="an assignment")
    gen = Background(p, "generate", "--count", str(N), "--rate", "1000/s", "--seed", "5",
                     log_dir=tmp_path)  # fmt: skip
    wait_for(
        lambda: topic_end(p) >= 3_000 and stored(p) > 0,
        timeout=120, what="producing and consuming",
    )  # fmt: skip
    killed = crash(private, "kafka")
    time.sleep(1)
    assert gen.alive(), f"the crash landed after the generator had finished: {gen.stdout}"
    assert proc.alive(), proc.stderr
    up = restart(private, "kafka")
    before = stored(p)
    resumed = wait_more_stored(p, before, timeout=120)
    assert gen.wait(240) == 0, gen.stderr
    delivered, failed = summary(gen.stdout)
    # the idempotent producer retried through the crash: every tweet acknowledged, none twice
    assert (delivered, failed) == (N, 0)
    assert topic_messages(p) == N
    wait_for(lambda: stored(p) == N, timeout=120, what=f"{N:,} stored")
    caught_up = time.monotonic()
    assert proc.stop() == 0, proc.stderr
    assert "Traceback" not in proc.stderr + gen.stderr
    assert_exact(p, N)
    report(
        "kafka", down=up - killed, resumed_after_restart=resumed - up,
        caught_up_after_restart=caught_up - up,
    )  # fmt: skip


# ---- the S3 server SIGKILLed during a lake flush ------------------------------------------------
@pytest.mark.timeout(300)
def test_s3_sigkilled_during_a_lake_flush_then_restarted_is_exact(
    private: PrivateStack, tmp_path: Path
) -> None:
    p = private.pipeline("s3")
    generate(p, N, seed=37)
    proc = Background(p, "process", "--until-idle", log_dir=tmp_path)
    # the flush's intent is recorded: its objects are being put when the server dies
    wait_for(
        lambda: stored(p) >= 1_000 and in_flush(p), timeout=120, step=0.005, what="a lake flush"
    )
    killed = crash(private, "s3")
    # longer than the S3 client's own retries (about a second), so the sink's retry takes over
    time.sleep(4)
    assert proc.alive(), proc.stderr
    up = restart(private, "s3")
    assert proc.wait(240) == 0, proc.stderr
    finished = time.monotonic()
    assert_exact(p, N)
    assert "the lake unavailable (" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    report("s3", down=up - killed, finished_after_restart=finished - up)


# ---- the processor and PostgreSQL killed together -----------------------------------------------
@pytest.mark.timeout(300)
def test_processor_and_postgres_killed_together_then_a_new_run_is_exact(
    private: PrivateStack, tmp_path: Path
) -> None:
    p = private.pipeline("s3")
    generate(p, N, seed=41)
    proc = Background(p, "process", log_dir=tmp_path)
    wait_for(
        lambda: stored(p) >= 1_000 and in_transaction(p),
        timeout=120, step=0.005, what="a write in flight",
    )  # fmt: skip
    os.kill(proc.proc.pid, signal.SIGKILL)
    killed = crash(private, "postgres")
    proc.wait(30)
    up = restart(private, "postgres")
    before = stored(p)
    assert before < N, "the crash landed after the run had finished"
    rerun = Background(p, "process", "--until-idle", log_dir=tmp_path)
    started = time.monotonic()
    resumed = wait_more_stored(p, before, timeout=120)
    assert rerun.wait(240) == 0, rerun.stderr
    assert "Traceback" not in rerun.stderr
    assert_exact(p, N)
    report("processor+postgres", down=up - killed, first_write_of_new_run=resumed - started)


# ---- the generator at --rate max against a broker that stopped answering ------------------------
@pytest.mark.timeout(240)
def test_generator_against_a_silent_broker_holds_a_bounded_queue_and_says_so(
    private: PrivateStack, tmp_path: Path
) -> None:
    p = private.pipeline("s3")
    gen = Background(p, "generate", "--rate", "max", "--seed", "11", log_dir=tmp_path)
    wait_for(lambda: topic_end(p) >= 10_000, timeout=120, what="the generator to produce")
    broker = private.stack.kafka.pid()
    assert broker is not None
    os.kill(broker, signal.SIGSTOP)  # the broker stops answering; connections stay open
    try:
        line = "Kafka is not taking messages: the producer's queue is full"
        wait_for(lambda: line in gen.stderr, timeout=120, what="the full-queue line")
        held = []
        for _ in range(16):  # 8 s at the bound
            held.append(rss_bytes(gen.proc.pid))
            time.sleep(0.5)
        gen.proc.send_signal(signal.SIGINT)
        assert gen.wait(30) == 1
    finally:
        os.kill(broker, signal.SIGCONT)
    MIB = 1024 * 1024
    print(f"QUEUE generator RSS at the bound {min(held) / MIB:.0f}..{max(held) / MIB:.0f} MiB")
    # said once, held: the resident set stays where the full queue put it
    assert gen.stderr.count(line) == 1, gen.stderr
    assert max(held) - min(held) < 32 * MIB
    assert max(held) < 1024 * MIB
    delivered, failed = summary(gen.stdout)
    assert delivered >= 10_000 and failed > 0
    errors = [x for x in gen.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and f"{failed:,} tweets were not delivered" in errors[0]
    assert "Traceback" not in gen.stderr
