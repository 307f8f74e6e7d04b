"""`cryptosent demo`: the main job on one machine — stack, generator, mock prices, processor,
dashboard. The generator's posts and the mock prices follow one mock market (docs/market.md).

Each part runs as its own process (as it would in production), with its output in
`.stack/logs/demo-<part>.log`; the demo shows one live status table and stops everything it
started on Ctrl-C (SIGINT lets the generator flush and the processor commit).

The parts get their settings explicitly: the demo's own choices (its lake on the local S3
server, a shorter lake flush) go into a settings file each child reads with
`cryptosent --settings FILE`, and only where the user has not set them (environment or `.env`),
so nothing the user configured is overridden.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cryptosent.config import Settings, read_settings_file, settings_file, write_settings_file


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

    def stop(self, timeout: float = 30.0) -> None:
        """SIGINT (flush and commit), then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


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


def run_demo(
    settings: Settings,
    *,
    rate: str,
    port: int,
    duration_s: float | None,
    show: Callable[[list[Part], DemoStatus], None],
    should_stop: Callable[[], bool],
) -> list[Part]:
    """Start every part, refresh the status until stopped (or duration), stop them all."""
    # a settings file the demo itself was given is passed on, with the demo's choices added
    given = settings_file()
    inherited = read_settings_file(given) if given is not None else {}
    path = write_settings_file(
        settings.stack_dir / "run" / "demo.env", {**inherited, **demo_settings(settings)}
    )
    running = parts(settings, rate, port, path)
    started = time.monotonic()
    try:
        for part in running:
            part.start()
        while not should_stop():
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            show(running, status(settings, port))
            dead = [p for p in running if not p.running]
            if dead:
                break
            time.sleep(1.0)
    finally:
        # stop in data-flow order: no new tweets, then the processor drains and commits
        for part in running:
            part.stop()
    return running
