"""The mock feed with coordinated shill campaigns mixed in, and their ground truth.

A campaign is what ``analysis.campaigns`` looks for: one template (``mock_campaigns.toml``)
posted in a burst by many sock-puppet accounts of little reach, each post with small edits
(another of the campaign's coins, other emoji, numbers, links and hashtags, an opener, a dropped
or stretched word, other case). Campaigns take ``share`` of the feed on average; each one runs
for a while at a density of its own, and they may overlap. The rest of the feed is the
``MockGenerator``'s, tweet for tweet what it makes on its own.

The ground truth comes out through ``on_label``: one ``Label`` per campaign post and per post of
the generator's spam bots (whose seven airdrop templates, posted by 150 bot accounts all the
time, are a standing campaign too); every other post is organic. Everything is deterministic
by seed, like the generator.
"""

from __future__ import annotations

import json
import math
import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

from cryptosent.analysis.coins import COINS
from cryptosent.model import Author, Metrics, Tweet, utc_now
from cryptosent.sources.base import Source
from cryptosent.sources.market import MarketScript
from cryptosent.sources.mock import MockGenerator

__all__ = ["SPAM_BOTS", "Campaign", "CampaignMock", "Label", "mock_feed", "truth_writer"]

SPAM_BOTS: Final = "spam-bots"
"""The campaign id of the generator's airdrop spam bots in the ground truth."""
_SNOWFLAKE_EPOCH_MS: Final = 1_288_834_974_657  # as in sources.mock
_WORKER_BITS: Final = 10
_MAX_DENSITY: Final = 0.6  # overlapping campaigns never crowd out the organic feed
_ALNUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_NO_CAMPAIGN_COINS: Final = frozenset({"USDT", "USDC", "WBTC", "BTC", "ETH"})


@dataclass(frozen=True, slots=True)
class Campaign:
    """One coordinated campaign: who posts what, when (in tweet indexes of the mixed feed)."""

    id: str
    coins: tuple[str, ...]
    lang: str
    template: str
    start_index: int
    posts: int
    """Posts planned."""
    density: float
    """Share of the feed the campaign takes while it runs."""
    accounts: int


class Label(NamedTuple):
    """Ground truth for one post that is not organic."""

    id: str
    kind: str
    """``campaign`` (a shill campaign's post) or ``spam`` (a spam bot's)."""
    campaign: str
    """The campaign's id (``SPAM_BOTS`` for the spam bots)."""


@dataclass(slots=True)
class _Running:
    campaign: Campaign
    authors: list[Author]
    left: int
    turn: int = 0


def _read_data(name: str) -> str:
    return resources.files("cryptosent.data").joinpath(name).read_text(encoding="utf-8")


def truth_writer(stream: IO[str]) -> Callable[[Label], None]:
    """An ``on_label`` that writes one JSON object a line: ``{"id", "kind", "campaign"}``."""

    def write(label: Label) -> None:
        stream.write(json.dumps(label._asdict()) + "\n")

    return write


class CampaignMock(Source):
    """``MockGenerator``'s feed with coordinated campaigns taking ``share`` of it."""

    name = "mock"

    def __init__(
        self,
        generator: MockGenerator,
        share: float,
        *,
        clock: Callable[[], datetime] = utc_now,
        on_label: Callable[[Label], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """Mix campaigns into ``generator``'s tweets; ``clock`` must be the generator's clock;
        ``on_label`` gets the ground truth, ``on_close`` is called by ``close``."""
        if not 0.0 <= share <= 0.5:
            raise ValueError(f"campaign share {share} is outside 0..0.5")
        self.generator = generator
        self.share = share
        self._clock = clock
        self._on_label = on_label
        self._on_close = on_close
        self._rng = random.Random(f"campaigns-{generator.seed}")
        self.campaigns: list[Campaign] = []
        """Campaigns started so far, in order."""
        self.count = 0
        """Tweets made so far (organic and campaign)."""

        data: dict[str, Any] = tomllib.loads(_read_data("mock_campaigns.toml"))
        burst, accounts, edits = data["burst"], data["accounts"], data["edits"]
        self._posts_range = (int(burst["posts_min"]), int(burst["posts_max"]))
        self._density_range = (float(burst["density_min"]), float(burst["density_max"]))
        self._per_account_max = int(burst["posts_per_account_max"])
        self._coins_max = int(burst["coins_max"])
        self._accounts_cfg = accounts
        self._edits = edits
        self._templates: dict[str, list[str]] = data["templates"]
        self._languages = sorted(self._templates)
        coins = [c for c in COINS.values() if c.ticker not in _NO_CAMPAIGN_COINS]
        self._coins = [(c.ticker, c.name) for c in coins]
        # smaller coins get shilled more than their share of the chatter
        self._coin_weights = [math.sqrt(c.weight) for c in coins]
        self._farm = [self._account() for _ in range(int(accounts["farm_size"]))]
        self._users = [f"@{a.username}" for a in self._farm[:50]]
        # the generator's spam bots, told apart by their handles (stem_name123 with a bot stem)
        self._bots = {a.id for a in generator._authors if a.username and _is_bot(a.username)}
        self._running: list[_Running] = []
        mean_posts = sum(self._posts_range) / 2
        self._mean_gap = mean_posts / share if share > 0 else math.inf
        self._next_start = self._gap() if share > 0 else math.inf
        self._id_base: int | None = None
        self._serial = 0

    # ------------------------------------------------------------------------------ accounts

    def _account(self) -> Author:
        rng, cfg = self._rng, self._accounts_cfg
        if rng.random() < cfg["bought_share"]:
            followers = rng.randint(cfg["bought_followers_min"], cfg["bought_followers_max"])
        else:
            followers = int(
                math.exp(rng.gauss(cfg["log_followers_mean"], cfg["log_followers_sigma"]))
            )
        handle = (
            f"{rng.choice(cfg['names'])}{rng.choice(('_', ''))}{rng.choice(cfg['stems'])}"
            f"{rng.randint(10, 99_999)}"
        )[:15]
        return Author(id=str(rng.randrange(10**17, 10**19)), username=handle, followers=followers,
                      verified=False)  # fmt: skip

    # ------------------------------------------------------------------------------ campaigns

    def _gap(self) -> int:
        return max(1, int(self._mean_gap * self._rng.uniform(0.2, 1.8)))

    def _start(self, index: int) -> None:
        rng = self._rng
        posts = rng.randint(*self._posts_range)
        density = round(rng.uniform(*self._density_range), 3)
        coin_count = rng.randint(1, self._coins_max) if rng.random() < 0.35 else 1
        tickers = tuple(dict.fromkeys(
            rng.choices(self._coins, weights=self._coin_weights, k=coin_count)
        ))  # fmt: skip
        lang = "en" if rng.random() < 0.85 else rng.choice(self._languages)
        template = rng.choice(self._templates[lang])
        per_account = rng.randint(1, self._per_account_max)
        n_accounts = max(2, math.ceil(posts / per_account))
        farm_share = self._accounts_cfg["farm_share"]
        authors = [
            rng.choice(self._farm) if rng.random() < farm_share else self._account()
            for _ in range(n_accounts)
        ]
        campaign = Campaign(
            id=f"campaign-{len(self.campaigns) + 1:04d}", coins=tuple(t for t, _ in tickers),
            lang=lang, template=template, start_index=index, posts=posts, density=density,
            accounts=len({a.id for a in authors}),
        )  # fmt: skip
        self.campaigns.append(campaign)
        self._running.append(_Running(campaign, authors, posts))

    def _render(self, running: _Running) -> str:
        rng, edits = self._rng, self._edits
        campaign = running.campaign
        ticker = rng.choice(campaign.coins)
        name = next((n for t, n in self._coins if t == ticker), ticker)
        emoji = edits["emoji"]

        def fill(slot: str) -> str:
            if slot == "cashtag":
                return "$" + ticker
            if slot == "name":
                return name
            if slot == "emoji":
                return "".join(rng.choice(emoji) for _ in range(rng.randint(0, 3)))
            if slot == "url":
                return "https://t.co/" + "".join(rng.choices(_ALNUM, k=10))
            if slot == "link":
                code = "".join(rng.choices(_ALNUM, k=6))
                link: str = rng.choice(edits["links"])
                return link.format(coin=ticker.lower(), n=rng.randint(100, 9_999), code=code)
            if slot == "pct":
                return f"{rng.choice((10, 20, 50, 100, 1000))}x"
            if slot == "n":
                return str(rng.randint(2, 48))
            if slot == "amount":
                return rng.choice(("100", "500", "1,000", "2k", "5,000"))
            if slot == "user":
                return rng.choice(self._users)
            if slot == "tag":
                return str(rng.choice(edits["closer_tags"]))
            raise ValueError(f"mock_campaigns.toml: unknown slot {{{slot}}}")

        parts = campaign.template.split("{")
        text = parts[0]
        for part in parts[1:]:
            slot, _, rest = part.partition("}")
            text += fill(slot) + rest
        words = text.split()
        # small edits: what a campaign does so that no two posts are byte-identical
        if rng.random() < edits["drop_word"] and len(words) > 8:
            words.pop(rng.randrange(1, len(words) - 1))
        if rng.random() < edits["stretch_word"]:
            i = rng.randrange(len(words))
            word = words[i]
            if word.isalpha():
                words[i] = word + word[-1] * rng.randint(1, 3)
        if rng.random() < edits["opener"]:
            words.insert(0, rng.choice(edits["openers"]))
        if rng.random() < edits["tags"]:
            words += rng.sample(edits["closer_tags"], rng.randint(1, 2))
        text = " ".join(words)
        roll = rng.random()
        if roll < edits["shout"]:
            text = text.upper()
        elif roll < edits["shout"] + edits["lower"]:
            text = text.lower()
        return text

    # ------------------------------------------------------------------------------ tweets

    def _id(self) -> str:
        if self._id_base is None:
            raise RuntimeError("campaign tweet ids are assigned only while generating")
        self._serial += 1
        return str(self._id_base + (self._serial << _WORKER_BITS))

    def _campaign_tweet(self, running: _Running, now: datetime) -> Tweet:
        rng = self._rng
        author = running.authors[running.turn % len(running.authors)]
        running.turn += 1
        running.left -= 1
        text = self._render(running)
        tweet = Tweet(
            id=self._id(), text=text, created_at=now,
            author=Author(author.id, author.username, author.followers, author.verified),
            lang=running.campaign.lang, source="mock",
            metrics=Metrics(rng.randint(0, 3), rng.randint(0, 2), 0, 0),
        )  # fmt: skip
        return tweet

    def read(self, n: int) -> list[Tweet]:
        """The next ``n`` tweets of the mixed feed (the source contract; never exhausted)."""
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the mock generator's clock must return timezone-aware datetimes")
        now = now.astimezone(UTC)
        if self._id_base is None:
            # the generator's id layout with other worker bits: ids never collide with its own
            millis = int(now.timestamp() * 1000) - _SNOWFLAKE_EPOCH_MS
            worker = random.Random(self.generator.seed).getrandbits(_WORKER_BITS) ^ 0x155
            self._id_base = (millis << 22) | worker
        rng = self._rng
        # campaign posts are made as their slot comes up (the same sequence whatever the batch
        # sizes); organic slots are filled by the generator afterwards, in order
        plan: list[tuple[Tweet, str] | None] = []
        for _ in range(n):
            index = self.count
            self.count += 1
            while index >= self._next_start:
                self._start(index)
                self._next_start = index + self._gap()
            chosen: _Running | None = None
            if self._running:
                roll = rng.random()
                total = sum(r.campaign.density for r in self._running)
                scale = _MAX_DENSITY / total if total > _MAX_DENSITY else 1.0
                for running in self._running:
                    density = running.campaign.density * scale
                    if roll < density:
                        chosen = running
                        break
                    roll -= density
            if chosen is None:
                plan.append(None)
                continue
            plan.append((self._campaign_tweet(chosen, now), chosen.campaign.id))
            if chosen.left <= 0:
                self._running.remove(chosen)
        organic = iter(self.generator.tweets(sum(1 for p in plan if p is None)))
        out: list[Tweet] = []
        label = self._on_label
        for planned in plan:
            if planned is not None:
                tweet, campaign = planned
                if label is not None:
                    label(Label(tweet.id, "campaign", campaign))
            else:
                tweet = next(organic)
                author = tweet.author
                if label is not None and author is not None and author.id in self._bots:
                    label(Label(tweet.id, "spam", SPAM_BOTS))
            out.append(tweet)
        return out

    def tweets(self, n: int) -> list[Tweet]:
        """The next ``n`` tweets (as ``MockGenerator.tweets``)."""
        return self.read(n)

    def close(self) -> None:
        """Close the generator (and whatever ``on_close`` closes)."""
        self.generator.close()
        if self._on_close is not None:
            self._on_close()


def _is_bot(username: str) -> bool:
    # the generator's spam bots are its only accounts named stem_name123 with a bot stem
    stem, sep, _ = username.partition("_")
    return bool(sep) and stem in _BOT_STEMS


def _bot_stems() -> frozenset[str]:
    vocab = tomllib.loads(_read_data("mock_vocab.toml"))
    return frozenset(vocab["handles"]["bot_stems"])


_BOT_STEMS: Final = _bot_stems()


def mock_feed(
    seed: int | None = None,
    share: float = 0.0,
    truth: Path | None = None,
    market: MarketScript | None = None,
) -> Source:
    """What ``cryptosent generate`` sends: the mock feed, with campaigns when ``share`` > 0, its
    ground truth written to ``truth`` as JSON Lines (see ``truth_writer``), its market events
    from ``market`` (the one ``cryptosent prices mock`` follows too; default `mock_market()`)."""
    generator = MockGenerator(seed=seed, market=market)
    if share <= 0 and truth is None:
        return generator
    if truth is None:
        return CampaignMock(generator, share)
    stream = truth.open("w", encoding="utf-8")
    return CampaignMock(generator, share, on_label=truth_writer(stream), on_close=stream.close)
