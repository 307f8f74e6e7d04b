"""The market panels in a real browser (Debian's Chromium via Playwright): a coin whose sentiment
leads its price by 12 minutes, written into PostgreSQL; the drill-down draws its price beside its
sentiment, the lead-lag panel draws the lags and says in words that sentiment led."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import test_dashboard_browser as browser_support
from market_support import now_minute, synthetic_coin, write_coin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

dashboard = browser_support.dashboard  # the `cryptosent dashboard` fixture, on this test's data

TITLES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
  (el) => el._fullLayout && el._fullLayout.title && el._fullLayout.title.text)"""
TRACES = """(title) => {
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    const text = el._fullLayout && el._fullLayout.title && el._fullLayout.title.text;
    if (text && text.includes(title)) {
      const finite = (ys) => Array.from(ys || []).filter((v) => v !== null && !Number.isNaN(v));
      return el._fullData.map((t) => [t.name, finite(t.y).length]);
    }
  }
  return null;
}"""


@pytest.mark.skipif(not Path(browser_support.CHROMIUM).exists(), reason="no Debian chromium")
def test_price_and_leadlag_panels_in_a_browser(pipeline, dashboard: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    until = now_minute(pipeline.database_url)
    write_coin(pipeline.database_url, "BTC", until, *synthetic_coin(1440, 7, 12), all_row=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=browser_support.CHROMIUM, args=browser_support.CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 4200})
            page.goto(dashboard)
            page.wait_for_selector("text=sentiment led price by ~", timeout=120_000)
            drill = page.locator("[data-testid=stMultiSelect]").first
            if drill.locator("[data-baseweb=tag]", has_text="BTC").count() == 0:
                # the drill-down starts empty in this Streamlit version: pick BTC
                page.get_by_role("combobox", name="Coins").focus()
                page.keyboard.type("BTC")
                page.keyboard.press("Enter")
                page.keyboard.press("Escape")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                page.evaluate(TRACES, "BTC: price") is None
                or page.evaluate(TRACES, "Lead-lag") is None
            ):
                page.wait_for_timeout(500)
            titles = page.evaluate(TITLES)
            assert any("BTC: price, sentiment and mentions" in t for t in titles if t), titles
            assert page.locator("[data-testid=stException]").count() == 0

            price = dict(page.evaluate(TRACES, "BTC: price"))
            # the default range is 1 h in minute buckets: about 60 points each
            assert price["price (close)"] >= 55
            assert price["sentiment"] >= 55
            assert price["mentions"] >= 55

            lags = dict(page.evaluate(TRACES, "Lead-lag"))
            assert lags["sentiment vs return"] == 121
            assert lags["no-evidence band"] == 242
            best = [name for name in lags if name.startswith("best lag")]
            assert len(best) == 1 and best[0] in {f"best lag +{k} min" for k in range(10, 15)}

            verdict = page.locator("text=sentiment led price by ~").first.inner_text()
            assert verdict.startswith("BTC: sentiment led price by ~")
            assert "significant over the last 24 h" in verdict
            assert page.locator("text=Sentiment index per").count() >= 1
            page.screenshot(path=str(tmp_path / "market.png"), full_page=True)
        finally:
            browser.close()
