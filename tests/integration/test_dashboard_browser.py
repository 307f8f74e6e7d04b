"""The dashboard in a real browser (Debian's Chromium via Playwright) on data from the real
pipeline: charts render, the word cloud is drawn, and an auto-refresh shows new tweets."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptosent.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dashboard(pipeline, settings: Settings, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`cryptosent dashboard --refresh 2` on the pipeline's database; its URL."""
    port = free_port()
    reader = (
        settings.dashboard_dsn().rsplit("/", 1)[0] + "/" + pipeline.database_url.rsplit("/", 1)[1]
    )
    env = dict(pipeline.env, CRYPTOSENT_DASHBOARD_DATABASE_URL=reader)
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryptosent", "dashboard", "--port", str(port), "--refresh", "2"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, (tmp_path / "dashboard.log").read_text()
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the CLI and the streamlit server it started
        proc.wait(timeout=30)
        log.close()


def organic(pipeline) -> int:  # type: ignore[no-untyped-def]
    """Stored tweets not flagged as spam: what "Total tweets" counts with the sidebar's
    "Organic only" switch on, as it is by default (the mock feed's campaign posts are spam)."""
    return int(str(pipeline.scalar("select count(*) from tweets where not spam")))


def total_tweets(page) -> int:  # type: ignore[no-untyped-def]
    metric = page.locator("[data-testid=stMetric]", has_text="Total tweets")
    return int(re.sub(r"\D", "", metric.locator("[data-testid=stMetricValue]").inner_text()))


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_dashboard_in_a_browser(pipeline, dashboard: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    done = pipeline.cli("generate", "--count", "2000", "--rate", "max", "--seed", "5")
    assert done.returncode == 0, done.stderr
    done = pipeline.cli("process", "--until-idle")
    assert done.returncode == 0, done.stderr

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 3400})
            page.goto(dashboard)
            page.wait_for_selector(".js-plotly-plot", timeout=90_000)
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot').length >= 7", timeout=60_000
            )
            page.wait_for_selector("[data-testid=stImage] img", timeout=60_000)  # word cloud
            assert page.locator("[data-testid=stException]").count() == 0
            assert page.locator("text=Sentiment over time").count() >= 1
            assert page.locator(".js-plotly-plot .heatmaplayer, .js-plotly-plot .hm").count() >= 1
            assert pipeline.scalar("select count(*) from tweets") == 2000
            before = total_tweets(page)
            assert before == organic(pipeline) < 2000

            # more tweets while the page is open: the next auto-refresh must show them
            done = pipeline.cli("generate", "--count", "500", "--rate", "max", "--seed", "6")
            assert done.returncode == 0, done.stderr
            done = pipeline.cli("process", "--until-idle")
            assert done.returncode == 0, done.stderr
            deadline = time.monotonic() + 30
            while total_tweets(page) <= before and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            assert pipeline.scalar("select count(*) from tweets") == 2500
            assert total_tweets(page) == organic(pipeline) > before
            page.wait_for_timeout(1500)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert (tmp_path / "dashboard.png").stat().st_size > 50_000
        finally:
            browser.close()
