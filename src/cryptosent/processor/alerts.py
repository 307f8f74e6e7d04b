"""The alert job: every few seconds, evaluate the last closed minutes of `coin_minute` against
the alert rules (`analysis.alerts`), store new alerts in PostgreSQL and publish them to Kafka.

Every check looks at the last few closed minutes again, not only at minutes it has not seen: a
minute checked before its tweets were processed (a backlog after a restart, lag) is caught at a
later check; the (coin, minute, kind) key keeps each alert single.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from confluent_kafka import Producer

from cryptosent.analysis.alerts import MINUTE, Alert, AlertRules, CoinMinute, detect
from cryptosent.analysis.price_moves import with_price_move
from cryptosent.config import get_settings
from cryptosent.errors import TransientError
from cryptosent.kafka import flush_until
from cryptosent.processor.webhooks import Webhooks
from cryptosent.runtime import StopSignal, Unanswered, until_stopped
from cryptosent.sinks.database import Connection, Database

log = logging.getLogger(__name__)


def coin_minutes(conn: Connection, since: datetime, until: datetime) -> list[CoinMinute]:
    """coin_minute rows with since <= minute <= until (the crypto analyzer's sums)."""
    rows = conn.execute(
        "select coin, minute, tweets, compound_sum from coin_minute"
        " where minute >= %s and minute <= %s",
        [since, until],
    ).fetchall()
    return [
        CoinMinute(str(c), m, int(str(n)), float(str(s)))  # type: ignore[arg-type]
        for c, m, n, s in rows
    ]


def price_closes(
    conn: Connection, coins: set[str], since: datetime, until: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    """Each coin's closes of `price_minute` with since <= minute <= until, by minute."""
    rows = conn.execute(
        "select coin, minute, close from price_minute where coin = any(%s)"
        " and minute >= %s and minute <= %s order by coin, minute",
        [sorted(coins), since, until],
    ).fetchall()
    closes: dict[str, list[tuple[datetime, float]]] = {}
    for coin, minute, close in rows:
        closes.setdefault(str(coin), []).append((minute, float(str(close))))  # type: ignore[arg-type]
    return closes


def insert_alerts(conn: Connection, alerts: list[Alert]) -> list[Alert]:
    """Store alerts; those that were new (a (coin, minute, kind) is stored once)."""
    new: list[Alert] = []
    with conn.cursor() as cur:
        for alert in alerts:
            cur.execute(
                "insert into alerts (coin, minute, kind, value, baseline, message)"
                " values (%s, %s, %s, %s, %s, %s)"
                " on conflict (coin, minute, kind) do nothing returning id",
                [alert.coin, alert.minute, alert.kind, alert.value, alert.baseline,
                 alert.message],
            )  # fmt: skip
            if cur.fetchone() is not None:
                new.append(alert)
    return new


class AlertJob:
    """Spike alerts from the aggregates; see the module docstring."""

    name = "alerts"

    def __init__(
        self,
        database: Database,
        publisher: Producer | None,
        topic: str | None,
        rules: AlertRules,
        *,
        interval_s: float = 10.0,
        lookback_minutes: int = 5,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: StopSignal | None = None,
        webhooks: Webhooks | None = None,
        price_move_percent: float | None = None,
    ) -> None:
        self.database = database
        # the settings' webhooks (none by default): each new alert is queued, never awaited
        self.webhooks = webhooks if webhooks is not None else Webhooks.from_settings(get_settings())
        # > 0: an alert also needs the coin's close to move that many percent over the window
        self.price_move_percent = (
            get_settings().alert_price_move_percent
            if price_move_percent is None
            else price_move_percent
        )
        self.stop = stop
        self.publisher = publisher
        self.topic = topic
        self.rules = rules
        self.interval_s = interval_s
        self.lookback_minutes = lookback_minutes
        self._now = now
        self._last_run = -math.inf

    def due(self, now: float) -> bool:
        """Whether the interval passed since the last check."""
        return now - self._last_run >= self.interval_s

    def run(self) -> int:
        """Check, store and publish; the number of new alerts (0 when PostgreSQL is away)."""
        self._last_run = time.monotonic()
        current = self._now().replace(second=0, microsecond=0)
        last_closed = current - MINUTE
        first = last_closed - (self.lookback_minutes - 1) * MINUTE

        def check() -> list[Alert]:
            with self.database.transaction() as conn:
                rows = coin_minutes(conn, first - self.rules.window_minutes * MINUTE, last_closed)
                found: list[Alert] = []
                minute = first
                while minute <= last_closed:
                    found += detect(rows, minute, self.rules)
                    minute += MINUTE
                if found and self.price_move_percent > 0:
                    window = self.rules.window_minutes * MINUTE
                    closes = price_closes(
                        conn, {a.coin for a in found}, first - 3 * window, last_closed
                    )
                    found = with_price_move(found, closes, self.price_move_percent, window)
                return insert_alerts(conn, found)

        stop = self.stop
        try:
            if stop is None:
                new = check()
            else:  # a database that stopped answering must not hold a stopping processor
                new = until_stopped(
                    stop, check, what="alert check", stopped=lambda: Unanswered("alerts", stop)
                )
        except TransientError as err:
            log.warning("alert check skipped (%s: %s)", err.service, err.reason[:200])
            return 0
        for alert in new:
            log.info("alert: %s", alert.message)
            self.webhooks.submit(alert)
            if self.publisher is not None and self.topic:
                payload = {
                    "coin": alert.coin, "minute": alert.minute.isoformat(), "kind": alert.kind,
                    "value": alert.value, "baseline": alert.baseline, "message": alert.message,
                }  # fmt: skip
                self.publisher.produce(self.topic, orjson.dumps(payload), alert.coin.encode())
        if new and self.publisher is not None:
            flush_until(self.publisher, 10, self.stop)
        return len(new)

    def close(self) -> None:
        """Close the job's connection and its webhooks (half a second for what is queued)."""
        self.database.close()
        self.webhooks.close()
