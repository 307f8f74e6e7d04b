"""The mock market: one seeded schedule of market events on the wall clock, shared by the mock
tweet generator (`sources.mock`) and the mock price feed (`sources.mock_prices`).

Each event (a pump, a crash, good or bad news) gives one coin two signals of the same shape: a
burst of one-sided posts and a price move. For about half of the coins (drawn from the seed) the
posts come first and the price follows ``sentiment_lead_minutes`` later; for the others the price
moves first and the posts follow ``price_lead_minutes`` later. The demo's lead-lag analysis then
has a known answer per coin.

The schedule is a pure function of the seed and the time: one event starts in every slot of
``slot_minutes`` on a grid fixed to the Unix epoch, so the tweet generator and the price feed,
running as two processes with the same market seed, see the same events without talking to each
other. Parameters live in ``data/mock_market.toml``.

Shape: a signal of an event of ``minutes`` length has intensity ``sin(pi * u)`` at fraction ``u``
of its window. The share of posts about the event follows that intensity, and so does the price's
rate of change: the price has moved ``(1 - cos(pi * u)) / 2`` of the event's move at ``u``. Posts
at time t and price returns at t + lead are therefore proportional.
"""

from __future__ import annotations

import bisect
import math
import random
import tomllib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Final, Literal

__all__ = ["MarketEvent", "MarketScript", "load_market_data"]

Leader = Literal["sentiment", "price"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SLOT_CACHE: Final = 4096


def load_market_data() -> dict[str, Any]:
    """The parameters of the mock market (``data/mock_market.toml``)."""
    text = resources.files("cryptosent.data").joinpath("mock_market.toml").read_text("utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """One event of the mock market: a coin's burst of posts and its price move."""

    coin: str
    kind: str
    """``pump``, ``crash``, ``good_news``, ``bad_news`` (the kinds of ``mock_market.toml``)."""
    posts: str
    """Which posts the tweet generator writes about it (a section of ``mock_templates.txt``)."""
    sentiment_start: datetime
    price_start: datetime
    minutes: float
    """Length of each signal's window."""
    move: float
    """Log-return of the price over the whole event (0.1 = +10.5 %)."""
    share: float
    """Peak share of all posts that are about the event."""

    @property
    def lead_minutes(self) -> float:
        """How long the posts start before the price move (negative: the price moves first)."""
        return (self.price_start - self.sentiment_start).total_seconds() / 60.0

    @property
    def start(self) -> datetime:
        """When the first of the two signals starts."""
        return min(self.sentiment_start, self.price_start)

    @property
    def end(self) -> datetime:
        """When the last of the two signals ends."""
        return max(self.sentiment_start, self.price_start) + timedelta(minutes=self.minutes)

    def _fraction(self, start: datetime, at: datetime) -> float:
        return (at - start).total_seconds() / (self.minutes * 60.0)

    def post_share(self, at: datetime) -> float:
        """Share of all posts at ``at`` that are about this event (0 outside its window)."""
        u = self._fraction(self.sentiment_start, at)
        return self.share * math.sin(math.pi * u) if 0.0 < u < 1.0 else 0.0

    def price_intensity(self, at: datetime) -> float:
        """How hard the price is moving at ``at``, 0..1 (trading volume rises with it)."""
        u = self._fraction(self.price_start, at)
        return math.sin(math.pi * u) if 0.0 < u < 1.0 else 0.0

    def price_progress(self, at: datetime) -> float:
        """Fraction of the move done by ``at``: 0 before the price window, 1 after it."""
        u = self._fraction(self.price_start, at)
        if u <= 0.0:
            return 0.0
        if u >= 1.0:
            return 1.0
        return (1.0 - math.cos(math.pi * u)) / 2.0

    def __contains__(self, at: object) -> bool:
        """Whether a moment falls inside either signal's window."""
        return isinstance(at, datetime) and self.start <= at < self.end


def _pair(value: Any) -> tuple[float, float]:
    low, high = value
    return float(low), float(high)


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    weight: float
    move: tuple[float, float]
    posts: str


class MarketScript:
    """The seeded schedule of market events; see the module docstring.

    ``coins`` maps each coin that can have events to its weight (how much it is talked about);
    a coin is drawn for an event with probability proportional to the square root of its weight,
    so smaller coins get their moments too.
    """

    def __init__(
        self,
        coins: Mapping[str, float],
        *,
        seed: int,
        sentiment_lead_minutes: float = 10.0,
        price_lead_minutes: float = 5.0,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        if sentiment_lead_minutes < 0 or price_lead_minutes < 0:
            raise ValueError("lead minutes must be >= 0")
        params = data if data is not None else load_market_data()
        events = params["events"]
        self.seed = seed
        self.sentiment_lead_minutes = float(sentiment_lead_minutes)
        self.price_lead_minutes = float(price_lead_minutes)
        self.slot_minutes = float(events["slot_minutes"])
        self._minutes = _pair(events["minutes"])
        self._share = _pair(events["share"])
        self.weights: dict[str, float] = dict(coins)
        """Every coin given and its weight (mock trades are drawn by it too)."""
        excluded = set(events.get("no_events", ()))
        eventful = sorted((c, w) for c, w in coins.items() if c not in excluded and w > 0)
        if not eventful:
            raise ValueError("the mock market needs at least one coin that can have events")
        self.coins: tuple[str, ...] = tuple(c for c, _ in eventful)
        self._cumulative: list[float] = []
        total = 0.0
        for _, weight in eventful:
            total += math.sqrt(weight)
            self._cumulative.append(total)
        self._kinds = [
            _Kind(name, float(k["weight"]), _pair(k["move"]), str(k["posts"]))
            for name, k in events["kinds"].items()
        ]
        self._kind_cumulative: list[float] = []
        total = 0.0
        for kind in self._kinds:
            total += kind.weight
            self._kind_cumulative.append(total)
        led = float(events["sentiment_led_share"])
        self._leaders: dict[str, Leader] = {
            coin: "sentiment" if random.Random(f"{seed}:leader:{coin}").random() < led else "price"
            for coin in self.coins
        }
        self._slots: OrderedDict[int, MarketEvent] = OrderedDict()
        # how far back an event that touches a moment can have started its slot
        longest = self._minutes[1] + max(self.sentiment_lead_minutes, self.price_lead_minutes)
        self._lookback_slots = math.ceil(longest / self.slot_minutes) + 1

    def leader(self, coin: str) -> Leader:
        """Which signal of ``coin``'s events comes first (KeyError for a coin without events)."""
        return self._leaders[coin]

    def lead_minutes(self, coin: str) -> float:
        """Minutes by which ``coin``'s posts lead its price (negative: the price leads)."""
        if self._leaders[coin] == "sentiment":
            return self.sentiment_lead_minutes
        return -self.price_lead_minutes

    def _slot_index(self, at: datetime) -> int:
        return math.floor((at - _EPOCH).total_seconds() / (self.slot_minutes * 60.0))

    def event_of_slot(self, slot: int) -> MarketEvent:
        """The event that starts in slot number ``slot`` (slots count from the Unix epoch)."""
        cached = self._slots.get(slot)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:slot:{slot}")
        begin = _EPOCH + timedelta(minutes=(slot + rng.random()) * self.slot_minutes)
        coin = self.coins[bisect.bisect_left(self._cumulative, rng.random() * self._cumulative[-1])]
        draw = rng.random() * self._kind_cumulative[-1]
        kind = self._kinds[bisect.bisect_left(self._kind_cumulative, draw)]
        minutes = rng.uniform(*self._minutes)
        move = math.log1p(rng.uniform(*kind.move) / 100.0)
        lead = timedelta(minutes=self.lead_minutes(coin))
        sentiment_start = begin + max(-lead, timedelta(0))
        price_start = begin + max(lead, timedelta(0))
        event = MarketEvent(
            coin=coin,
            kind=kind.name,
            posts=kind.posts,
            sentiment_start=sentiment_start,
            price_start=price_start,
            minutes=round(minutes, 3),
            move=move,
            share=round(rng.uniform(*self._share), 3),
        )
        self._slots[slot] = event
        if len(self._slots) > _SLOT_CACHE:
            self._slots.popitem(last=False)
        return event

    def events_between(self, start: datetime, end: datetime) -> list[MarketEvent]:
        """Events with a signal inside ``[start, end]``, in the order they start."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("the mock market needs timezone-aware datetimes")
        first = self._slot_index(start) - self._lookback_slots
        last = self._slot_index(end)
        found = [self.event_of_slot(slot) for slot in range(first, last + 1)]
        return [e for e in found if e.end > start and e.start <= end]

    def active(self, at: datetime) -> list[MarketEvent]:
        """Events with a signal running at ``at``."""
        return [e for e in self.events_between(at, at) if at in e]
