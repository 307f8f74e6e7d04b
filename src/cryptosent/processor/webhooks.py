"""Alerts that reach people: each new alert posted to the configured webhooks (Slack, Discord,
Telegram's bot API, a generic JSON endpoint), in the background.

One worker thread and one bounded queue per target, so a slow or hanging endpoint delays only
its own messages and never the processor: `submit` only enqueues (a full queue drops the alert
with a warning). Each delivery carries an idempotency key derived from the alert's identity
(coin, minute, kind: what makes it unique in the `alerts` table), sent as the `Idempotency-Key`
header (and in the generic JSON body), the same on every retry. Retries: connection errors,
timeouts and 5xx with exponential backoff; 429 waits for `Retry-After` (seconds, or Discord's
`retry_after` in the body); other 4xx give up at once (a wrong URL or token does not heal).
A token bucket per target keeps to `rate_per_minute`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
import orjson

from cryptosent.analysis.alerts import Alert
from cryptosent.config import Settings, mask_url_password
from cryptosent.runtime import Backoff

log = logging.getLogger(__name__)

Kind = Literal["slack", "discord", "telegram", "json"]
MAX_RETRY_AFTER: Final = 300.0
"""Longest wait a 429's Retry-After is honoured for; beyond it, the wait is capped."""
BURST: Final = 5.0
"""Sends a target may get at once before the rate applies."""
REMEMBERED: Final = 10_000
"""Idempotency keys remembered per target, so an alert handed twice is sent once."""


def idempotency_key(alert: Alert) -> str:
    """The alert's delivery key: the same for the same (coin, minute, kind), whatever retries."""
    identity = f"{alert.coin}|{alert.minute.isoformat()}|{alert.kind}"
    return "cryptosent-alert-" + hashlib.sha256(identity.encode()).hexdigest()[:32]


def alert_fields(alert: Alert) -> dict[str, object]:
    """The alert as JSON fields (the Kafka `alerts` message and the generic webhook's body)."""
    return {
        "coin": alert.coin, "minute": alert.minute.isoformat(), "kind": alert.kind,
        "value": alert.value, "baseline": alert.baseline, "message": alert.message,
    }  # fmt: skip


@dataclass(frozen=True)
class Target:
    """One webhook: its kind, URL (a secret: never logged whole) and, for Telegram, the chat."""

    kind: Kind
    url: str
    chat_id: str | None = None

    def body(self, alert: Alert, key: str) -> dict[str, Any]:
        """The request body this kind of endpoint expects."""
        text = f"cryptosent alert · {alert.message}"
        if self.kind == "slack":
            return {"text": text}
        if self.kind == "discord":
            return {"content": text[:2000]}
        if self.kind == "telegram":
            return {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
        return {"idempotency_key": key, **alert_fields(alert)}

    @property
    def where(self) -> str:
        """The target for log lines: kind and host, no path (webhook paths hold tokens)."""
        return f"{self.kind} webhook at {httpx.URL(self.url).host or mask_url_password(self.url)}"


def targets_from(settings: Settings) -> list[Target]:
    """The webhooks the settings configure (none by default)."""
    found: list[Target] = []
    for kind, secret in (
        ("slack", settings.alert_slack_webhook_url),
        ("discord", settings.alert_discord_webhook_url),
        ("json", settings.alert_webhook_url),
    ):
        if secret is not None and secret.get_secret_value():
            found.append(Target(kind, secret.get_secret_value()))  # type: ignore[arg-type]
    token = settings.alert_telegram_bot_token
    if token is not None and token.get_secret_value() and settings.alert_telegram_chat_id:
        base = settings.alert_telegram_api_url.rstrip("/")
        url = f"{base}/bot{token.get_secret_value()}/sendMessage"
        found.append(Target("telegram", url, settings.alert_telegram_chat_id))
    return found


@dataclass
class Outcome:
    """What happened to one alert at one target."""

    key: str
    delivered: bool
    attempts: int
    status: int | None
    reason: str


class _Bucket:
    """Token bucket: `rate_per_minute` sends, bursts of up to BURST."""

    def __init__(self, rate_per_minute: float, clock: Callable[[], float]) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = min(max(rate_per_minute, 1.0), BURST)
        self.tokens = self.capacity
        self.clock = clock
        self.last = clock()

    def wait_time(self) -> float:
        """Seconds until a token is free (0: take one now)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class _Worker:
    """One target's queue and thread."""

    def __init__(self, target: Target, owner: Webhooks) -> None:
        self.target = target
        self.owner = owner
        self.queue: queue.Queue[tuple[Alert, str] | None] = queue.Queue(owner.queue_size)
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.bucket = _Bucket(owner.rate_per_minute, time.monotonic)
        self.client = httpx.Client(timeout=owner.timeout_s, follow_redirects=False)
        self.thread = threading.Thread(target=self.run, name=f"webhook-{target.kind}", daemon=True)
        self.thread.start()

    def submit(self, alert: Alert, key: str) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = None
        while len(self.seen) > REMEMBERED:
            self.seen.popitem(last=False)
        try:
            self.queue.put_nowait((alert, key))
        except queue.Full:
            log.warning("%s: queue full, alert %s dropped", self.target.where, key)
            self.owner.record(Outcome(key, False, 0, None, "queue full"))
            return False
        return True

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None or self.owner.stopping.is_set():
                return
            alert, key = item
            outcome = self.deliver(alert, key)
            self.owner.record(outcome)
            if outcome.delivered:
                log.info("%s: alert %s delivered", self.target.where, key)
            else:
                log.warning("%s: alert %s not delivered: %s", self.target.where, key,
                            outcome.reason)  # fmt: skip

    def deliver(self, alert: Alert, key: str) -> Outcome:
        """Post until the endpoint accepts, refuses for good, or the attempts run out."""
        stop = self.owner.stopping
        backoff = Backoff.exponential(self.owner.backoff_s, self.owner.max_backoff_s)
        body = orjson.dumps(self.target.body(alert, key))
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        status: int | None = None
        reason = "stopped"
        for attempt in range(1, self.owner.attempts + 1):
            wait = self.bucket.wait_time()
            while wait > 0:
                if stop.wait(wait):
                    return Outcome(key, False, attempt - 1, status, "stopped")
                wait = self.bucket.wait_time()
            try:
                response = self.client.post(self.target.url, content=body, headers=headers)
            except httpx.HTTPError as exc:  # connection refused, timeout, reset
                status, reason = None, f"{type(exc).__name__}: {str(exc)[:200] or 'no answer'}"
                delay = backoff.next_delay()
            else:
                status = response.status_code
                if status < 300:
                    return Outcome(key, True, attempt, status, "ok")
                reason = f"HTTP {status}: {response.text[:200]}"
                if status == 429:
                    delay = retry_after(response) or backoff.next_delay()
                elif status >= 500 or status == 408:
                    delay = backoff.next_delay()
                else:
                    return Outcome(key, False, attempt, status, reason)
            if attempt == self.owner.attempts or stop.wait(delay):
                return Outcome(key, False, attempt, status, reason)
        return Outcome(key, False, self.owner.attempts, status, reason)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a 429 asks to wait: the `Retry-After` header (seconds), else Discord's
    `retry_after` in the JSON body; capped at MAX_RETRY_AFTER."""
    header = response.headers.get("Retry-After")
    value: object = None
    if header is not None:
        value = header
    else:
        try:
            value = orjson.loads(response.content).get("retry_after")
        except (orjson.JSONDecodeError, AttributeError):
            value = None
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Webhooks:
    """Background delivery of alerts to every configured target."""

    def __init__(
        self,
        targets: list[Target],
        *,
        timeout_s: float = 5.0,
        attempts: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        rate_per_minute: float = 20.0,
        queue_size: int = 1000,
    ) -> None:
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.rate_per_minute = rate_per_minute
        self.queue_size = queue_size
        self.stopping = threading.Event()
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self.workers = [_Worker(target, self) for target in targets]

    @classmethod
    def from_settings(cls, settings: Settings) -> Webhooks:
        """The webhooks of the settings (no threads when none is configured)."""
        return cls(
            targets_from(settings),
            timeout_s=settings.alert_webhook_timeout_seconds,
            attempts=settings.alert_webhook_attempts,
            rate_per_minute=settings.alert_webhook_rate_per_minute,
        )

    def __bool__(self) -> bool:
        return bool(self.workers)

    def submit(self, alert: Alert) -> int:
        """Queue the alert for every target (never blocks); how many queued it."""
        key = idempotency_key(alert)
        return sum(worker.submit(alert, key) for worker in self.workers)

    def record(self, outcome: Outcome) -> None:
        """Keep an outcome (tests and the summary read them)."""
        with self._lock:
            self.outcomes.append(outcome)
            del self.outcomes[:-1000]

    def close(self, grace_s: float = 0.5) -> None:
        """Stop: queued alerts not yet sent within `grace_s` are abandoned (logged); returns
        within about grace_s + 0.2 s whatever the endpoints do."""
        deadline = time.monotonic() + grace_s
        for worker in self.workers:
            with contextlib.suppress(queue.Full):  # a full queue: the stop below ends it
                worker.queue.put_nowait(None)
        for worker in self.workers:
            worker.thread.join(max(deadline - time.monotonic(), 0.0))
        self.stopping.set()  # waits end now; a request in flight ends at its timeout
        deadline = time.monotonic() + 0.2
        for worker in self.workers:
            worker.thread.join(max(deadline - time.monotonic(), 0.0))
            left = worker.queue.qsize()
            if left:
                log.warning("%s: %d alerts not delivered at stop", worker.target.where, left)
            if not worker.thread.is_alive():
                worker.client.close()
