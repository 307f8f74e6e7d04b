"""The dashboard's bots-and-campaigns parts in a real browser (Debian's Chromium) on data from
the real pipeline: the "organic only" switch (on by default) changes the counts by exactly the
spam posts, and the bot share and the active campaigns show what PostgreSQL holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from campaigns_support import mixed_stream, send
from test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, dashboard  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def metric(page, label: str) -> str:  # type: ignore[no-untyped-def]
    """The shown value of the metric with this label."""
    box = page.locator("[data-testid=stMetric]", has_text=label).first
    return str(box.locator("[data-testid=stMetricValue]").inner_text())


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_organic_switch_bot_share_and_campaigns_in_a_browser(  # type: ignore[no-untyped-def]
    pipeline,
    dashboard: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    pipeline.env["CRYPTOSENT_BATCH_SIZE"] = "300"
    stream = mixed_stream(2000, campaigns=3, per_campaign=30, seed=3)
    send(pipeline.settings, pipeline.topic, stream.tweets)
    done = pipeline.cli("process", "--until-idle")
    assert done.returncode == 0, done.stderr
    total = len(stream.tweets)
    spam = int(str(pipeline.scalar("select count(*) from tweets where spam")))
    campaigns = int(str(pipeline.scalar("select count(distinct campaign_id) from tweets")))
    in_campaigns = int(str(pipeline.scalar("select count(campaign_id) from tweets")))
    assert total == 2090 and spam >= 90 and campaigns >= 3

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 4200})
            page.goto(dashboard)
            page.wait_for_selector("text=Bots and campaigns", timeout=90_000)
            page.wait_for_selector("[data-testid=stMetric]:has-text('Active campaigns')")
            assert page.locator("[data-testid=stException]").count() == 0
            # the switch is there and on: the page counts organic posts only
            switch = page.locator("label:has-text('Organic only') input")
            assert switch.is_checked()
            assert number(metric(page, "Total tweets")) == total - spam
            assert metric(page, "Bot share") == f"{100 * spam / total:.1f} %"
            assert number(metric(page, "Active campaigns")) == campaigns
            assert number(metric(page, "Campaign posts")) == in_campaigns
            # the per-coin bot share and the campaigns table are drawn with rows
            # (Streamlit draws a page top down: the tables may come after the metrics)
            grids = page.locator("[data-testid=stDataFrame]")
            grids.nth(2).wait_for(timeout=30_000)
            assert grids.count() >= 3
            assert page.locator("text=No coordinated campaign in this range.").count() == 0
            assert page.locator("text=No coin mentions in this range.").count() == 0
            page.screenshot(path=str(tmp_path / "campaigns-organic.png"), full_page=True)

            # off: every post counts
            page.get_by_text("Organic only").click()
            page.wait_for_function(
                "([label, want]) => [...document.querySelectorAll('[data-testid=stMetric]')]"
                ".some(m => m.innerText.includes(label) && m.innerText.replace(/\\D/g, '')"
                ".endsWith(want))",
                arg=["Total tweets", str(total)],
                timeout=30_000,
            )
            assert not switch.is_checked()
            assert number(metric(page, "Total tweets")) == total
            assert page.locator("[data-testid=stException]").count() == 0
            page.screenshot(path=str(tmp_path / "campaigns-all.png"), full_page=True)
        finally:
            browser.close()
