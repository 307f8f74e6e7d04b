"""The alert job on a real PostgreSQL posts each new alert to a webhook once: a second check of
the same minutes stores nothing new and sends nothing more."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import psycopg
import pytest

from cryptosent.analysis.alerts import AlertRules
from cryptosent.processor.alerts import AlertJob
from cryptosent.processor.webhooks import Target, Webhooks
from cryptosent.sinks.database import Database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SURGE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_each_new_alert_reaches_the_webhook_once(database_url: str) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.headers.get("Idempotency-Key"), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    minutes = [SURGE - timedelta(minutes=i) for i in range(1, 31)]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "insert into coin_minute (coin, minute, tweets, positive, neutral, negative,"
            " compound_sum, vader_positive, vader_neutral, vader_negative, vader_compound_sum)"
            " select 'BTC', m, n, 0, n, 0, 0, 0, n, 0, 0"
            " from unnest(%s::timestamptz[], %s::bigint[]) as r(m, n)",
            [[*minutes, SURGE], [10] * 30 + [100]],
        )
    hooks = Webhooks([Target("json", f"http://127.0.0.1:{server.server_address[1]}/alerts")])
    job = AlertJob(
        Database(database_url, application_name="test-alert-webhooks"), None, None,
        AlertRules(), now=lambda: SURGE + timedelta(minutes=1, seconds=5), webhooks=hooks,
    )  # fmt: skip
    try:
        assert job.run() == 1
        deadline = time.monotonic() + 10
        while not hooks.outcomes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.run() == 0  # the same minutes again: stored once, sent once
        time.sleep(0.3)
    finally:
        job.close()
        server.shutdown()
        server.server_close()
    assert len(received) == 1
    key, body = received[0]
    assert body["idempotency_key"] == key
    assert (body["coin"], body["kind"], body["value"], body["baseline"]) == (
        "BTC", "volume_surge", 100.0, 10.0
    )  # fmt: skip
    assert body["minute"] == "2026-01-01T12:00:00+00:00"
    assert [o.delivered for o in hooks.outcomes] == [True]


def test_alerts_can_require_a_price_move(database_url: str) -> None:
    minutes = [SURGE - timedelta(minutes=i) for i in range(1, 31)]
    with psycopg.connect(database_url) as conn:
        for coin in ("BTC", "ETH"):
            conn.execute(
                "insert into coin_minute (coin, minute, tweets, positive, neutral, negative,"
                " compound_sum, vader_positive, vader_neutral, vader_negative,"
                " vader_compound_sum) select %s, m, n, 0, n, 0, 0, 0, n, 0, 0"
                " from unnest(%s::timestamptz[], %s::bigint[]) as r(m, n)",
                [coin, [*minutes, SURGE], [10] * 30 + [100]],
            )
        # BTC's close went from 100 to 104 over the 30 minutes, ETH's from 100 to 101
        extra = conn.execute(
            "select column_name, data_type from information_schema.columns where table_name ="
            " 'price_minute' and is_nullable = 'NO' and column_default is null and column_name"
            " not in ('coin', 'minute', 'open', 'high', 'low', 'close', 'volume', 'trades')"
        ).fetchall()
        names = "".join(f", {name}" for name, _ in extra)
        for coin, start, end in (("BTC", 100.0, 104.0), ("ETH", 100.0, 101.0)):
            for minute, close in ((SURGE - timedelta(minutes=30), start), (SURGE, end)):
                values = [minute if kind.startswith("timestamp") else 0 for _, kind in extra]
                conn.execute(
                    f"insert into price_minute (coin, minute, open, high, low, close, volume,"
                    f" trades{names}) values (%s, %s, %s, %s, %s, %s, 1, 1"
                    f"{', %s' * len(extra)})".encode(),
                    [coin, minute, close, close, close, close, *values],
                )
    job = AlertJob(
        Database(database_url, application_name="test-alert-price"), None, None, AlertRules(),
        now=lambda: SURGE + timedelta(minutes=1, seconds=5), webhooks=Webhooks([]),
        price_move_percent=2.0,
    )  # fmt: skip
    try:
        assert job.run() == 1
    finally:
        job.close()
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("select coin, kind, message from alerts").fetchall()
    assert stored == [
        ("BTC", "volume_surge",
         "BTC: 100 tweets in a minute, 10.0x its 30-minute average of 10.0;"
         " price +4.0 % in 30 min"),
    ]  # fmt: skip
