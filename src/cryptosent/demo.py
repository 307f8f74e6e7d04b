"""`cryptosent demo`: the main job on one machine — stack, generator, mock prices, processor,
dashboard. The generator's posts and the mock prices follow one mock market (docs/market.md).

Each part runs as its own process (as it would in production), with its output in
`.stack/logs/demo-<part>.log`; the demo shows one live status table and stops everything it
started on Ctrl-C, SIGTERM or at the end of ``--duration``: every part gets SIGINT at once (the
generator flushes, the processor commits what it stored; what the generator sent last waits in
Kafka for the next run) and each stops within a second or two; one that does not is killed.
The status table is read on its own thread, so a database or dashboard that does not answer
never delays the stop.

The parts get their settings explicitly: the demo's own choices (its lake on the local S3
server, a shorter lake flush) go into a settings file each child reads with
`cryptosent --settings FILE`, and only where the user has not set them (environment or `.env`),
so nothing the user configured is overridden.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cryptosent.config import Settings, read_settings_file, settings_file, write_settings_file
from cryptosent.runtime import StopSignal

PART_STOP_S = 10.0
"""How long a part may take to stop after SIGINT before it is killed (each needs about 1 s)."""


@dataclass
class Part:
    """One child process of the demo."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process with its output in its log file."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def interrupt(self) -> None:
        """SIGINT: the part flushes, commits and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait_or_kill(self, deadline: float) -> None:
        """Wait for the exit until deadline (time.monotonic), then SIGKILL."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = PART_STOP_S) -> None:
        """SIGINT (flush and commit), then SIGKILL if it does not exit in time."""
        self.interrupt()
        self.wait_or_kill(time.monotonic() + timeout)


def stop_parts(parts: list[Part], timeout: float = PART_STOP_S) -> None:
    """Stop every part at once (each within its own stop time), killing what outlives timeout."""
    deadline = time.monotonic() + timeout
    for part in parts:
        part.interrupt()
    for part in parts:
        part.wait_or_kill(deadline)


@dataclass
class DemoStatus:
    """What the status table shows."""

    stored: int | None
    per_minute: float | None
    alerts: int | None
    dashboard_up: bool


DEMO_LAKE_FLUSH_SECONDS = 30.0


def demo_settings(settings: Settings) -> dict[str, object]:
    """The demo's choices for its parts, for the settings the user did not set: the lake on
    the local S3 server (the lake mode of the dashboard then reads it), a 30 s lake flush."""
    chosen: dict[str, object] = {}
    if "lake_url" not in settings.model_fields_set:
        chosen["lake_url"] = f"s3://{settings.stack_s3_bucket}/lake"
    if "lake_flush_seconds" not in settings.model_fields_set:
        chosen["lake_flush_seconds"] = DEMO_LAKE_FLUSH_SECONDS
    return chosen


def parts(settings: Settings, rate: str, port: int, settings_file: Path) -> list[Part]:
    """The generator, the mock price feed, the processor and the dashboard, each reading
    settings_file (so the posts and the prices follow the same mock market)."""
    cli = [sys.executable, "-m", "cryptosent", "--settings", str(settings_file)]
    logs = settings.stack_dir / "logs"
    return [
        Part("generator", [*cli, "generate", "--rate", rate], logs / "demo-generator.log"),
        Part("prices", [*cli, "prices", "mock"], logs / "demo-prices.log"),
        Part("processor", [*cli, "process", "--verbose"], logs / "demo-processor.log"),
        Part("dashboard", [*cli, "dashboard", "--port", str(port)], logs / "demo-dashboard.log"),
    ]


def status(settings: Settings, port: int) -> DemoStatus:
    """Numbers for the status table, read the way a user would (database, HTTP)."""
    stored = per_minute = alerts = None
    try:
        with psycopg.connect(settings.database_dsn(), connect_timeout=2) as conn:
            row = conn.execute(
                "select coalesce(sum(tweets), 0),"
                " coalesce(sum(tweets) filter (where minute >= now() - interval '2 minutes'"
                " and minute < date_trunc('minute', now())), 0) / 1.0"
                " from coin_minute where coin = '*'"
            ).fetchone()
            count = conn.execute("select count(*) from alerts").fetchone()
            if row is not None and count is not None:
                stored, per_minute, alerts = int(row[0]), float(row[1]), int(count[0])
    except psycopg.Error:
        pass
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            dashboard_up = r.status == 200
    except OSError:
        dashboard_up = False
    return DemoStatus(stored, per_minute, alerts, dashboard_up)


class StatusPoller:
    """Reads the status every second on a daemon thread; `latest` never waits for a server."""

    def __init__(self, settings: Settings, port: int, stop: StopSignal) -> None:
        self.latest = DemoStatus(None, None, None, False)
        self._thread = threading.Thread(
            target=self._run, args=(settings, port, stop), name="demo-status", daemon=True
        )
        self._thread.start()

    def _run(self, settings: Settings, port: int, stop: StopSignal) -> None:
        while not stop.is_set:
            self.latest = status(settings, port)
            stop.wait(1.0)


def run_demo(
    settings: Settings,
    *,
    rate: str,
    port: int,
    stop: StopSignal,
    show: Callable[[list[Part], DemoStatus], None],
) -> list[Part]:
    """Start every part, refresh the status until stopped (Ctrl-C, SIGTERM, the deadline) or
    until a part exits by itself, then stop them all."""
    # a settings file the demo itself was given is passed on, with the demo's choices added
    given = settings_file()
    inherited = read_settings_file(given) if given is not None else {}
    path = write_settings_file(
        settings.stack_dir / "run" / "demo.env", {**inherited, **demo_settings(settings)}
    )
    running = parts(settings, rate, port, path)
    try:
        for part in running:
            part.start()
        poller = StatusPoller(settings, port, stop)
        while not stop.is_set:
            show(running, poller.latest)
            if any(not p.running for p in running):
                break
            stop.wait(0.5)
    finally:
        stop_parts(running)
    return running
