"""Stop means stop: every long-running command (generate, replay, stream x, stream bluesky,
process, demo) ends within 2 s of Ctrl-C, SIGTERM or the end of --duration, in every state:
connecting to a server that refuses or never answers, backing off, pacing, waiting on a broker
or a database that went away mid-run. Each test checks the exit status, the one line that says
why, and the time from the stop to the exit (from the signal, or from the deadline counted
from when the command installed its stop). Servers that are stopped mid-run are a private
stack's (`faults_support.PrivateStack`) or behind a local proxy, never the shared stack's.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Pipeline
from faults_support import PrivateStack, assert_exact, private_stack_root, topic_end, wait_for
from stop_support import (
    BOUND_S,
    Command,
    Proxy,
    SilentServer,
    Stopped,
    children,
    closed_port,
    pid_alive,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}
MEASURED: list[tuple[str, str, float, int]] = []
"""(command and state, how it was stopped, seconds to exit, exit status), printed at the end."""


def record(what: str, how: str, result: Stopped) -> Stopped:
    MEASURED.append((what, how, result.after_stop, result.code))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.after_stop < BOUND_S, (what, how, result)
    return result


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    if MEASURED:
        width = max(len(what) for what, *_ in MEASURED)
        lines = [f"{what:<{width}}  {how:<9} {took:4.2f} s  exit {code}"
                 for what, how, took, code in MEASURED]  # fmt: skip
        print("\nstop times:\n" + "\n".join(lines))


def run(p: Pipeline, tmp_path: Path, *args: str, **env: str) -> Command:
    return Command(list(args), {**p.env, **env}, tmp_path / "logs")


def jsonl(path: Path, *hours: int) -> Path:
    """Posts an hour apart (a paced replay waits between them)."""
    lines = [
        json.dumps({"id": f"r{h}", "text": "$BTC", "created_at": f"2026-01-01T{h:02d}:00:00Z"})
        for h in hours
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- generate and replay: the broker ---------------------------------------------------------
@pytest.mark.parametrize(("how", "broker"), [("SIGINT", "refused"), ("SIGTERM", "silent")])
def test_generate_stops_while_checking_a_broker_that_is_down(
    pipeline: Pipeline, tmp_path: Path, how: str, broker: str
) -> None:
    with SilentServer() as silent:
        port = silent.port if broker == "silent" else closed_port()
        cmd = run(pipeline, tmp_path, "generate", CRYPTOSENT_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}")
        result = record(f"generate, broker {broker}", how, cmd.stop_with(SIGNALS[how], 1.0))
    assert result.code == 1
    assert result.last_line.startswith(f"error: Kafka unreachable at 127.0.0.1:{port}")
    assert f"stopped: {how}" in result.last_line


def test_generate_duration_ends_the_wait_for_a_silent_broker(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    with SilentServer() as silent:
        cmd = run(pipeline, tmp_path, "generate", "--duration", "2",
                  CRYPTOSENT_KAFKA_BOOTSTRAP=f"127.0.0.1:{silent.port}")  # fmt: skip
        result = record("generate, broker silent", "--duration", cmd.wait_deadline(2))
    assert result.code == 1 and "stopped: duration" in result.last_line


def test_replay_stops_between_two_paced_posts_and_delivers_the_first(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "paced.jsonl", 10, 11)
    cmd = run(pipeline, tmp_path, "replay", str(path), "--speed", "1")
    wait_for(lambda: topic_end(pipeline) >= 1, timeout=60, what="the first post")
    result = record("replay, pacing", "SIGINT", cmd.stop_with(signal.SIGINT, 0))
    assert result.code == 0, result.stderr
    assert "replay: 1 delivered" in result.stdout and "(interrupted by SIGINT, flushed)" in (
        result.stdout
    )


def test_replay_duration_ends_pacing(pipeline: Pipeline, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "paced.jsonl", 10, 11)
    cmd = run(pipeline, tmp_path, "replay", str(path), "--speed", "1", "--duration", "3")
    result = record("replay, pacing", "--duration", cmd.wait_deadline(3))
    assert result.code == 0, result.stderr
    assert "replay: 1 delivered" in result.stdout and "interrupted" not in result.stdout


def test_replay_stops_while_checking_a_silent_broker(pipeline: Pipeline, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "paced.jsonl", 10, 11)
    with SilentServer() as silent:
        cmd = run(pipeline, tmp_path, "replay", str(path),
                  CRYPTOSENT_KAFKA_BOOTSTRAP=f"127.0.0.1:{silent.port}")  # fmt: skip
        result = record("replay, broker silent", "SIGTERM", cmd.stop_with(signal.SIGTERM, 1.0))
    assert result.code == 1 and "error: Kafka unreachable" in result.last_line


# ---- stream bluesky and stream x: the feed -----------------------------------------------------
def test_stream_bluesky_without_internet_honours_duration(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # the reported bug: `stream bluesky --count 5 --duration 20` on a machine without internet
    # kept running 11 minutes (asleep in its reconnect backoff)
    url = f"ws://127.0.0.1:{closed_port()}/subscribe"
    cmd = run(pipeline, tmp_path, "stream", "bluesky", "--count", "5", "--duration", "4",
              CRYPTOSENT_JETSTREAM_URL=url, CRYPTOSENT_STACK_DIR=str(tmp_path))  # fmt: skip
    result = record("stream bluesky, refused", "--duration", cmd.wait_deadline(4))
    assert result.code == 1
    assert result.last_line.startswith("error: stream bluesky: nothing received in ")
    assert f"Jetstream at {url} unreachable: cannot connect" in result.last_line
    assert "stream bluesky: 0 delivered" in result.stdout


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_stream_bluesky_stops_while_connecting_to_a_silent_server(
    pipeline: Pipeline, tmp_path: Path, how: str
) -> None:
    with SilentServer() as silent:
        url = f"ws://127.0.0.1:{silent.port}/subscribe"
        cmd = run(pipeline, tmp_path, "stream", "bluesky", CRYPTOSENT_JETSTREAM_URL=url,
                  CRYPTOSENT_STACK_DIR=str(tmp_path))  # fmt: skip
        result = record("stream bluesky, silent", how, cmd.stop_with(SIGNALS[how], 2.0))
    assert result.code == 1
    assert result.last_line.endswith(f"no answer from Jetstream at {url}")
    assert f"(interrupted by {how}, flushed)" in result.stdout


def test_stream_x_stops_while_connecting_to_a_silent_server(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    with SilentServer() as silent:
        url = f"http://127.0.0.1:{silent.port}"
        cmd = run(pipeline, tmp_path, "stream", "x", CRYPTOSENT_X_API_URL=url,
                  CRYPTOSENT_X_BEARER_TOKEN="test-token")  # fmt: skip
        result = record("stream x, silent", "SIGINT", cmd.stop_with(signal.SIGINT, 2.0))
    assert result.code == 1
    assert result.last_line.endswith(f"no answer from the X API at {url}")


def test_stream_x_backing_off_honours_duration(pipeline: Pipeline, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    cmd = run(pipeline, tmp_path, "stream", "x", "--duration", "3", CRYPTOSENT_X_API_URL=url,
              CRYPTOSENT_X_BEARER_TOKEN="test-token")  # fmt: skip
    result = record("stream x, refused", "--duration", cmd.wait_deadline(3))
    assert result.code == 1
    assert f"X API at {url} unreachable: network error (ConnectError" in result.last_line


# ---- process: the database and the broker ------------------------------------------------------
def test_process_stops_while_migrating_on_a_silent_database(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    with SilentServer() as silent:
        url = f"postgresql://cryptosent:secret@127.0.0.1:{silent.port}/cryptosent"
        cmd = run(pipeline, tmp_path, "process", CRYPTOSENT_DATABASE_URL=url)
        result = record("process, database silent", "SIGINT", cmd.stop_with(signal.SIGINT, 1.0))
    assert result.code == 1
    assert result.last_line.startswith(
        f"error: PostgreSQL unreachable at postgresql://cryptosent:****@127.0.0.1:{silent.port}"
        "/cryptosent: no answer before the stop (SIGINT)"
    )
    assert "secret" not in result.stderr


def test_process_duration_ends_the_wait_for_a_silent_broker(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    with SilentServer() as silent:
        cmd = run(pipeline, tmp_path, "process", "--duration", "2",
                  CRYPTOSENT_KAFKA_BOOTSTRAP=f"127.0.0.1:{silent.port}")  # fmt: skip
        result = record("process, broker silent", "--duration", cmd.wait_deadline(2))
    assert result.code == 1 and "error: Kafka unreachable" in result.last_line


def test_process_stops_while_its_database_hangs_mid_run_and_a_rerun_is_exact(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    host, port = p.database_url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = Proxy(host, int(port))
    behind_proxy = p.database_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    try:
        assert p.cli("generate", "--count", "3000", "--rate", "max", "--seed", "1").returncode == 0
        cmd = run(p, tmp_path, "process", CRYPTOSENT_DATABASE_URL=behind_proxy)
        wait_for(lambda: p.scalar("select count(*) from tweets") == 3000, timeout=120,
                 what="the first tweets stored")  # fmt: skip
        proxy.silence()  # the database hangs: connections stay open, nothing comes back
        assert p.cli("generate", "--count", "3000", "--rate", "max", "--seed", "2").returncode == 0
        time.sleep(3)  # a batch now waits on the silent database
        result = record("process, database hangs mid-run", "SIGTERM",
                        cmd.stop_with(signal.SIGTERM, 0))  # fmt: skip
    finally:
        proxy.close()
    assert result.code in (0, 1), result.stderr
    if result.code == 1:
        assert "no answer before the stop (SIGTERM)" in result.last_line
    # what it had not stored is stored by the next run, exactly once
    rerun = p.cli("process", "--until-idle")
    assert rerun.returncode == 0, rerun.stderr
    assert_exact(p, 6000)


# ---- a private stack whose broker goes away mid-run ---------------------------------------------
@pytest.fixture(scope="module")
def private(stack: object) -> Iterator[PrivateStack]:
    root = private_stack_root()
    private = PrivateStack(root)
    try:
        private.up()
        yield private
    finally:
        private.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(600)
def test_generate_and_process_stop_while_their_broker_is_down(
    private: PrivateStack, tmp_path: Path
) -> None:
    p = private.pipeline("file")
    kafka = private.stack.kafka
    gen = run(p, tmp_path, "generate", "--rate", "2000/s", "--seed", "5")
    proc = run(p, tmp_path, "process")
    try:
        wait_for(lambda: p.scalar("select count(*) from tweets") > 1000, timeout=120,
                 what="the processor to store tweets")  # fmt: skip
        assert kafka.stop() == "stopped"
        time.sleep(3)  # both now wait on the broker: the producer's queue grows, fetches fail
        generated = record("generate, broker down mid-run", "SIGINT",
                           gen.stop_with(signal.SIGINT, 0))  # fmt: skip
        processed = record("process, broker down mid-run", "SIGINT",
                           proc.stop_with(signal.SIGINT, 0))  # fmt: skip
    finally:
        kafka.start()
        gen.kill()
        proc.kill()
    assert generated.code == 1, generated.stderr
    assert "tweets were not delivered" in generated.last_line
    assert processed.code == 0, processed.stderr
    assert processed.stdout.startswith("process: ")
    rerun = p.cli("process", "--until-idle", timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_exact(p, topic_end(p))


# ---- demo: its parts stop with it -------------------------------------------------------------
def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def demo_env(p: Pipeline, port: int) -> dict[str, str]:
    return {"CRYPTOSENT_DASHBOARD_PORT": str(port), "CRYPTOSENT_LAKE_URL": p.lake_url}


@pytest.mark.timeout(600)
def test_demo_stops_with_all_its_parts(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    cmd = run(p, tmp_path, "demo", "--rate", "600/min", **demo_env(p, closed_port()))
    wait_for(lambda: p.scalar("select count(*) from tweets") > 0, timeout=180,
             what="the demo's processor to store tweets")  # fmt: skip
    parts = children(cmd.proc.pid)
    names = [command_line(pid) for pid in parts]
    assert len(parts) >= 3 and all(" generate " in n or " process " in n or "streamlit" in n
                                   or " prices " in n for n in names), names  # fmt: skip
    result = record("demo, running", "SIGINT", cmd.stop_with(signal.SIGINT, 0))
    assert result.code == 0, result.stderr
    assert "demo stopped (SIGINT)" in result.stdout
    assert not [pid for pid in parts if pid_alive(pid)]


@pytest.mark.timeout(600)
def test_demo_duration_stops_every_part(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    cmd = run(p, tmp_path, "demo", "--rate", "600/min", "--duration", "30",
              **demo_env(p, closed_port()))  # fmt: skip
    wait_for(lambda: p.scalar("select count(*) from tweets") > 0, timeout=25,
             what="the demo's processor to store tweets")  # fmt: skip
    parts = children(cmd.proc.pid)
    result = record("demo, running", "--duration", cmd.wait_deadline(30))
    assert result.code == 0, result.stderr
    assert "demo stopped (duration)" in result.stdout
    assert len(parts) >= 3 and not [pid for pid in parts if pid_alive(pid)]


def test_demo_stops_while_the_stack_start_waits_on_a_silent_database(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # `stack up` (the demo's first step) migrates the configured database: here it never answers
    p = pipeline
    with SilentServer() as silent:
        url = f"postgresql://cryptosent:secret@127.0.0.1:{silent.port}/cryptosent"
        env = {**demo_env(p, closed_port()), "CRYPTOSENT_DATABASE_URL": url}
        cmd = run(p, tmp_path, "demo", **env)
        result = record("demo, starting, database silent", "SIGTERM",
                        cmd.stop_with(signal.SIGTERM, 3.0))  # fmt: skip
    assert result.code == 1
    assert result.last_line.startswith(
        "error: demo stopped (SIGTERM) while the local stack was starting"
    )
    assert children(cmd.proc.pid) == []
