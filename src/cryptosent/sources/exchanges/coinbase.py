"""Coinbase Exchange market data (``wss://ws-feed.exchange.coinbase.com``, no key needed).

Subscribe message (sent on every connect; Coinbase closes a connection that sends none within
5 s), one channel object per channel with its products, plus the ``heartbeat`` channel that sends
one message a second per product, so silence means a dead connection::

    {"type": "subscribe", "channels": [
        {"name": "matches", "product_ids": ["BTC-USD", "ETH-USD"]},
        {"name": "heartbeat", "product_ids": ["BTC-USD", "ETH-USD"]}]}

``matches`` sends every trade (``{"type": "match", "product_id": "BTC-USD", "price": "95000.01",
"size": "0.01", "time": "2026-01-01T12:00:00.123456Z", ...}``); ``ticker`` sends the last trade
with the book's top (``{"type": "ticker", "price": ..., "last_size": ..., "time": ...}``). The
``last_match`` sent right after subscribing repeats a trade from before the connection and is
skipped (after a reconnect it would be sent twice). ``{"type": "error", "message": "Failed to
subscribe", "reason": "FOO-USD is not a valid product"}`` is Coinbase refusing the request.
"""

from __future__ import annotations

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

DEFAULT_URL = "wss://ws-feed.exchange.coinbase.com"
_CHANNELS = {"trades": "matches", "ticker": "ticker"}
_decoder = msgspec.json.Decoder(dict[str, Any])


class CoinbaseSource(ExchangeSource):
    """Trades (``matches``) or tickers of Coinbase Exchange's USD products."""

    name = "coinbase"
    label: ClassVar[str] = "Coinbase"
    default_url: ClassVar[str] = DEFAULT_URL
    url_setting: ClassVar[str] = "CRYPTOSENT_COINBASE_URL"
    channels: ClassVar[tuple[str, ...]] = ("trades", "ticker")
    default_stall_timeout_s: ClassVar[float] = 15.0  # heartbeats come every second

    def products(self) -> list[str]:
        """The product ids subscribed to (``BTC-USD``)."""
        return [f"{coin}-USD" for coin in self.coins]

    def subscribe_messages(self) -> list[str]:
        """One subscribe message: the chosen channel and heartbeats for every product."""
        products = self.products()
        channels = [
            {"name": _CHANNELS[self.channel], "product_ids": products},
            {"name": "heartbeat", "product_ids": products},
        ]
        return [json.dumps({"type": "subscribe", "channels": channels})]

    def handle(self, message: str | bytes) -> list[PriceTick]:
        """A trade or ticker as a tick; errors raise, the rest is counted."""
        try:
            event = _decoder.decode(message)
        except (msgspec.DecodeError, UnicodeDecodeError):
            self.stats.skipped_malformed += 1
            return []
        kind = event.get("type")
        if kind == "heartbeat":
            self.stats.heartbeats += 1
            return []
        if kind == "error":
            what = exchange_text(event.get("message") or "error")
            reason = exchange_text(event.get("reason") or "no reason given")
            raise ExchangeError(
                f"Coinbase refused the subscription: {what}: {reason} (check --coins)"
            )
        if (kind == "match" and self.channel == "trades") or (
            kind == "ticker" and self.channel == "ticker"
        ):
            symbol = event.get("product_id")
            if not isinstance(symbol, str):
                self.stats.skipped_malformed += 1
                return []
            size = event.get("size") if kind == "match" else event.get("last_size")
            tick = self.tick(symbol, event.get("price"), size, parse_time(event.get("time")))
            return [tick] if tick is not None else []
        self.stats.skipped_other += 1  # subscriptions, last_match, other channels
        return []
