"""A local stand-in for the exchanges' market-data websockets, and their wire formats.

`FakeExchange` listens on 127.0.0.1, records what each connection sends (the subscribe message,
pings), then plays that connection's `Session`: frames in the exchange's format, then a drop, a
close, or silence. The helpers below write frames as Coinbase Exchange, Kraken v2 and Binance
send them.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal

from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve


@dataclass
class Session:
    """What one connection does once the client's first message (its subscribe) arrived.

    ``end``: "drop" cuts the TCP connection without a close frame, "close" closes properly,
    "silent" sends nothing more (the client's stall timer must notice). ``status`` refuses the
    websocket handshake with that HTTP status instead. ``ping`` sends a ping frame first and
    records whether the client answered."""

    frames: list[str | dict[str, Any]] = field(default_factory=list)
    end: Literal["drop", "close", "silent"] = "silent"
    status: int | None = None
    ping: bool = False
    reply_to_pings: dict[str, Any] | None = None
    """Answer every application-level ping the client sends with this frame (Kraken's pong)."""


class FakeExchange:
    """A websocket server playing one `Session` per connection (silence once the script ends)."""

    def __init__(self, script: list[Session]) -> None:
        self.script = list(script)
        self.received: list[list[Any]] = []
        """Per connection, the JSON messages the client sent."""
        self.pongs: list[bool] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sessions: dict[int, Session] = {}
        self._server: Server = serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/ws"

    def __enter__(self) -> FakeExchange:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()

    def _next_session(self) -> Session:
        with self._lock:
            return self.script.pop(0) if self.script else Session()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        session = self._next_session()
        if session.status is not None:
            return connection.respond(HTTPStatus(session.status), "refused\n")
        self._sessions[id(connection)] = session
        return None

    def _handle(self, ws: ServerConnection) -> None:
        session = self._sessions.pop(id(ws))
        messages: list[Any] = []
        with self._lock:
            self.received.append(messages)
        try:
            messages.append(json.loads(ws.recv(timeout=5)))
            if session.ping:
                self.pongs.append(ws.ping().wait(2))
            for frame in session.frames:
                ws.send(frame if isinstance(frame, str) else json.dumps(frame))
            if session.end == "drop":
                ws.socket.shutdown(socket.SHUT_RDWR)
                ws.socket.close()
                return
            if session.end == "close":
                ws.close()
                return
            while not self._stop.is_set():  # silent: only listen
                try:
                    message = json.loads(ws.recv(timeout=0.1))
                except TimeoutError:
                    continue
                messages.append(message)
                if session.reply_to_pings is not None and message.get("method") == "ping":
                    ws.send(json.dumps({**session.reply_to_pings, "req_id": message["req_id"]}))
        except Exception:  # the client went away: the session is over
            return


class BlackHole:
    """A TCP server that accepts connections and never answers (a handshake that hangs)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"ws://{host}:{port}/ws"

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(1)
        for conn in self._held:
            conn.close()
        self._sock.close()


# --- wire formats ---------------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def iso(n: int) -> str:
    return f"2026-01-01T12:00:{n % 60:02d}.123456Z"


def coinbase_match(product: str, price: str, size: str, n: int = 0) -> dict[str, Any]:
    return {
        "type": "match", "trade_id": 1000 + n, "maker_order_id": "ac928c66-ca53-498f-9c13",
        "taker_order_id": "132fb6ae-456b-4654-b4e0", "side": "sell", "size": size,
        "price": price, "product_id": product, "sequence": 50 + n, "time": iso(n),
    }  # fmt: skip


def coinbase_ticker(product: str, price: str, last_size: str, n: int = 0) -> dict[str, Any]:
    return {
        "type": "ticker", "sequence": 37475248783 + n, "product_id": product, "price": price,
        "open_24h": "1310.79", "volume_24h": "404.8", "low_24h": "1285.26",
        "high_24h": "1339.51", "volume_30d": "1210.1", "best_bid": price,
        "best_bid_size": "0.08", "best_ask": price, "best_ask_size": "0.06", "side": "buy",
        "time": iso(n), "trade_id": 370843401 + n, "last_size": last_size,
    }  # fmt: skip


def coinbase_subscriptions(products: list[str], channel: str) -> dict[str, Any]:
    return {
        "type": "subscriptions",
        "channels": [
            {"name": channel, "product_ids": products},
            {"name": "heartbeat", "product_ids": products},
        ],
    }


def coinbase_heartbeat(product: str) -> dict[str, Any]:
    return {"type": "heartbeat", "sequence": 90, "last_trade_id": 20, "product_id": product,
            "time": iso(1)}  # fmt: skip


def kraken_trades(*trades: tuple[str, float | str, float | str, int]) -> dict[str, Any]:
    return {
        "channel": "trade",
        "type": "update",
        "data": [
            {"symbol": symbol, "side": "buy", "price": price, "qty": qty, "ord_type": "market",
             "trade_id": 4665800 + n, "timestamp": iso(n)}
            for symbol, price, qty, n in trades
        ],
    }  # fmt: skip


def kraken_ticker(symbol: str, last: float) -> dict[str, Any]:
    return {
        "channel": "ticker", "type": "update",
        "data": [{"symbol": symbol, "bid": last - 0.1, "bid_qty": 0.5, "ask": last + 0.1,
                  "ask_qty": 1.2, "last": last, "volume": 1000.5, "vwap": last, "low": last - 50,
                  "high": last + 50, "change": 10.0, "change_pct": 0.01}],
    }  # fmt: skip


def kraken_ack(symbol: str, channel: str = "trade") -> dict[str, Any]:
    return {
        "method": "subscribe", "req_id": 1, "success": True,
        "result": {"channel": channel, "snapshot": False, "symbol": symbol},
        "time_in": "2026-01-01T12:00:00.000000Z", "time_out": "2026-01-01T12:00:00.000100Z",
    }  # fmt: skip


KRAKEN_STATUS = {
    "channel": "status", "type": "update",
    "data": [{"api_version": "v2", "connection_id": 123, "system": "online", "version": "2.0.9"}],
}  # fmt: skip
KRAKEN_HEARTBEAT = {"channel": "heartbeat"}


def binance_trade(symbol: str, price: str, qty: str, n: int = 0) -> dict[str, Any]:
    millis = int(T0.timestamp() * 1000) + n
    return {
        "stream": f"{symbol.lower()}@trade",
        "data": {"e": "trade", "E": millis + 1, "s": symbol, "t": 12345 + n, "p": price,
                 "q": qty, "T": millis, "m": True, "M": True},
    }  # fmt: skip


BINANCE_ACK = {"result": None, "id": 1}
