"""The database goes away and comes back: the data layer says so in one line, then recovers by
itself at the next refresh (a TCP proxy in front of the real PostgreSQL is switched off and on)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cryptosent.config import Settings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class Proxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; stop() refuses and cuts every connection."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self.sockets: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass

    def stop(self) -> None:
        for sock in [self.server, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def proxied(
    database_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[int, int]]:
    """The dashboard pointed at the test database through a proxy port; (port, real port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    real = settings.stack_postgres_port
    url = settings.dashboard_dsn().rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]
    monkeypatch.setenv("CRYPTOSENT_DASHBOARD_DATABASE_URL", url.replace(f":{real}/", f":{port}/"))
    get_settings.cache_clear()
    yield port, real
    get_settings.cache_clear()


def test_database_down_then_back(proxied: tuple[int, int]) -> None:
    from cryptosent.dashboard import data

    port, real = proxied

    def probe() -> object:
        with data.connection() as conn:
            return conn.execute("select count(*) from tweets").fetchone()

    proxy = Proxy(port, real)
    assert probe() == (0,)
    proxy.stop()
    # several refreshes while it is down: a connection pool that kept retrying in the background
    # would by now wait 4-8 s between attempts (that was the bug: "unreachable" after it was back)
    down_until = time.monotonic() + 8
    while time.monotonic() < down_until:
        with pytest.raises(data.Unavailable, match=f"127.0.0.1:{port}/.* is unreachable"):
            probe()
        time.sleep(1)
    proxy = Proxy(port, real)
    try:
        back = time.monotonic()
        assert probe() == (0,)  # the first refresh after the database is back answers
        assert time.monotonic() - back < data.POOL_TIMEOUT
    finally:
        proxy.stop()
