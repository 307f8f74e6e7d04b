"""What the exchange feeds share: one websocket session after another, each subscribed with the
exchange's documented message; reconnects with backoff; a stall timer; a stop that ends any state
(connecting, subscribed, waiting to reconnect) within a fraction of a second; and the error kinds.

A concrete exchange (``coinbase.py``, ``kraken.py``, ``binance.py``) says how to subscribe
(`subscribe_messages`) and how to read one message (`handle`): trades become `PriceTick`s, the
exchange's own error messages become `ExchangeError` (one line), a "reconnect now" notice raises
`Reconnect`, and everything else is counted.

The stop is the command's `runtime.StopSignal` (Ctrl-C, SIGTERM, ``--duration``), as for the
tweet feeds: a session reads frames in slices of `POLL_S` and looks at it between them, waits
before reconnecting with ``stop.wait``, and connects through `runtime.until_stopped`, so a stop
ends the feed within about a second whatever it is doing.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Final
from urllib.parse import urlsplit

from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from cryptosent.errors import CryptosentError, FatalError
from cryptosent.model import PriceTick, utc_now
from cryptosent.runtime import Backoff, StopSignal, until_stopped
from cryptosent.sources.base import Source
from cryptosent.sources.exchanges.pairs import PairMap

log = logging.getLogger(__name__)

POLL_S: Final = 0.2
"""Longest a session waits for a frame before it looks at the stop and the stall timer."""
MAX_MESSAGE_BYTES: Final = 2**20
# HTTP statuses on connect that retrying cannot fix (a wrong URL, a refused location)
_FATAL_STATUSES: Final = frozenset({400, 401, 403, 404, 410, 451})


class ExchangeError(FatalError):
    """The exchange refused us: a pair it does not list, a request it rejects, a connection
    from this location, a wrong URL. ``str()`` is one line with the exchange's own words."""


class Reconnect(CryptosentError):
    """The exchange announced it will close this connection (maintenance): reconnect now.

    Handled where raised: the session ends and the feed reconnects at once."""


class StoppedConnecting(CryptosentError):
    """The stop came while connecting. Handled where raised: the feed ends."""


@dataclass
class ExchangeStats:
    """Counters of one feed, over all its connections."""

    received: int = 0
    """Price ticks yielded."""
    messages: int = 0
    """Frames received."""
    heartbeats: int = 0
    """Heartbeats and pongs: messages that only say the connection is alive."""
    skipped_malformed: int = 0
    """Frames that are not the exchange's JSON, or trades with unreadable fields."""
    skipped_unknown_pair: int = 0
    """Trades of a pair that is not a coin of the catalogue quoted in USD/USDT/USDC."""
    skipped_other: int = 0
    """Acknowledgements, status messages and channels not used."""
    reconnects: int = 0
    stalls: int = 0
    """Connections given up because nothing arrived for ``stall_timeout_s``."""


def parse_number(value: object) -> float | None:
    """A price or size as exchanges send it (a JSON number or a decimal string), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (``2024-01-01T10:00:00.123456Z``) in UTC, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def exchange_text(value: object, limit: int = 200) -> str:
    """An exchange's own words (an error reason) as one short line."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _default_connect(url: str) -> ClientConnection:
    return connect(
        url, open_timeout=10, close_timeout=1, max_size=MAX_MESSAGE_BYTES, ping_interval=20
    )


class ExchangeSource(Source[PriceTick], ABC):
    """A live price feed over one exchange websocket; see the module docstring."""

    label: ClassVar[str]
    """The exchange's name in messages ("Coinbase")."""
    default_url: ClassVar[str]
    url_setting: ClassVar[str]
    """The environment variable that sets the URL (named in errors)."""
    channels: ClassVar[tuple[str, ...]]
    """The channels this feed can read, the default first."""
    default_stall_timeout_s: ClassVar[float] = 30.0
    keepalive_s: ClassVar[float | None] = None
    """Send `keepalive_message` after this many quiet seconds (exchanges that want pings)."""

    def __init__(
        self,
        coins: Sequence[str],
        *,
        pairs: PairMap,
        url: str | None = None,
        channel: str | None = None,
        stop: StopSignal | None = None,
        stall_timeout_s: float | None = None,
        backoff: Backoff | None = None,
        connect: Callable[[str], ClientConnection] = _default_connect,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        """``coins``: canonical tickers to subscribe to; ``stop`` (the command's) ends the feed
        in any state; ``sleep`` replaces the waits before reconnecting (tests); ``now`` stamps
        ticks that come without a time of their own."""
        self.url = url or self.default_url
        if urlsplit(self.url).scheme not in ("ws", "wss"):
            raise ExchangeError(
                f"{self.label} URL must start with ws:// or wss://, got {self.url!r} "
                f"(check {self.url_setting})"
            )
        unknown = [coin for coin in coins if not pairs.is_coin(coin)]
        if unknown:
            raise ExchangeError(
                f"unknown coin(s) {', '.join(unknown)}: use tickers of the coin catalogue "
                "(BTC, ETH, SOL, ...)"
            )
        if not coins:
            raise ExchangeError(f"no coins to subscribe to on {self.label}")
        self.coins: tuple[str, ...] = tuple(dict.fromkeys(coins))
        self.channel = channel or self.channels[0]
        if self.channel not in self.channels:
            choices = " or ".join(self.channels)
            raise ExchangeError(f"{self.label} has no channel {self.channel!r}: use {choices}")
        self.pairs = pairs
        self.stop = stop.child() if stop is not None else StopSignal()
        self.problem: str | None = None
        """Why the feed delivers nothing now (the last connection failure); None while it works."""
        self.stall_timeout_s = stall_timeout_s or self.default_stall_timeout_s
        self.backoff = backoff or Backoff.exponential(initial=1.0, maximum=60.0)
        self.stats = ExchangeStats()
        self._connect = connect
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._stream: Iterator[PriceTick] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, coins={list(self.coins)!r})"

    # -- what each exchange says ---------------------------------------------------------------

    def connect_url(self) -> str:
        """The URL of a new connection (the configured one unless an exchange adds to it)."""
        return self.url

    @abstractmethod
    def subscribe_messages(self) -> list[str]:
        """The exchange's documented subscribe message(s), sent on every (re)connect."""

    @abstractmethod
    def handle(self, message: str | bytes) -> list[PriceTick]:
        """The price ticks in one message (counting everything else in `stats`); raise
        `ExchangeError` for the exchange's own error messages, `Reconnect` for a shutdown notice."""

    def keepalive_message(self) -> str | None:
        """A message that asks the exchange to answer (an application-level ping), or None."""
        return None

    # -- the connection loop -------------------------------------------------------------------

    def _stopped(self) -> bool:
        return self.stop.is_set

    def _pause(self, seconds: float) -> bool:
        """Wait before reconnecting; whether a stop ended the wait."""
        if self._sleep is not None:
            self._sleep(seconds)
            return self.stop.is_set
        return self.stop.wait(seconds)

    def _open(self, url: str) -> ClientConnection | None:
        """Connect; None when a stop came first. The handshake runs through `until_stopped`, so
        a stop is honoured even against a server that never answers (a late connection is
        closed)."""
        try:
            return until_stopped(
                self.stop,
                lambda: self._connect(url),
                stopped=StoppedConnecting,
                discard=lambda ws: ws.close(),
                what=f"{self.name}-connect",
            )
        except StoppedConnecting:
            return None

    def _session(self) -> Generator[PriceTick, None, str | None]:
        """One connection: connect, subscribe, yield ticks; returns why it ended (None: stop)."""
        url = self.connect_url()
        try:
            ws = self._open(url)
        except InvalidURI as err:
            raise ExchangeError(f"bad {self.label} URL {self.url!r}: {err}") from None
        except InvalidStatus as err:
            status = err.response.status_code
            if status in _FATAL_STATUSES:
                raise ExchangeError(self.refused_message(status)) from None
            return f"HTTP {status} on connect"
        except (WebSocketException, OSError) as err:  # TimeoutError is an OSError
            return f"cannot connect ({type(err).__name__}: {err})"
        if ws is None:
            return None
        with ws:  # closed however the session ends (a stop, an error, the generator closed)
            try:
                log.info("%s: connected to %s", self.name, url)
                for message in self.subscribe_messages():
                    ws.send(message)
                last_frame = last_keepalive = self._clock()
                while True:
                    if self._stopped():
                        return None
                    try:
                        frame = ws.recv(timeout=POLL_S)
                    except TimeoutError:
                        now = self._clock()
                        if now - last_frame >= self.stall_timeout_s:
                            self.stats.stalls += 1
                            return f"nothing received for {now - last_frame:.1f} s"
                        quiet = now - max(last_frame, last_keepalive)
                        if self.keepalive_s is not None and quiet >= self.keepalive_s:
                            keepalive = self.keepalive_message()
                            if keepalive is not None:
                                ws.send(keepalive)
                            last_keepalive = now
                        continue
                    last_frame = self._clock()
                    self.stats.messages += 1
                    try:
                        ticks = self.handle(frame)
                    except Reconnect as notice:
                        return f"{self.label} asked to reconnect ({notice})"
                    if ticks:
                        self.backoff.reset()  # this connection delivers: start backoffs afresh
                        self.problem = None
                    for tick in ticks:
                        self.stats.received += 1
                        yield tick
            except (WebSocketException, OSError) as err:
                return f"connection lost ({type(err).__name__}: {err})"

    def refused_message(self, status: int) -> str:
        """The one line for an HTTP status on connect that retrying cannot fix."""
        return (
            f"{self.label} refused the connection to {self.url} (HTTP {status}): "
            f"check {self.url_setting}"
        )

    def iter_prices(self) -> Iterator[PriceTick]:
        """Price ticks until stopped (blocking), reconnecting and resubscribing by itself."""
        while not self._stopped():
            reason = yield from self._session()
            if reason is None or self._stopped():
                return
            delay = self.backoff.next_delay()
            self.stats.reconnects += 1
            self.problem = f"{self.label} at {self.url}: {reason}"
            log.warning("%s: %s; reconnecting in %.1f s", self.name, reason, delay)
            if self._pause(delay):
                return

    # -- the source contract -------------------------------------------------------------------

    def read(self, n: int) -> list[PriceTick]:
        """The next tick as soon as it exists; [] once stopped."""
        if self._stream is None:
            self._stream = self.iter_prices()
        return list(itertools.islice(self._stream, min(n, 1)))

    def close(self) -> None:
        """End the feed (its connection is closed)."""
        self.stop.set("closed")
        if self._stream is not None:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
            self._stream = None

    # -- helpers for the exchanges -------------------------------------------------------------

    def tick(
        self, symbol: str, price: object, size: object, ts: datetime | None
    ) -> PriceTick | None:
        """A tick from an exchange's fields, or None (counted) for an unknown pair or unreadable
        numbers. A trade without a time of its own is stamped now."""
        coin = self.pairs.coin_of(symbol)
        if coin is None:
            self.stats.skipped_unknown_pair += 1
            return None
        value = parse_number(price)
        amount = parse_number(size) if size is not None else None
        good_size = size is None or (amount is not None and math.isfinite(amount) and amount >= 0)
        if value is None or not (math.isfinite(value) and value > 0) or not good_size:
            self.stats.skipped_malformed += 1
            return None
        return PriceTick(
            coin=coin, ts=ts or self._now(), price=value, size=amount, source=self.name
        )
