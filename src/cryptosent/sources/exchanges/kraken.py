"""Kraken spot market data, websocket API v2 (``wss://ws.kraken.com/v2``, no key needed).

Subscribe request (sent on every connect), without the snapshot of past trades (after a
reconnect it would repeat trades already sent)::

    {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"],
     "snapshot": false}, "req_id": 1}

Kraken acknowledges each symbol (``{"method": "subscribe", "success": true, "result": {...}}``)
or refuses it (``{"method": "subscribe", "success": false, "error": "Currency pair not supported
FOO/USD", "symbol": "FOO/USD"}``), which becomes a one-line `ExchangeError`. Trades come as
``{"channel": "trade", "type": "update", "data": [{"symbol": "BTC/USD", "price": 95000.1, "qty":
0.01, "timestamp": "2026-01-01T12:00:00.123456Z", ...}]}``; tickers as ``{"channel": "ticker",
"data": [{"symbol": "BTC/USD", "last": 95000.1, ...}]}`` (no trade size; a ``timestamp`` when
Kraken sends one, else the time received). ``{"channel": "heartbeat"}`` arrives every second
once subscribed; when the feed is quiet anyway we send Kraken's ``{"method": "ping"}`` and count
its ``pong``. v2 writes Bitcoin as ``BTC``; v1's ``XBT`` (and ``XDG`` for Dogecoin) are mapped
too.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, ClassVar

import msgspec

from cryptosent.model import PriceTick
from cryptosent.sources.exchanges.base import (
    ExchangeError,
    ExchangeSource,
    exchange_text,
    parse_time,
)

DEFAULT_URL = "wss://ws.kraken.com/v2"
KRAKEN_NAMES = {"XBT": "BTC", "XDG": "DOGE"}
"""Kraken's own names for coins (v1 and REST), mapped on top of the catalogue's tickers."""
_CHANNELS = {"trades": "trade", "ticker": "ticker"}
_PING_IDS = itertools.count(2)  # 1 is the subscription's
_decoder = msgspec.json.Decoder(dict[str, Any])


class KrakenSource(ExchangeSource):
    """Trades or tickers of Kraken's USD pairs (websocket v2)."""

    name = "kraken"
    label: ClassVar[str] = "Kraken"
    default_url: ClassVar[str] = DEFAULT_URL
    url_setting: ClassVar[str] = "CRYPTOSENT_KRAKEN_URL"
    channels: ClassVar[tuple[str, ...]] = ("trades", "ticker")
    default_stall_timeout_s: ClassVar[float] = 15.0  # heartbeats come every second
    keepalive_s: ClassVar[float | None] = 5.0

    def symbols(self) -> list[str]:
        """The pairs subscribed to (``BTC/USD``)."""
        return [f"{coin}/USD" for coin in self.coins]

    def subscribe_messages(self) -> list[str]:
        """One subscribe request for the chosen channel."""
        params = {"channel": _CHANNELS[self.channel], "symbol": self.symbols(), "snapshot": False}
        if self.channel == "ticker":
            params["snapshot"] = True  # the current ticker at once, nothing repeated later
        return [json.dumps({"method": "subscribe", "params": params, "req_id": 1})]

    def keepalive_message(self) -> str | None:
        """Kraken's application-level ping (answered by a pong)."""
        return json.dumps({"method": "ping", "req_id": next(_PING_IDS)})

    def handle(self, message: str | bytes) -> list[PriceTick]:
        """Trades or tickers as ticks; refusals raise, the rest is counted."""
        try:
            event = _decoder.decode(message)
        except (msgspec.DecodeError, UnicodeDecodeError):
            self.stats.skipped_malformed += 1
            return []
        method = event.get("method")
        if method is not None:
            if method == "pong":
                self.stats.heartbeats += 1
                return []
            if event.get("success") is False or "error" in event:
                reason = exchange_text(event.get("error", "no reason given"))
                hint = " (check --coins)" if method == "subscribe" else ""
                raise ExchangeError(f"Kraken refused {method!r}: {reason}{hint}")
            self.stats.skipped_other += 1  # acknowledgements
            return []
        channel = event.get("channel")
        if channel == "heartbeat":
            self.stats.heartbeats += 1
            return []
        if channel != _CHANNELS[self.channel]:
            self.stats.skipped_other += 1  # status and other channels
            return []
        data = event.get("data")
        if not isinstance(data, list):
            self.stats.skipped_malformed += 1
            return []
        ticks: list[PriceTick] = []
        for item in data:
            if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
                self.stats.skipped_malformed += 1
                continue
            if channel == "trade":
                price, size = item.get("price"), item.get("qty")
            else:
                price, size = item.get("last"), None
            tick = self.tick(item["symbol"], price, size, parse_time(item.get("timestamp")))
            if tick is not None:
                ticks.append(tick)
        return ticks
