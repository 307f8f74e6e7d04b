"""Local stand-ins for X's filtered stream and Bluesky's Jetstream, speaking their wire formats.

Both listen on 127.0.0.1 on a free port, play a per-connection script, and record what clients
asked for, so tests can check reconnect behaviour without the network.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.sync.server import Server, ServerConnection, serve

# --- X API v2 ------------------------------------------------------------------------------------


@dataclass
class Status:
    """Answer a stream connection with this HTTP status and JSON body."""

    code: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stream:
    """Answer 200 and send ``chunks`` (chunked encoding), then end the response.

    ``end``: "drop" cuts the TCP connection without the final chunk (a network error for the
    client), "close" ends the body properly, "hang" sends nothing more until the server stops.
    """

    chunks: list[bytes]
    end: Literal["drop", "close", "hang"] = "hang"
    interval: float = 0.0
    """Seconds to wait between chunks (for stall-timer tests)."""


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


def x_tweet_line(n: int, *, author: str = "u1") -> bytes:
    """A real-shaped filtered-stream message for tweet number ``n``, with its line ending."""
    message = {
        "data": {
            "id": f"17{n:08d}",
            "text": f"$BTC tweet number {n}",
            "created_at": f"2024-01-01T10:00:{n % 60:02d}.000Z",
            "author_id": author,
            "lang": "en",
            "edit_history_tweet_ids": [f"17{n:08d}"],
            "public_metrics": {
                "retweet_count": 1,
                "reply_count": 2,
                "like_count": 3,
                "quote_count": 4,
                "bookmark_count": 0,
                "impression_count": 99,
            },
        },
        "includes": {
            "users": [
                {
                    "id": author,
                    "name": "User One",
                    "username": "user_one",
                    "verified": False,
                    "public_metrics": {"followers_count": 1234, "following_count": 5},
                }
            ]
        },
        "matching_rules": [{"id": "1", "tag": "cryptosent-1"}],
    }
    return json.dumps(message).encode() + b"\r\n"


KEEPALIVE = b"\r\n"


class FakeXServer:
    """Scripted X API: the stream rules endpoints and the filtered stream.

    Each stream connection takes the next entry of ``script``; once it is used up, connections
    hang (200, keep-alives only) until the server stops.
    """

    def __init__(
        self, script: list[Status | Stream], rules: list[dict[str, str]] | None = None
    ) -> None:
        self.script = list(script)
        self.requests: list[Recorded] = []
        self.stream_connections = 0
        self._ids = itertools.count(1000)
        self.rules: dict[str, dict[str, str]] = {}
        for rule in rules or []:
            self._add_rule(rule)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeXServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeXServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _add_rule(self, rule: dict[str, str]) -> dict[str, str]:
        stored = {"id": str(next(self._ids)), "value": rule["value"]}
        if "tag" in rule:
            stored["tag"] = rule["tag"]
        self.rules[stored["id"]] = stored
        return stored

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _record(self) -> Recorded:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                recorded = Recorded(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with server._lock:
                    server.requests.append(recorded)
                return recorded

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                recorded = self._record()
                if recorded.path == "/2/tweets/search/stream/rules":
                    rules = list(server.rules.values())
                    meta = {"sent": "2024-01-01T10:00:00.000Z", "result_count": len(rules)}
                    self._json(200, {"data": rules, "meta": meta} if rules else {"meta": meta})
                elif recorded.path == "/2/tweets/search/stream":
                    self._stream()
                else:
                    self._json(404, {"title": "Not Found Error"})

            def do_POST(self) -> None:
                recorded = self._record()
                if recorded.path != "/2/tweets/search/stream/rules":
                    self._json(404, {"title": "Not Found Error"})
                    return
                payload = json.loads(recorded.body)
                meta: dict[str, Any] = {"sent": "2024-01-01T10:00:00.000Z"}
                if "delete" in payload:
                    ids = payload["delete"]["ids"]
                    deleted = sum(server.rules.pop(i, None) is not None for i in ids)
                    meta["summary"] = {"deleted": deleted, "not_deleted": len(ids) - deleted}
                    self._json(200, {"meta": meta})
                    return
                created, errors = [], []
                for rule in payload["add"]:
                    if any(r["value"] == rule["value"] for r in server.rules.values()):
                        errors.append({"value": rule["value"], "title": "DuplicateRule"})
                    else:
                        created.append(server._add_rule(rule))
                meta["summary"] = {
                    "created": len(created),
                    "not_created": len(errors),
                    "valid": len(created),
                    "invalid": 0,
                }
                body: dict[str, Any] = {"data": created, "meta": meta}
                if errors:
                    body["errors"] = errors
                self._json(201, body)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _stream(self) -> None:
                with server._lock:
                    server.stream_connections += 1
                    step: Status | Stream = (
                        server.script.pop(0) if server.script else Stream([KEEPALIVE])
                    )
                if isinstance(step, Status):
                    self._json(step.code, step.body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in step.chunks:
                    self._chunk(chunk)
                    if step.interval:
                        time.sleep(step.interval)
                if step.end == "close":
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                elif step.end == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    server._stop.wait(30)
                    self.close_connection = True

        return Handler


# --- Bluesky Jetstream ---------------------------------------------------------------------------


def jetstream_post(
    time_us: int, rkey: str, text: str, *, did: str = "did:plc:alice", **record: Any
) -> dict[str, Any]:
    """A Jetstream commit event creating an app.bsky.feed.post record."""
    return {
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": f"3l{rkey}rev",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": {
                "$type": "app.bsky.feed.post",
                "createdAt": "2024-09-09T19:46:02.102Z",
                "langs": ["en"],
                "text": text,
                **record,
            },
            "cid": f"bafyrei{rkey}",
        },
    }


@dataclass
class Connection:
    """What one Jetstream connection does: send up to ``count`` events from the cursor, then
    "drop" (close abruptly, no close frame), "close" (normal close frame) or "hang"."""

    count: int
    end: Literal["drop", "close", "hang"] = "drop"


class FakeJetstream:
    """A Jetstream-like websocket server over a fixed event log.

    Like the real one, a ``cursor`` query parameter (unix microseconds) replays from the first
    event with ``time_us >= cursor``; without one the connection starts "live" at ``live_from``.
    Raw strings in the log are sent verbatim (for malformed-message tests) and replay like the
    event before them.
    """

    def __init__(self, events: list[dict[str, Any] | str], script: list[Connection]) -> None:
        self.events = events
        self.script = list(script)
        self.paths: list[str] = []
        self.live_from = 0
        self._stop = threading.Event()
        self._server: Server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/subscribe"

    def queries(self) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(path).query) for path in self.paths]

    def start(self) -> FakeJetstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()

    def __enter__(self) -> FakeJetstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_index(self, cursor: int | None) -> int:
        if cursor is None:
            return self.live_from
        last_time = 0
        for i, event in enumerate(self.events):
            if isinstance(event, dict):
                last_time = int(event["time_us"])
            if last_time >= cursor:
                return i
        return len(self.events)

    def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        query = parse_qs(urlsplit(ws.request.path).query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        step = self.script.pop(0) if self.script else Connection(count=0, end="hang")
        start = self._start_index(cursor)
        for event in self.events[start : start + step.count]:
            ws.send(event if isinstance(event, str) else json.dumps(event))
        if step.end == "drop":
            ws.socket.shutdown(socket.SHUT_RDWR)
            ws.socket.close()
        elif step.end == "close":
            ws.close()
        else:
            self._stop.wait(30)
