"""A stop (Ctrl-C, SIGTERM, the end of --duration) ends a live source within a fraction of a
second in every state: connecting to a server that accepts and says nothing, backing off after
refused connections, connected to a feed that has gone quiet; and a paced replay between two
posts. No network: local closed ports, a silent TCP server, the fake Jetstream and X servers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_servers import Connection, FakeJetstream, FakeXServer, Stream, jetstream_post

from cryptosent.model import Tweet
from cryptosent.relevance import crypto_filter
from cryptosent.runtime import StopSignal
from cryptosent.sources.base import StreamSource
from cryptosent.sources.bluesky import JetstreamSource
from cryptosent.sources.replay import replay_source
from cryptosent.sources.x_api import XFilteredStream

pytestmark = pytest.mark.timeout(60)

BOUND_S = 0.5  # a read must return this soon after the stop (the CLI's budget is 2 s)


class SilentServer:
    """Accepts TCP connections and never says a word (a hung server, a black-holed proxy)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._sock.close()
        for conn in self.accepted:
            conn.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_then_stop(
    source: StreamSource, stop: StopSignal, after: float
) -> tuple[list[Tweet], float]:
    """read(1) on a thread, stop after `after` s; what it returned and how long after the stop."""
    result: list[list[Tweet]] = []
    reader = threading.Thread(target=lambda: result.append(source.read(1)), daemon=True)
    reader.start()
    time.sleep(after)
    stopped = time.monotonic()
    stop.set("SIGINT")
    reader.join(10)
    took = time.monotonic() - stopped
    assert not reader.is_alive()
    return result[0], took


def closes_quickly(source: StreamSource) -> float:
    started = time.monotonic()
    source.close()
    return time.monotonic() - started


def jetstream(url: str, stop: StopSignal, **kwargs: object) -> JetstreamSource:
    return JetstreamSource(url, accept=crypto_filter(), stop=stop, **kwargs)  # type: ignore[arg-type]


def x_stream(url: str, stop: StopSignal, **kwargs: object) -> XFilteredStream:
    return XFilteredStream("token", rules=[("btc", "t")], base_url=url, stop=stop, **kwargs)  # type: ignore[arg-type]


Factory = Callable[[str, StopSignal], StreamSource]
SOURCES: dict[str, tuple[Factory, str]] = {
    "bluesky": (jetstream, "ws://127.0.0.1:{port}/subscribe"),
    "x": (x_stream, "http://127.0.0.1:{port}"),
}


@pytest.mark.parametrize("name", SOURCES)
def test_a_stop_ends_a_read_while_connecting_to_a_silent_server(name: str) -> None:
    factory, url = SOURCES[name]
    with SilentServer() as silent:
        stop = StopSignal()
        source = factory(url.format(port=silent.port), stop)
        got, took = read_then_stop(source, stop, after=0.5)
        assert got == [] and took < BOUND_S
        assert silent.accepted, "the source never tried to connect"
        assert source.problem is not None and "no answer" in source.problem
        assert closes_quickly(source) < StreamSource.CLOSE_WAIT_S + 0.2


@pytest.mark.parametrize("name", SOURCES)
def test_a_stop_ends_a_read_while_backing_off_from_refused_connections(name: str) -> None:
    factory, url = SOURCES[name]
    stop = StopSignal()
    source = factory(url.format(port=closed_port()), stop)
    got, took = read_then_stop(source, stop, after=1.5)
    assert got == [] and took < BOUND_S
    assert source.problem is not None and "unreachable" in source.problem
    assert source.stats.reconnects >= 1  # type: ignore[attr-defined]
    assert closes_quickly(source) < 0.2  # the feed thread was waiting on the stop: it ends


def test_a_stop_ends_a_read_on_a_jetstream_that_went_quiet() -> None:
    with FakeJetstream([], [Connection(count=0, end="hang")]) as server:
        stop = StopSignal()
        source = jetstream(server.url, stop, stall_timeout_s=60)
        got, took = read_then_stop(source, stop, after=0.5)
        assert got == [] and took < BOUND_S
        assert source.problem is None  # connected: a quiet feed is not a failure
        assert closes_quickly(source) < 0.2  # interrupt() shut the socket the read waited on


def test_a_stop_ends_a_read_on_an_x_stream_that_only_sends_keepalives() -> None:
    server = FakeXServer([Stream([b"\r\n"], end="hang")]).start()
    try:
        stop = StopSignal()
        source = x_stream(server.base_url, stop, sync_rules=False, stall_timeout_s=60)
        got, took = read_then_stop(source, stop, after=0.5)
        assert got == [] and took < BOUND_S
        assert source.problem is None
        assert closes_quickly(source) < StreamSource.CLOSE_WAIT_S + 0.2
    finally:
        server.stop()


def test_the_deadline_ends_a_read_and_posts_before_it_are_delivered() -> None:
    events = [jetstream_post(1_725_911_162_000_000, "a0", "Bitcoin is breaking out")]
    with FakeJetstream(events, [Connection(count=1, end="hang")]) as server:
        stop = StopSignal(1.0)
        source = jetstream(server.url, stop, stall_timeout_s=60)
        assert [t.text for t in source.read(1)] == ["Bitcoin is breaking out"]
        started = time.monotonic()
        assert source.read(1) == []
        assert time.monotonic() - started < 1.0 + BOUND_S
        assert stop.reason == "duration"
        source.close()


def test_closing_a_source_does_not_stop_the_command() -> None:
    command = StopSignal()
    source = jetstream(f"ws://127.0.0.1:{closed_port()}/subscribe", command)
    source.close()
    assert source.stop.is_set and not command.is_set


def test_a_fatal_feed_error_reaches_the_reader() -> None:
    stop = StopSignal()

    class Broken(StreamSource):
        name = "broken"

        def iter_tweets(self) -> Iterator[Tweet]:
            raise ValueError("refused for good")
            yield  # a generator

    source = Broken(stop)
    with pytest.raises(ValueError, match="refused for good"):
        source.read(1)
    source.close()


def test_a_paced_replay_stops_between_two_posts(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text(
        '{"id": "1", "text": "$BTC", "created_at": "2026-01-01T10:00:00Z"}\n'
        '{"id": "2", "text": "$ETH", "created_at": "2026-01-01T11:00:00Z"}\n'
    )
    stop = StopSignal()
    source = replay_source(path, speed=1.0, stop=stop)
    assert [t.id for t in source.read(1)] == ["1"]
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert source.read(1) == []  # the hour-long gap ends at the stop
    assert time.monotonic() - started < 0.3 + BOUND_S
    source.close()
