"""Streamlit AppTest smoke tests of the page against a real database: with data and empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_dashboard_queries import known, reader_url  # noqa: F401 - `known` is a fixture

from cryptosent.config import Settings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

APP = Path(__file__).resolve().parents[2] / "src" / "cryptosent" / "dashboard" / "app.py"


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[object]:
    """Point the dashboard's settings at a test database (read-only role)."""

    def use(database_url: str) -> None:
        monkeypatch.setenv("CRYPTOSENT_DASHBOARD_DATABASE_URL", reader_url(settings, database_url))
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def run_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_with_data_has_every_panel(known: str, point_at) -> None:  # noqa: F811
    point_at(known)
    at = run_page()
    labels = [m.label for m in at.metric]
    for label in ("Total tweets", "Tweets / min now", "Mean sentiment", "Positive", "Negative",
                  "Consumer lag", "Newest stored tweet"):  # fmt: skip
        assert label in labels
    assert at.metric[labels.index("Total tweets")].value == "3"  # the 1 h default range
    charts = at.get("plotly_chart")
    assert len(charts) >= 7  # timeline, pie, mentions, leaderboard, heatmap, drill-down, throughput
    assert at.get("imgs") or at.get("image")  # the word cloud
    assert len(at.dataframe) >= 2  # alerts and latest tweets
    assert [h.value for h in at.subheader] == [
        "Coin drill-down", "Bots and campaigns", "Latest tweets", "Pipeline health"
    ]  # fmt: skip
    # the untrusted tweet text never went through markdown
    assert not any("rekt" in m.value for m in at.markdown)
    # switching the analyzer and the range reruns cleanly
    at.sidebar.button_group[0].set_value("7 d").run()
    assert not at.exception
    assert at.metric[0].value == "6"


def test_empty_database_explains_how_to_start(database_url: str, point_at) -> None:
    point_at(database_url)
    at = run_page()
    assert any("No tweets stored yet" in i.value for i in at.info)
    assert any("cryptosent generate" in c.value for c in at.code)
    assert not at.get("plotly_chart")
