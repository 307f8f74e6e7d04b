"""Binance spot trades over combined streams (``wss://stream.binance.com:9443/stream``, no key).

Subscribe request (sent on every connect) for one ``<symbol>@trade`` stream per coin, quoted in
USDT (Binance.US, whose pairs are quoted in USD, works with ``--quote USD`` and its own URL)::

    {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@trade"], "id": 1}

answered by ``{"result": null, "id": 1}``. On ``/stream`` every event is wrapped:
``{"stream": "btcusdt@trade", "data": {"e": "trade", "s": "BTCUSDT", "p": "95000.01",
"q": "0.01", "T": 1767268800123, ...}}`` (``T``: trade time in milliseconds). Errors are
``{"code": 2, "msg": "Invalid request: ..."}`` (also ``{"error": {"code": .., "msg": ..}}``); a
``serverShutdown`` event announces a disconnect, so we reconnect at once. Binance pings every
20 s and drops clients that do not answer within a minute: the websocket library answers the
pings. A connection lasts at most 24 hours; the reconnect resubscribes. HTTP 451 means Binance
refuses this location (use Binance.US: ``CRYPTOSENT_BINANCE_URL``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from cryptosent.model import PriceTick
from cryptosent.sources.exchanges.base import (
    ExchangeError,
    ExchangeSource,
    Reconnect,
    exchange_text,
)

DEFAULT_URL = "wss://stream.binance.com:9443/stream"
US_URL = "wss://stream.binance.us:9443/stream"
_decoder = msgspec.json.Decoder(dict[str, Any])


def _trade_time(value: object) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**14:
        return datetime.fromtimestamp(value / 1000, UTC)
    return None


class BinanceSource(ExchangeSource):
    """Trades of Binance spot pairs quoted in USDT (or USD/USDC with ``quote``)."""

    name = "binance"
    label: ClassVar[str] = "Binance"
    default_url: ClassVar[str] = DEFAULT_URL
    url_setting: ClassVar[str] = "CRYPTOSENT_BINANCE_URL"
    channels: ClassVar[tuple[str, ...]] = ("trades",)
    default_stall_timeout_s: ClassVar[float] = 60.0  # only trades arrive; quiet pairs exist

    def __init__(self, *args: Any, quote: str = "USDT", **kwargs: Any) -> None:
        """``quote``: USDT (binance.com), USD (Binance.US) or USDC."""
        super().__init__(*args, **kwargs)
        if quote.upper() not in ("USDT", "USD", "USDC"):
            raise ExchangeError(f"Binance quote {quote!r}: use USDT, USD or USDC")
        self.quote = quote.upper()

    def streams(self) -> list[str]:
        """The stream names subscribed to (``btcusdt@trade``)."""
        return [f"{coin.lower()}{self.quote.lower()}@trade" for coin in self.coins]

    def subscribe_messages(self) -> list[str]:
        """One SUBSCRIBE request for every coin's trade stream."""
        return [json.dumps({"method": "SUBSCRIBE", "params": self.streams(), "id": 1})]

    def refused_message(self, status: int) -> str:
        """HTTP 451/403: Binance refuses this location; name the alternative."""
        if status in (403, 451):
            return (
                f"Binance refused the connection to {self.url} (HTTP {status}: not available "
                f"from this location); for Binance.US set CRYPTOSENT_BINANCE_URL={US_URL} "
                "and use --quote USD"
            )
        return super().refused_message(status)

    def handle(self, message: str | bytes) -> list[PriceTick]:
        """A trade event as a tick; errors raise, shutdown notices reconnect, the rest counts."""
        try:
            event = _decoder.decode(message)
        except (msgspec.DecodeError, UnicodeDecodeError):
            self.stats.skipped_malformed += 1
            return []
        error = event.get("error") if isinstance(event.get("error"), dict) else None
        if error is None and "code" in event and "msg" in event:
            error = event
        if error is not None:
            reason = exchange_text(error.get("msg", "no reason given"))
            raise ExchangeError(f"Binance refused the request: {reason} (code {error.get('code')})")
        if "result" in event and "id" in event:
            self.stats.skipped_other += 1  # the subscription's acknowledgement
            return []
        data = event.get("data", event)
        if not isinstance(data, dict):
            self.stats.skipped_malformed += 1
            return []
        kind = data.get("e")
        if kind == "serverShutdown":
            raise Reconnect("serverShutdown")
        if kind != "trade":
            self.stats.skipped_other += 1
            return []
        symbol = data.get("s")
        if not isinstance(symbol, str):
            self.stats.skipped_malformed += 1
            return []
        tick = self.tick(symbol, data.get("p"), data.get("q"), _trade_time(data.get("T")))
        return [tick] if tick is not None else []
