"""The exchange price feeds against a local server speaking each exchange's wire format:
subscribe messages, trade mapping, reconnects with resubscription, malformed frames, unknown
pairs, silence, the exchanges' own errors, pings, and stopping in every state."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from exchange_servers import (
    BINANCE_ACK,
    KRAKEN_HEARTBEAT,
    KRAKEN_STATUS,
    T0,
    BlackHole,
    FakeExchange,
    Session,
    binance_trade,
    coinbase_heartbeat,
    coinbase_match,
    coinbase_subscriptions,
    coinbase_ticker,
    kraken_ack,
    kraken_ticker,
    kraken_trades,
)

from cryptosent.model import PriceTick
from cryptosent.relevance import coin_tickers
from cryptosent.runtime import Backoff, StopSignal
from cryptosent.sources.exchanges.base import ExchangeError, ExchangeSource
from cryptosent.sources.exchanges.binance import BinanceSource
from cryptosent.sources.exchanges.coinbase import CoinbaseSource
from cryptosent.sources.exchanges.kraken import KRAKEN_NAMES, KrakenSource
from cryptosent.sources.exchanges.pairs import PairMap

PAIRS = PairMap(coin_tickers(), KRAKEN_NAMES)


@dataclass
class Exchange:
    """How one exchange writes the frames the tests need."""

    cls: type[ExchangeSource]
    subscribe: Callable[[list[str]], dict[str, Any]]
    ack: dict[str, Any]
    trade: Callable[[str, str, str, int], dict[str, Any]]
    """A frame with one trade: (exchange symbol, price, size, n)."""
    symbol: Callable[[str], str]
    heartbeat: dict[str, Any] | None
    error: dict[str, Any]
    error_text: str


def _kraken_trade(symbol: str, price: str, size: str, n: int) -> dict[str, Any]:
    def number(text: str) -> float | str:  # Kraken sends numbers; keep a malformed one as is
        try:
            return float(text)
        except ValueError:
            return text

    return kraken_trades((symbol, number(price), number(size), n))


EXCHANGES = {
    "coinbase": Exchange(
        CoinbaseSource,
        subscribe=lambda coins: {
            "type": "subscribe",
            "channels": [
                {"name": "matches", "product_ids": [f"{c}-USD" for c in coins]},
                {"name": "heartbeat", "product_ids": [f"{c}-USD" for c in coins]},
            ],
        },
        ack=coinbase_subscriptions(["BTC-USD", "ETH-USD"], "matches"),
        trade=coinbase_match,
        symbol=lambda coin: f"{coin}-USD",
        heartbeat=coinbase_heartbeat("BTC-USD"),
        error={
            "type": "error",
            "message": "Failed to subscribe",
            "reason": "FOO-USD is not a valid product",
        },
        error_text="Coinbase refused the subscription: Failed to subscribe: FOO-USD is not a "
        "valid product (check --coins)",
    ),
    "kraken": Exchange(
        KrakenSource,
        subscribe=lambda coins: {
            "method": "subscribe",
            "params": {
                "channel": "trade",
                "symbol": [f"{c}/USD" for c in coins],
                "snapshot": False,
            },
            "req_id": 1,
        },
        ack=kraken_ack("BTC/USD"),
        trade=_kraken_trade,
        symbol=lambda coin: f"{coin}/USD",
        heartbeat=KRAKEN_HEARTBEAT,
        error={
            "error": "Currency pair not supported FOO/USD",
            "method": "subscribe",
            "req_id": 1,
            "success": False,
            "symbol": "FOO/USD",
            "time_in": "2026-01-01T12:00:00.000000Z",
            "time_out": "2026-01-01T12:00:00.000100Z",
        },
        error_text="Kraken refused 'subscribe': Currency pair not supported FOO/USD "
        "(check --coins)",
    ),
    "binance": Exchange(
        BinanceSource,
        subscribe=lambda coins: {
            "method": "SUBSCRIBE",
            "params": [f"{c.lower()}usdt@trade" for c in coins],
            "id": 1,
        },
        ack=BINANCE_ACK,
        trade=binance_trade,
        symbol=lambda coin: f"{coin}USDT",
        heartbeat=None,
        error={"error": {"code": 2, "msg": "Invalid request: unknown variant SUBSCRIB"}, "id": 1},
        error_text="Binance refused the request: Invalid request: unknown variant SUBSCRIB "
        "(code 2)",
    ),
}


@pytest.fixture(params=sorted(EXCHANGES))
def exchange(request: pytest.FixtureRequest) -> Exchange:
    return EXCHANGES[request.param]


def feed(exchange: Exchange, url: str, **kwargs: Any) -> tuple[ExchangeSource, list[float]]:
    sleeps: list[float] = []
    kwargs.setdefault("sleep", sleeps.append)
    source = exchange.cls(["BTC", "ETH"], pairs=PAIRS, url=url, **kwargs)
    return source, sleeps


def take(source: ExchangeSource, n: int, timeout: float = 10.0) -> list[PriceTick]:
    got: list[PriceTick] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} of {n} ticks"
        got += source.read(n - len(got))
    return got


def test_subscribes_with_the_documented_message_and_maps_trades(exchange: Exchange) -> None:
    frames: list[str | dict[str, Any]] = [exchange.ack]
    if exchange.heartbeat is not None:
        frames.append(exchange.heartbeat)
    frames += [
        exchange.trade(exchange.symbol("BTC"), "95000.5", "0.25", 1),
        exchange.trade(exchange.symbol("ETH"), "3300", "2", 2),
    ]
    with FakeExchange([Session(frames)]) as server:
        source, sleeps = feed(exchange, server.url)
        ticks = take(source, 2)
        source.close()
    assert server.received[0][0] == exchange.subscribe(["BTC", "ETH"])
    name = source.name
    assert [(t.coin, t.price, t.size, t.source) for t in ticks] == [
        ("BTC", 95000.5, 0.25, name),
        ("ETH", 3300.0, 2.0, name),
    ]
    if name == "binance":  # trade time in milliseconds
        assert ticks[0].ts == T0 + timedelta(microseconds=1000 - 123456 % 1000)
    else:
        assert ticks[0].ts.isoformat() == "2026-01-01T12:00:01.123456+00:00"
    assert source.stats.received == 2 and source.stats.reconnects == 0 and sleeps == []
    assert source.stats.heartbeats == (1 if exchange.heartbeat else 0)


def test_reconnects_with_backoff_and_resubscribes_after_a_drop(exchange: Exchange) -> None:
    first = Session([exchange.ack, exchange.trade(exchange.symbol("BTC"), "1.5", "1", 1)], "drop")
    refused = Session(status=503)
    closed = Session([], "close")
    last = Session([exchange.ack, exchange.trade(exchange.symbol("ETH"), "2.5", "1", 2)])
    with FakeExchange([first, refused, closed, last]) as server:
        source, sleeps = feed(exchange, server.url)
        ticks = take(source, 2)
        source.close()
    assert [t.price for t in ticks] == [1.5, 2.5]
    # every connection that got through subscribed again
    assert [messages[0] for messages in server.received] == [exchange.subscribe(["BTC", "ETH"])] * 3
    # 1 s after the first drop (the first tick reset the backoff), then doubling
    assert sleeps == [1.0, 2.0, 4.0]
    assert source.stats.reconnects == 3


def test_malformed_frames_and_unknown_pairs_are_skipped_and_counted(exchange: Exchange) -> None:
    trade = exchange.trade
    frames: list[str | dict[str, Any]] = [
        "not json at all",
        "[1, 2, 3]",
        trade(exchange.symbol("BTC"), "abc", "1", 1),  # unreadable price
        trade(exchange.symbol("BTC"), "-5", "1", 2),  # negative price
        trade(exchange.symbol("BTC"), "5", "-1", 3),  # negative size
        trade(exchange.symbol("FOO"), "5", "1", 4),  # a coin outside the catalogue
        trade(exchange.symbol("BTC").replace("USD", "EUR"), "5", "1", 5),  # not quoted in USD
        trade(exchange.symbol("SOL"), "180.25", "3", 6),
    ]
    with FakeExchange([Session(frames)]) as server:
        source, _ = feed(exchange, server.url)
        ticks = take(source, 1)
        source.close()
    assert [(t.coin, t.price) for t in ticks] == [("SOL", 180.25)]
    assert source.stats.skipped_unknown_pair == 2
    assert source.stats.skipped_malformed >= 4


def test_a_silent_server_is_left_and_reconnected(exchange: Exchange) -> None:
    script = [
        Session([exchange.ack, exchange.trade(exchange.symbol("BTC"), "10", "1", 1)], "silent"),
        Session([exchange.ack, exchange.trade(exchange.symbol("BTC"), "11", "1", 2)]),
    ]
    with FakeExchange(script) as server:
        source, sleeps = feed(exchange, server.url, stall_timeout_s=0.6)
        if isinstance(source, KrakenSource):
            source.keepalive_s = None  # a ping would be unanswered here anyway
        started = time.monotonic()
        ticks = take(source, 2)
        source.close()
    assert [t.price for t in ticks] == [10.0, 11.0]
    assert time.monotonic() - started >= 0.6
    assert source.stats.stalls == 1 and source.stats.reconnects == 1 and sleeps == [1.0]
    assert len(server.received) == 2


def test_the_exchanges_own_error_is_one_clear_line(exchange: Exchange) -> None:
    with FakeExchange([Session([exchange.error])]) as server:
        source, sleeps = feed(exchange, server.url)
        with pytest.raises(ExchangeError) as caught:
            take(source, 1)
        source.close()
    assert str(caught.value) == exchange.error_text
    assert sleeps == []  # not retried: a user must change something


@pytest.mark.parametrize("status", [400, 403, 404, 451])
def test_a_refused_handshake_is_fatal(exchange: Exchange, status: int) -> None:
    with FakeExchange([Session(status=status)]) as server:
        source, sleeps = feed(exchange, server.url)
        with pytest.raises(ExchangeError, match=f"HTTP {status}") as caught:
            take(source, 1)
    assert "\n" not in str(caught.value) and sleeps == []
    if exchange.cls is BinanceSource and status in (403, 451):
        assert "CRYPTOSENT_BINANCE_URL=wss://stream.binance.us:9443/stream" in str(caught.value)
    else:
        assert exchange.cls.url_setting in str(caught.value)


def _stops_quickly(source: ExchangeSource, stop: StopSignal, after: float = 0.3) -> float:
    result: list[list[PriceTick]] = []
    reader = threading.Thread(target=lambda: result.append(source.read(1)), daemon=True)
    reader.start()
    time.sleep(after)
    stopped = time.monotonic()
    stop.set("SIGINT")
    reader.join(5)
    took = time.monotonic() - stopped
    assert not reader.is_alive() and result == [[]]
    return took


@pytest.mark.parametrize("state", ["subscribed", "waiting to reconnect", "connecting"])
def test_a_stop_ends_the_feed_within_two_seconds_in_every_state(
    exchange: Exchange, state: str
) -> None:
    stop = StopSignal()
    if state == "connecting":
        with BlackHole() as hole:
            source = exchange.cls(["BTC"], pairs=PAIRS, url=hole.url, stop=stop)
            took = _stops_quickly(source, stop)
    else:
        end = "silent" if state == "subscribed" else "drop"
        with FakeExchange([Session([exchange.ack], end)]) as server:
            source = exchange.cls(
                ["BTC"], pairs=PAIRS, url=server.url, stop=stop, stall_timeout_s=60,
                backoff=Backoff.exponential(30.0, 60.0),
            )  # fmt: skip
            took = _stops_quickly(source, stop, after=0.5)
            if state == "waiting to reconnect":
                assert source.stats.reconnects == 1
    assert took < 2.0
    source.close()


def test_the_duration_deadline_ends_a_silent_feed() -> None:
    with FakeExchange([Session([kraken_ack("BTC/USD")])]) as server:
        stop = StopSignal(0.5)
        source = KrakenSource(["BTC"], pairs=PAIRS, url=server.url, stop=stop)
        started = time.monotonic()
        assert source.read(1) == []
        assert time.monotonic() - started < 1.5
        assert stop.reason == "duration"


# --- what only one exchange does ----------------------------------------------------------------


def test_coinbase_ticker_channel_and_last_match() -> None:
    last_match = {**coinbase_match("BTC-USD", "94000", "1", 0), "type": "last_match"}
    frames: list[str | dict[str, Any]] = [
        coinbase_subscriptions(["BTC-USD"], "ticker"),
        last_match,  # a trade from before the connection: skipped
        coinbase_match("BTC-USD", "94001", "1", 1),  # not the channel asked for
        coinbase_ticker("BTC-USD", "95000.01", "0.002", 2),
    ]
    with FakeExchange([Session(frames)]) as server:
        source = CoinbaseSource(["BTC"], pairs=PAIRS, url=server.url, channel="ticker")
        ticks = take(source, 1)
        source.close()
    assert server.received[0][0]["channels"][0] == {"name": "ticker", "product_ids": ["BTC-USD"]}
    assert [(t.coin, t.price, t.size) for t in ticks] == [("BTC", 95000.01, 0.002)]
    assert source.stats.skipped_other == 3


def test_kraken_batches_aliases_ticker_and_ping() -> None:
    frames: list[str | dict[str, Any]] = [
        KRAKEN_STATUS,
        kraken_ack("BTC/USD"),
        KRAKEN_HEARTBEAT,
        kraken_trades(("XBT/USD", 95000.0, 0.1, 1), ("ETH/USDT", 3300.0, 1.0, 2),
                      ("XDG/USD", 0.3, 100.0, 3), ("BTC/EUR", 88000.0, 1.0, 4)),
    ]  # fmt: skip
    pong = {"method": "pong", "time_in": "2026-01-01T12:00:00Z", "time_out": "2026-01-01T12:00:00Z"}
    with FakeExchange([Session(frames, reply_to_pings=pong)]) as server:
        stop = StopSignal(2.0)  # a quiet second after the trades: we ping, Kraken answers
        source = KrakenSource(["BTC", "ETH", "DOGE"], pairs=PAIRS, url=server.url, stop=stop)
        source.keepalive_s = 0.3
        ticks = take(source, 3)
        assert source.read(1) == []  # until the deadline
        source.close()
    assert source.stats.heartbeats >= 2  # the heartbeat, then the pong of our ping
    assert [(t.coin, t.price) for t in ticks] == [("BTC", 95000.0), ("ETH", 3300.0),
                                                 ("DOGE", 0.3)]  # fmt: skip
    assert source.stats.skipped_unknown_pair == 1
    assert any(m.get("method") == "ping" for m in server.received[0][1:])

    with FakeExchange([Session([kraken_ticker("SOL/USD", 181.5)])]) as server:
        source = KrakenSource(["SOL"], pairs=PAIRS, url=server.url, channel="ticker",
                              now=lambda: T0)  # fmt: skip
        ticks = take(source, 1)
        source.close()
    assert server.received[0][0]["params"] == {"channel": "ticker", "symbol": ["SOL/USD"],
                                               "snapshot": True}  # fmt: skip
    assert ticks == [PriceTick(coin="SOL", ts=T0, price=181.5, size=None, source="kraken")]


def test_binance_answers_pings_and_reconnects_on_server_shutdown() -> None:
    shutdown = {"stream": "btcusdt@trade", "data": {"e": "serverShutdown", "E": 1767268800000}}
    script = [
        Session([BINANCE_ACK, binance_trade("BTCUSDT", "95000", "0.5", 1), shutdown], ping=True),
        Session([BINANCE_ACK, binance_trade("ETHUSDT", "3300", "1", 2)]),
    ]
    with FakeExchange(script) as server:
        sleeps: list[float] = []
        source = BinanceSource(["BTC", "ETH"], pairs=PAIRS, url=server.url, sleep=sleeps.append)
        ticks = take(source, 2)
        source.close()
    assert server.pongs == [True]
    assert [t.coin for t in ticks] == ["BTC", "ETH"] and source.stats.reconnects == 1
    us = BinanceSource(["BTC"], pairs=PAIRS, url="wss://stream.binance.us:9443/stream", quote="USD")
    assert json.loads(us.subscribe_messages()[0])["params"] == ["btcusd@trade"]


def test_configuration_errors_are_one_line() -> None:
    with pytest.raises(ExchangeError, match="unknown coin\\(s\\) DOGGO: use tickers"):
        CoinbaseSource(["BTC", "DOGGO"], pairs=PAIRS)
    with pytest.raises(ExchangeError, match=r"must start with ws:// or wss://.*KRAKEN_URL"):
        KrakenSource(["BTC"], pairs=PAIRS, url="https://ws.kraken.com/v2")
    with pytest.raises(ExchangeError, match="Binance has no channel 'ticker': use trades"):
        BinanceSource(["BTC"], pairs=PAIRS, channel="ticker")
    with pytest.raises(ExchangeError, match="no coins"):
        CoinbaseSource([], pairs=PAIRS)
