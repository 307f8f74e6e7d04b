"""The mock market: a seeded schedule of events on the wall clock, the same for every process
with the same seed, with a known lead of posts over prices (or of prices over posts) per coin."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from cryptosent.sources.market import MarketEvent, MarketScript
from cryptosent.sources.mock import mock_market

DAY = datetime(2026, 3, 2, tzinfo=UTC)
COINS = {"BTC": 100.0, "ETH": 60.0, "SOL": 30.0, "DOGE": 20.0, "PEPE": 9.0, "USDT": 10.0}


def test_same_seed_same_events_in_any_process_and_order() -> None:
    first = MarketScript(COINS, seed=7)
    second = MarketScript(dict(reversed(COINS.items())), seed=7)
    later = DAY + timedelta(hours=5)
    # asked in another order, over other windows: the events of a moment are the same
    assert second.events_between(later, later + timedelta(hours=1)) == first.events_between(
        later, later + timedelta(hours=1)
    )
    assert first.events_between(DAY, DAY + timedelta(hours=2)) == second.events_between(
        DAY, DAY + timedelta(hours=2)
    )
    other = MarketScript(COINS, seed=8)
    assert other.events_between(DAY, DAY + timedelta(hours=2)) != first.events_between(
        DAY, DAY + timedelta(hours=2)
    )


def test_one_event_per_slot_with_the_configured_shape() -> None:
    market = MarketScript(COINS, seed=1, sentiment_lead_minutes=12, price_lead_minutes=4)
    events = [market.event_of_slot(slot) for slot in range(10_000, 10_000 + 2_000)]
    starts = [e.start for e in events]
    assert starts == sorted(starts)  # one per slot, inside its slot
    assert {e.coin for e in events} == {"BTC", "ETH", "SOL", "DOGE", "PEPE"}  # never USDT
    counts = Counter(e.coin for e in events)
    # drawn by the square root of the weight: BTC about sqrt(100/9) = 3.3 times PEPE
    assert 2.3 < counts["BTC"] / counts["PEPE"] < 4.5
    assert set(Counter(e.kind for e in events)) == {"pump", "crash", "good_news", "bad_news"}
    for event in events:
        assert 6.0 <= event.minutes <= 15.0 and 0.05 <= event.share <= 0.2
        assert event.lead_minutes == market.lead_minutes(event.coin)
        up = event.kind in ("pump", "good_news")
        assert (event.move > 0) == up
        assert event.start == min(event.sentiment_start, event.price_start)
        assert event.end == max(event.sentiment_start, event.price_start) + timedelta(
            minutes=event.minutes
        )


def test_each_coin_has_one_leader_and_its_lead() -> None:
    market = MarketScript(COINS, seed=3, sentiment_lead_minutes=10, price_lead_minutes=5)
    leads = {coin: market.lead_minutes(coin) for coin in market.coins}
    assert set(leads.values()) <= {10.0, -5.0}
    assert {market.leader(c) for c in market.coins} <= {"sentiment", "price"}
    for coin, lead in leads.items():
        assert (lead > 0) == (market.leader(coin) == "sentiment")
    # over the whole catalogue, about half the coins have posts first
    catalogue = mock_market(seed=3)
    share = sum(catalogue.leader(c) == "sentiment" for c in catalogue.coins) / len(catalogue.coins)
    assert 0.3 < share < 0.7
    with pytest.raises(KeyError):
        market.leader("USDT")


def test_signals_have_the_same_shape_shifted_by_the_lead() -> None:
    event = MarketEvent(
        coin="SOL", kind="pump", posts="pump",
        sentiment_start=DAY, price_start=DAY + timedelta(minutes=10), minutes=10.0,
        move=math.log(1.1), share=0.2,
    )  # fmt: skip
    assert event.lead_minutes == 10.0
    assert event.post_share(DAY - timedelta(seconds=1)) == 0.0
    assert event.post_share(DAY + timedelta(minutes=5)) == pytest.approx(0.2)
    assert event.price_progress(DAY + timedelta(minutes=9)) == 0.0
    assert event.price_progress(DAY + timedelta(minutes=15)) == pytest.approx(0.5)
    assert event.price_progress(DAY + timedelta(minutes=21)) == 1.0
    for minute in range(1, 10):
        at = DAY + timedelta(minutes=minute)
        # the rate of the price move at t + lead is proportional to the share of posts at t
        later = at + timedelta(minutes=10)
        step = timedelta(seconds=1)
        rate = (event.price_progress(later + step) - event.price_progress(later - step)) / 2
        assert rate == pytest.approx(event.post_share(at) / 0.2 * math.pi / 1200, rel=1e-3)
        assert event.price_intensity(later) == pytest.approx(event.post_share(at) / 0.2)
    assert DAY + timedelta(minutes=19) in event and DAY + timedelta(minutes=20) not in event


def test_active_and_between() -> None:
    market = MarketScript(COINS, seed=11)
    window = market.events_between(DAY, DAY + timedelta(hours=1))
    assert len(window) >= 11  # one per 5-minute slot, plus those still running at the start
    for minute in range(0, 60, 3):
        at = DAY + timedelta(minutes=minute)
        assert set(market.active(at)) == {e for e in window if at in e}
    with pytest.raises(ValueError, match="timezone-aware"):
        market.events_between(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="at least one coin"):
        MarketScript({"USDT": 1.0}, seed=1)
