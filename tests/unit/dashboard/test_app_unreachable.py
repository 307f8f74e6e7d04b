"""The page with a database that does not answer: a clear banner, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cryptosent.config import get_settings

APP = Path(__file__).resolve().parents[3] / "src" / "cryptosent" / "dashboard" / "app.py"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> Iterator[None]:
    url = f"postgresql://nobody:secret@127.0.0.1:{closed_port}/nothing"
    monkeypatch.setenv("CRYPTOSENT_DASHBOARD_DATABASE_URL", url)
    monkeypatch.setenv("CRYPTOSENT_KAFKA_BOOTSTRAP", f"127.0.0.1:{closed_port}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.timeout(60)
def test_database_down_shows_a_banner(unreachable: None) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert any("Data source unavailable" in e.value for e in at.error)
    assert any("is unreachable" in t.value for t in at.text)
    assert "secret" not in " ".join(t.value for t in at.text)
    assert not at.get("plotly_chart")
