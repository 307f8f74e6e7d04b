"""Alert webhooks against local fake HTTP servers: a 500 then a 200, a 429 with Retry-After, a
hanging server, a refusal, the rate limit, each kind's body, once per alert, a prompt stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from cryptosent.analysis.alerts import Alert
from cryptosent.config import Settings
from cryptosent.processor.webhooks import (
    Target,
    Webhooks,
    idempotency_key,
    targets_from,
)

ALERT = Alert(
    "BTC", datetime(2026, 1, 1, 12, 0, tzinfo=UTC), "volume_surge", 90.0, 10.0,
    "BTC: 90 tweets in a minute, 9.0x its 30-minute average of 10.0",
)  # fmt: skip


@dataclass
class Seen:
    at: float
    path: str
    key: str | None
    body: dict[str, object]


@dataclass
class FakeServer:
    """Answers each POST with the next scripted (status, headers, body); 'hang' never answers."""

    script: list[tuple[int | str, dict[str, str], bytes]]
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[tuple[ThreadingHTTPServer, FakeServer]] = []

    def start(*script: tuple[int | str, dict[str, str], bytes]) -> FakeServer:
        fake = FakeServer(list(script))

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = orjson.loads(self.rfile.read(length))
                fake.seen.append(
                    Seen(time.monotonic(), self.path, self.headers.get("Idempotency-Key"), body)
                )
                status, headers, payload = fake.script.pop(0) if fake.script else (200, {}, b"ok")
                if status == "hang":
                    fake.release.wait(30)
                    return
                self.send_response(int(status))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        fake.url = f"http://127.0.0.1:{server.server_address[1]}/hook/secret-token"
        servers.append((server, fake))
        return fake

    yield start
    for server, fake in servers:
        fake.release.set()
        server.shutdown()
        server.server_close()


def wait_for(hooks: Webhooks, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(hooks.outcomes) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(hooks.outcomes) >= count, hooks.outcomes


def test_a_500_then_a_200_is_delivered_once_with_one_key(serve) -> None:  # type: ignore[no-untyped-def]
    fake = serve((500, {}, b"oops"), (200, {}, b"ok"))
    hooks = Webhooks([Target("slack", fake.url)], backoff_s=0.1)
    try:
        assert hooks.submit(ALERT) == 1
        wait_for(hooks, 1)
    finally:
        hooks.close()
    (outcome,) = hooks.outcomes
    assert (outcome.delivered, outcome.attempts, outcome.status) == (True, 2, 200)
    assert [s.key for s in fake.seen] == [idempotency_key(ALERT)] * 2
    assert fake.seen[0].body == {"text": f"cryptosent alert · {ALERT.message}"}
    assert fake.seen[1].at - fake.seen[0].at >= 0.1


def test_a_429_waits_for_retry_after(serve) -> None:  # type: ignore[no-untyped-def]
    fake = serve((429, {"Retry-After": "1"}, b"slow down"), (204, {}, b""))
    hooks = Webhooks([Target("json", fake.url)], backoff_s=0.05)
    try:
        hooks.submit(ALERT)
        wait_for(hooks, 1)
    finally:
        hooks.close()
    assert hooks.outcomes[0].delivered and hooks.outcomes[0].attempts == 2
    assert 1.0 <= fake.seen[1].at - fake.seen[0].at < 3.0
    key = idempotency_key(ALERT)
    assert fake.seen[0].body == {
        "idempotency_key": key, "coin": "BTC", "minute": "2026-01-01T12:00:00+00:00",
        "kind": "volume_surge", "value": 90.0, "baseline": 10.0, "message": ALERT.message,
    }  # fmt: skip


def test_discord_429_reads_retry_after_from_the_body(serve) -> None:  # type: ignore[no-untyped-def]
    fake = serve((429, {}, b'{"message": "rate limited", "retry_after": 0.5}'), (204, {}, b""))
    hooks = Webhooks([Target("discord", fake.url)], backoff_s=5)
    try:
        hooks.submit(ALERT)
        wait_for(hooks, 1)
    finally:
        hooks.close()
    assert hooks.outcomes[0].delivered
    assert 0.5 <= fake.seen[1].at - fake.seen[0].at < 3.0  # not the 5 s backoff
    assert fake.seen[0].body == {"content": f"cryptosent alert · {ALERT.message}"}


def test_a_hanging_server_times_out_and_blocks_no_one(serve) -> None:  # type: ignore[no-untyped-def]
    hanging = serve(("hang", {}, b""), ("hang", {}, b""))
    fine = serve()
    hooks = Webhooks(
        [Target("slack", hanging.url), Target("discord", fine.url)],
        timeout_s=2.0, attempts=2, backoff_s=0.1,
    )  # fmt: skip
    try:
        started = time.monotonic()
        assert hooks.submit(ALERT) == 2
        assert time.monotonic() - started < 0.1  # submit only queues
        wait_for(hooks, 1)
        first = hooks.outcomes[0]
        assert first.delivered and time.monotonic() - started < 1.5  # not behind the hang
        wait_for(hooks, 2)
    finally:
        hooks.close()
    hung = hooks.outcomes[1]
    assert (hung.delivered, hung.attempts, hung.status) == (False, 2, None)
    assert hung.reason.startswith("ReadTimeout")
    assert len(hanging.seen) == 2


def test_a_refusal_is_not_retried(serve) -> None:  # type: ignore[no-untyped-def]
    fake = serve((404, {}, b"no such webhook"))
    hooks = Webhooks([Target("slack", fake.url)], backoff_s=0.05)
    try:
        hooks.submit(ALERT)
        wait_for(hooks, 1)
    finally:
        hooks.close()
    outcome = hooks.outcomes[0]
    assert (outcome.delivered, outcome.attempts, outcome.reason) == (
        False, 1, "HTTP 404: no such webhook"
    )  # fmt: skip
    assert len(fake.seen) == 1


def test_the_same_alert_twice_is_sent_once(serve) -> None:  # type: ignore[no-untyped-def]
    fake = serve()
    hooks = Webhooks([Target("slack", fake.url)])
    try:
        assert hooks.submit(ALERT) == 1
        assert hooks.submit(ALERT) == 0
        wait_for(hooks, 1)
        time.sleep(0.2)
    finally:
        hooks.close()
    assert len(fake.seen) == 1


def test_the_rate_limit_spaces_a_burst(serve) -> None:  # type: ignore[no-untyped-def]
    fake = serve()
    hooks = Webhooks([Target("slack", fake.url)], rate_per_minute=120)  # 2/s after 5 at once
    alerts = [
        Alert("BTC", ALERT.minute.replace(minute=m), "volume_surge", 1.0, 1.0, f"alert {m}")
        for m in range(7)
    ]
    try:
        started = time.monotonic()
        for alert in alerts:
            hooks.submit(alert)
        wait_for(hooks, 7)
    finally:
        hooks.close()
    offsets = [s.at - started for s in fake.seen]
    assert len(offsets) == 7
    assert offsets[4] < 0.45  # the burst, before the first token comes back
    assert 0.45 <= offsets[5] < 1.5 and 0.95 <= offsets[6] < 2.5


def test_close_ends_a_retrying_delivery_promptly(serve) -> None:  # type: ignore[no-untyped-def]
    fake = serve(*[(503, {}, b"down")] * 10)
    hooks = Webhooks([Target("slack", fake.url)], backoff_s=10, attempts=5)
    hooks.submit(ALERT)
    deadline = time.monotonic() + 5
    while not fake.seen and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    hooks.close(grace_s=0.5)
    assert time.monotonic() - started < 1.0
    assert hooks.outcomes[0].reason == "HTTP 503: down" and not hooks.outcomes[0].delivered


def test_targets_from_settings_and_telegram(serve) -> None:  # type: ignore[no-untyped-def]
    assert targets_from(Settings(_env_file=None)) == []  # type: ignore[call-arg]
    fake = serve()
    base = fake.url.rsplit("/hook", 1)[0]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        alert_slack_webhook_url="https://hooks.example/slack",  # type: ignore[arg-type]
        alert_telegram_bot_token="123:ABC",  # type: ignore[arg-type]
        alert_telegram_chat_id="-10042",
        alert_telegram_api_url=base,
    )
    targets = targets_from(settings)
    assert [t.kind for t in targets] == ["slack", "telegram"]
    assert targets[1].url == f"{base}/bot123:ABC/sendMessage"
    assert "ABC" not in targets[1].where and "secret" not in Target("slack", fake.url).where
    hooks = Webhooks([targets[1]])
    try:
        hooks.submit(ALERT)
        wait_for(hooks, 1)
    finally:
        hooks.close()
    assert fake.seen[0].path == "/bot123:ABC/sendMessage"
    assert fake.seen[0].body == {
        "chat_id": "-10042", "text": f"cryptosent alert · {ALERT.message}",
        "disable_web_page_preview": True,
    }  # fmt: skip


def test_close_does_not_wait_for_a_hanging_request(serve) -> None:  # type: ignore[no-untyped-def]
    fake = serve(("hang", {}, b""))
    hooks = Webhooks([Target("json", fake.url)], timeout_s=10)
    hooks.submit(ALERT)
    deadline = time.monotonic() + 5
    while not fake.seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.seen
    started = time.monotonic()
    hooks.close()
    assert time.monotonic() - started < 1.0
    assert hooks.outcomes == []  # still in flight on its daemon thread, abandoned
