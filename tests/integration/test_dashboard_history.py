"""History on the dashboard (docs/dashboard.md, "History"): per-day measures from the lake, exact,
each day read once and then cached, and the page's history panel (Streamlit AppTest)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_backfill import write_archive
from test_dashboard_queries import reader_url

from cryptosent.config import Settings, get_settings
from cryptosent.dashboard import history
from cryptosent.dashboard.history import DayAggregates
from cryptosent.sinks.lake import Lake, open_lake
from cryptosent.storage.to_lake import load_archive

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

APP = Path(__file__).resolve().parents[2] / "src" / "cryptosent" / "dashboard" / "app.py"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Counter[str]]:
    """A lake holding an archive of 1,200 posts over 4 days ending 40 days ago (replayed to the
    lake); its URL and the posts per day."""
    folder = tmp_path_factory.mktemp("history")
    posts = write_archive(folder / "old.jsonl", 1200, 4, ago=40)
    url = f"file://{folder / 'lake'}"
    load_archive(folder / "old.jsonl", Lake(open_lake(url)), Settings())
    return url, Counter(t.date().isoformat() for t in posts.values())


def test_days_are_exact_read_once_then_cached_and_a_changed_day_alone_is_read_again(
    lake: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    url, per_day = lake
    view = DayAggregates(open_lake(url), tmp_path / "cache")
    frame = view.frame(90)
    every = frame[frame["coin"] == "*"]
    days = zip(every["day"], every["tweets"], strict=True)
    assert {d.date().isoformat(): int(n) for d, n in days} == dict(per_day)
    assert (view.last.days, view.last.computed, view.last.cached) == (4, 4, 0)
    assert view.last.rows_read == 1200
    assert view.frame(30).empty  # the archive ends 40 days ago
    view.frame(90)
    assert (view.last.computed, view.last.cached) == (0, 4)  # memory
    # closed days listed again at every view (the dashboard's view trusts a list 5 minutes)
    fresh = DayAggregates(open_lake(url), tmp_path / "cache", relist_after_s=0)
    assert fresh.frame(90).equals(frame)
    assert (fresh.last.computed, fresh.last.cached) == (0, 4)  # the disk cache, a new process

    # late posts for one of the days: a new object in that day; only that day is read again
    late = tmp_path / "late.jsonl"
    added = write_archive(late, 50, 1, ago=41, seed=5)
    load_archive(late, Lake(open_lake(url)), Settings())
    again = fresh.frame(90)
    assert (fresh.last.computed, fresh.last.cached) == (1, 3)
    day = next(iter(added.values())).date()
    every = again[again["coin"] == "*"].set_index(again[again["coin"] == "*"]["day"].dt.date)
    assert int(every.loc[day, "tweets"]) == per_day[day.isoformat()] + 50
    trusting = DayAggregates(open_lake(url), tmp_path / "cache")
    assert trusting.frame(90).equals(again)
    assert (trusting.last.computed, trusting.last.cached) == (0, 4)


@pytest.fixture
def page_on(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, database_url: str, tmp_path: Path
) -> Iterator[object]:
    """Point the page at an empty database and at a lake (history cache in tmp_path)."""

    def use(lake_url: str) -> None:
        monkeypatch.setenv("CRYPTOSENT_DASHBOARD_DATABASE_URL", reader_url(settings, database_url))
        monkeypatch.setenv("CRYPTOSENT_LAKE_URL", lake_url)
        monkeypatch.setattr(history, "cache_dir", lambda _settings: tmp_path / "page-cache")
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def test_history_panel_reads_the_lake_only_when_turned_on(
    lake: tuple[str, Counter[str]], page_on
) -> None:
    url, per_day = lake
    page_on(url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("plotly_chart")  # empty database, history off
    at.toggle(key="history").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1
    assert at.button_group(key="history_range").value == "90 d"
    assert len(at.multiselect(key="history_coins").value) == 3
    caption = " ".join(c.value for c in at.caption)
    assert f"{len(per_day)} day(s)" in caption
    at.button_group(key="history_range").set_value("30 d").run()
    assert not at.exception
    assert not at.get("plotly_chart")
    assert any("No posts in the lake in the last 30 d" in c.value for c in at.caption)
