"""Mock trades whose prices belong to the mock tweets: a seeded random walk per coin, moved by the
events of the mock market (`sources.market`) that also move the mock posts.

Each coin starts at its price in ``data/mock_market.toml`` (coins without one get a price drawn
from the seed) and walks log-normally with its daily volatility; every market event adds its move
over its price window, in the same shape as the burst of posts it causes (see `sources.market`).
For coins whose posts lead, the price follows the posts by the market's sentiment lead; for the
others the price moves first. Trades are drawn by the coins' weights (more during a coin's price
move), sized log-normally around a median in USD, and stamped with the clock: the same seed, market
and clock readings give the same trades.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final

from cryptosent.model import PriceTick, utc_now
from cryptosent.sources.base import Source
from cryptosent.sources.market import MarketEvent, MarketScript, load_market_data

__all__ = ["MockPrices", "round_price"]

SOURCE: Final = "mock"
_SECONDS_PER_DAY: Final = 86_400.0
_VOLUME_BOOST: Final = 4.0
"""Trades of a coin during its price move, at the move's peak, relative to normal."""
_REFERENCE_VOLATILITY: Final = 0.05
"""The moves of ``mock_market.toml`` are for a coin of this daily volatility; a calmer coin
(BTC) moves less in the same event, a wilder one (a memecoin) more."""


def round_price(price: float) -> float:
    """A price to 6 significant digits, as an exchange would quote it."""
    return float(f"{price:.6g}")


class MockPrices(Source[PriceTick]):
    """Mock trades of the given coins, moved by the mock market; see the module docstring."""

    name = SOURCE

    def __init__(
        self,
        market: MarketScript,
        *,
        coins: Sequence[str] | None = None,
        weights: Mapping[str, float] | None = None,
        seed: int | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``coins`` defaults to every coin of the market; ``weights`` (how often each coin
        trades) default to the market's, 1 for a coin without one."""
        data = load_market_data()["prices"]
        listed: dict[str, list[float]] = dict(data["coins"])
        chosen = list(coins) if coins is not None else list(market.weights)
        if not chosen:
            raise ValueError("mock prices need at least one coin")
        self.market = market
        self.coins: tuple[str, ...] = tuple(dict.fromkeys(chosen))
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(63)
        self._rng = random.Random(self.seed)
        self._clock = clock
        self._median_usd = float(data["median_trade_usd"])
        default_vol = float(data["default_volatility"])
        self._start_price: dict[str, float] = {}
        self._vol_per_sqrt_s: dict[str, float] = {}
        self._move_scale: dict[str, float] = {}
        for coin in self.coins:
            if coin in listed:
                price, vol = (float(x) for x in listed[coin])
            else:
                draw = random.Random(f"{market.seed}:price:{coin}")
                price, vol = 10 ** draw.uniform(-2.0, 2.0), default_vol
            self._start_price[coin] = price
            self._vol_per_sqrt_s[coin] = vol / math.sqrt(_SECONDS_PER_DAY)
            self._move_scale[coin] = vol / _REFERENCE_VOLATILITY
        given = weights if weights is not None else market.weights
        self._weights = [max(float(given.get(coin, 1.0)), 1e-6) for coin in self.coins]
        self._cumulative: list[float] = []
        total = 0.0
        for weight in self._weights:
            total += weight
            self._cumulative.append(total)
        self._index = {coin: i for i, coin in enumerate(self.coins)}
        # random walk state: log-price noise and when each coin last traded
        self._noise = dict.fromkeys(self.coins, 0.0)
        self._last_trade: dict[str, datetime] = {}
        # market events: the move settled by events that are over, and the running ones with
        # the progress they had when this feed started (a feed sees only moves after its start)
        self._started: datetime | None = None
        self._last_batch: datetime | None = None
        self._settled = dict.fromkeys(self.coins, 0.0)
        self._running: dict[MarketEvent, float] = {}
        self._finished: set[MarketEvent] = set()
        self._level = dict.fromkeys(self.coins, 0.0)
        self._boost: list[tuple[float, str]] = []  # extra trade weight of moving coins
        self._boost_total = 0.0
        self.count = 0
        """Trades made so far."""

    def price_now(self, coin: str) -> float:
        """The coin's price as of the last batch (before per-trade noise of the next one)."""
        return self._start_price[coin] * math.exp(self._noise[coin] + self._level[coin])

    def _advance_market(self, now: datetime) -> None:
        if self._started is None:
            self._started = now
        since = self._last_batch if self._last_batch is not None else now
        self._last_batch = now
        start = min(since, now)
        self._finished = {event for event in self._finished if event.end > start}
        for event in self.market.events_between(start, now):
            known = event in self._running or event in self._finished
            if event.coin in self._index and not known:
                self._running[event] = event.price_progress(self._started)
        boost: list[tuple[float, str]] = []
        for event, base in list(self._running.items()):
            if event.price_progress(now) >= 1.0:
                self._settled[event.coin] += self._move(event) * (1.0 - base)
                self._finished.add(event)
                del self._running[event]
        level = dict(self._settled)
        for event, base in self._running.items():
            progress = event.price_progress(now)
            level[event.coin] += self._move(event) * (progress - base)
            intensity = event.price_intensity(now)
            if intensity > 0.0:
                weight = self._weights[self._index[event.coin]]
                boost.append((weight * _VOLUME_BOOST * intensity, event.coin))
        self._level = level
        self._boost = boost
        self._boost_total = sum(weight for weight, _ in boost)

    def _move(self, event: MarketEvent) -> float:
        return event.move * self._move_scale[event.coin]

    def _draw_coin(self) -> str:
        rand = self._rng.random
        total = self._cumulative[-1]
        roll = rand() * (total + self._boost_total)
        if roll >= total:
            roll -= total
            for weight, coin in self._boost:
                if roll < weight:
                    return coin
                roll -= weight
            return self._boost[-1][1]
        return self.coins[bisect.bisect_left(self._cumulative, roll)]

    def ticks(self, n: int) -> list[PriceTick]:
        """The next ``n`` trades, all stamped with one reading of the clock."""
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the mock price feed's clock must return timezone-aware datetimes")
        self._advance_market(now)
        gauss = self._rng.gauss
        out: list[PriceTick] = []
        for _ in range(n):
            coin = self._draw_coin()
            last = self._last_trade.get(coin)
            seconds = max((now - last).total_seconds(), 0.0) if last is not None else 0.0
            # at least a tick's worth of noise, so trades within one batch differ
            step = self._vol_per_sqrt_s[coin] * math.sqrt(max(seconds, 0.05))
            self._noise[coin] += step * gauss(0.0, 1.0)
            self._last_trade[coin] = now
            price = self.price_now(coin)
            size = self._median_usd * math.exp(gauss(0.0, 1.2)) / price
            out.append(
                PriceTick(
                    coin=coin,
                    ts=now,
                    price=round_price(price),
                    size=float(f"{size:.6g}"),
                    source=SOURCE,
                )
            )
        self.count += n
        return out

    def read(self, n: int) -> list[PriceTick]:
        """The next ``n`` trades (the source contract; the feed is never exhausted)."""
        return self.ticks(n)
