"""Mock prices: a seeded random walk per coin that the mock market's events move, so that posts
and prices of a demo tell one story, with a known lead per coin."""

from __future__ import annotations

import itertools
import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from cryptosent.ingest import to_message
from cryptosent.model import decode_price
from cryptosent.sources.market import MarketEvent, MarketScript, load_market_data
from cryptosent.sources.mock import MockGenerator, mock_market
from cryptosent.sources.mock_prices import MockPrices, round_price

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KNOWN = frozenset(mock_market().weights)


def stepping(step_s: float, start: datetime = START):  # type: ignore[no-untyped-def]
    moments = (start + timedelta(seconds=step_s * i) for i in itertools.count())
    return lambda: next(moments)


def test_ticks_follow_the_contract_and_are_deterministic() -> None:
    market = mock_market()
    first = MockPrices(market, seed=5, clock=stepping(1.0))
    second = MockPrices(market, seed=5, clock=stepping(1.0))
    a = [t for _ in range(300) for t in first.read(10)]
    b = first.read(0) + [t for _ in range(300) for t in second.ticks(10)]
    assert a == b
    for tick in a:
        key, value = to_message(tick)
        assert key == tick.coin.encode()
        assert decode_price(value, KNOWN) == tick
        assert tick.source == "mock" and tick.size is not None and tick.size > 0
    third = MockPrices(market, seed=6, clock=stepping(1.0))
    other = [t for _ in range(300) for t in third.read(10)]
    assert other != a
    assert first.count == 3000


def test_coins_prices_and_trade_mix() -> None:
    prices = MockPrices(mock_market(), coins=["BTC", "ETH", "PEPE", "BTC"], seed=1,
                        clock=stepping(1.0))  # fmt: skip
    assert prices.coins == ("BTC", "ETH", "PEPE")
    ticks = [t for _ in range(600) for t in prices.read(10)]
    by_coin = {c: [t.price for t in ticks if t.coin == c] for c in prices.coins}
    # drawn by weight (100, 62, 9), more during a coin's price move (at most 5 times)
    assert len(by_coin["BTC"]) + len(by_coin["ETH"]) > 3 * len(by_coin["PEPE"]) > 0
    # starting levels from mock_market.toml, a walk of the coin's volatility over ten minutes
    assert 80_000 < by_coin["BTC"][0] < 110_000 and 0.000005 < by_coin["PEPE"][0] < 0.00003
    assert len(set(by_coin["BTC"])) > 100
    assert round_price(95012.345678) == 95012.3 and round_price(0.0000123456789) == 0.0000123457


def test_a_coin_without_a_listed_price_gets_one_from_the_seed() -> None:
    market = MarketScript({"BTC": 10.0, "NEWCOIN": 1.0}, seed=2)
    ticks = MockPrices(market, seed=1, clock=stepping(1.0)).read(500)
    new = [t.price for t in ticks if t.coin == "NEWCOIN"]
    assert new and 0.005 < new[0] < 200


def single_event_market(lead_minutes: float) -> tuple[MarketScript, MarketEvent]:
    data = load_market_data()
    data["events"]["slot_minutes"] = 60  # events far apart: one move at a time
    market = MarketScript({"SOL": 1.0}, seed=4, sentiment_lead_minutes=lead_minutes, data=data)
    events = market.events_between(START, START + timedelta(hours=3))
    return market, next(e for e in events if e.start > START + timedelta(minutes=30))


def test_an_event_moves_the_price_by_its_move_over_its_price_window() -> None:
    market, event = single_event_market(10.0)
    clock = stepping(2.0)
    prices = MockPrices(market, coins=["SOL"], seed=3, clock=clock)
    ticks = [t for _ in range(3 * 1800) for t in prices.read(1)]

    def price_at(at: datetime) -> float:
        near = [t.price for t in ticks if abs((t.ts - at).total_seconds()) <= 30]
        return sum(near) / len(near)

    before = event.price_start - timedelta(minutes=1)
    after = event.price_start + timedelta(minutes=event.minutes + 1)
    assert [e for e in market.events_between(before, after) if e.price_start > before] == [event]
    change = math.log(price_at(after) / price_at(before))
    # SOL's daily volatility (0.05) is the reference, so the move is the event's own
    assert change == pytest.approx(event.move, abs=0.02)


def test_posts_and_prices_of_one_market_tell_one_story() -> None:
    # the tweet generator and the price feed, as two processes with the same market seed
    market_a, market_b = mock_market(seed=9), mock_market(seed=9)
    tweets = MockGenerator(seed=1, clock=stepping(6.0), market=market_a)
    prices = MockPrices(market_b, seed=2, clock=stepping(6.0))
    for _ in range(600):  # an hour
        tweets.tweets(20)
        prices.read(20)
    moved = {e.coin for e in market_b.events_between(START, START + timedelta(hours=1))}
    assert {e.coin for e in tweets.events} <= moved
    assert len(tweets.events) >= 8
    for event in tweets.events:
        lead = market_b.lead_minutes(event.coin)
        assert event.lead_minutes == lead
        assert lead in (10.0, -5.0)


def test_fast_enough_for_the_price_path() -> None:
    prices = MockPrices(mock_market(), seed=1)
    start = time.perf_counter()
    for _ in range(20):
        [to_message(t) for t in prices.read(1_000)]
    rate = 20_000 / (time.perf_counter() - start)
    assert rate > 20_000, f"{rate:,.0f} prices/s"


def minute_series(values: dict[datetime, float], minutes: list[datetime]) -> list[float]:
    return [values.get(m, 0.0) for m in minutes]


def correlation(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    return cov / math.sqrt(vx * vy) if vx and vy else 0.0


@pytest.mark.parametrize("leader", ["sentiment", "price"])
def test_mentions_and_price_moves_are_shifted_by_the_coins_lead(leader: str) -> None:
    # six hours of posts and prices; per minute, the coin's mentions against its absolute return
    market = mock_market(seed=9)
    hours = 6
    events = market.events_between(START, START + timedelta(hours=hours))
    candidates = [c for c in ("BTC", "ETH", "SOL", "XRP", "DOGE") if market.leader(c) == leader]
    coin = max(candidates, key=lambda c: sum(e.coin == c for e in events))
    tweets = MockGenerator(seed=1, clock=stepping(30.0), market=market)
    posts = [t for _ in range(hours * 120) for t in tweets.tweets(100)]
    prices = MockPrices(market, coins=[coin], seed=2, clock=stepping(5.0))
    ticks = [t for _ in range(hours * 720) for t in prices.read(1)]

    def minute(at: datetime) -> datetime:
        return at.replace(second=0, microsecond=0)

    mentions: dict[datetime, float] = {}
    name = {"BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana", "XRP": "XRP", "DOGE": "Dogecoin"}
    for post in posts:
        if f"${coin}" in post.text or name[coin] in post.text:
            mentions[minute(post.created_at)] = mentions.get(minute(post.created_at), 0.0) + 1
    close: dict[datetime, float] = {}
    for tick in ticks:
        close[minute(tick.ts)] = tick.price
    minutes = sorted(close)
    moves = {m: abs(math.log(close[m] / close[p])) for p, m in itertools.pairwise(minutes)}
    lead = market.lead_minutes(coin)
    by_lag = {}
    for lag in range(-15, 16):
        xs = [mentions.get(m, 0.0) for m in minutes[20:-20]]
        ys = [moves.get(m + timedelta(minutes=lag), 0.0) for m in minutes[20:-20]]
        by_lag[lag] = correlation(xs, ys)
    best = max(by_lag, key=lambda lag: by_lag[lag])
    assert abs(best - lead) <= 2, (coin, lead, by_lag)
    assert by_lag[best] > 0.3


def test_generate_and_prices_mock_follow_the_settings_market() -> None:
    from cryptosent.cli.prices import market_from
    from cryptosent.config import Settings
    from cryptosent.sources.mock_campaigns import mock_feed

    settings = Settings(
        mock_market_seed=5, mock_sentiment_lead_minutes=3, mock_price_lead_minutes=7
    )
    market = market_from(settings)
    assert (market.seed, market.sentiment_lead_minutes, market.price_lead_minutes) == (5, 3, 7)
    feed = mock_feed(1, 0.0, None, market=market)
    assert isinstance(feed, MockGenerator) and feed.market is market
    same = market_from(settings)
    window = (START, START + timedelta(hours=1))
    assert same.events_between(*window) == market.events_between(*window)
