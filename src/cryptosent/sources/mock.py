"""Mock crypto-Twitter: realistic, deterministic, and fast enough to saturate Kafka.

Tweets look like the real feed: coins drawn by popularity from ``coins.csv``, cashtags, hashtags,
plain names, slang, emoji (with variation selectors and skin tones), @mentions, t.co links,
retweets, replies, posts in several languages, airdrop spam bots, heavy-tailed follower counts,
and *market events*: for a while one coin gets extra volume and one-sided posts (a pump, a
crash, good or bad news). The events come from the mock market (`sources.market`) on the wall
clock, the same schedule the mock price feed (`sources.mock_prices`) moves its prices by, so the
posts and the prices of a demo tell one story: for some coins the posts lead the price, for others
the price leads the posts. Templates and vocabulary are data files (``mock_templates.txt``,
``mock_vocab.toml``, ``mock_market.toml``).

Faker runs only in the constructor (the author pool); each tweet costs a few ``random()`` calls
and one string join. The same seed and clock give the same tweets, byte for byte (once encoded
by ``ingest.to_message``). The coin catalogue is the generator's vocabulary (which coins exist,
how popular, how people write them), read from the same data file as the analysis uses.
"""

from __future__ import annotations

import bisect
import math
import random
import re
import tomllib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final, NamedTuple, TypeVar

from cryptosent.analysis.coins import COINS, Coin
from cryptosent.model import Author, Metrics, Tweet, utc_now
from cryptosent.sources.base import Source
from cryptosent.sources.market import MarketEvent, MarketScript

__all__ = ["MarketEvent", "MockGenerator", "mock_market"]

SOURCE: Final = "mock"
# Twitter's snowflake epoch (2010-11-04T01:42:54.657Z): ids look like real 19-digit tweet ids.
_SNOWFLAKE_EPOCH_MS: Final = 1_288_834_974_657
_WORKER_BITS: Final = 10

DEFAULT_MARKET_SEED: Final = 2026
"""The mock market's seed when none is given (the setting CRYPTOSENT_MOCK_MARKET_SEED)."""
_MAX_EVENT_SHARE: Final = 0.8  # overlapping events never crowd out all other chatter

_HUMANS: Final = 3_000
_BOTS: Final = 150
_RING: Final = 512  # recent posts that retweets and replies refer to
_TABLE: Final = 8_192  # size of the lookup tables that replace weighted choices

_KINDS: Final = (
    "positive", "neutral", "negative", "pump", "crash", "good_news", "bad_news", "reply", "spam",
)  # fmt: skip
_SLOTS: Final = frozenset(
    {
        "coin", "cashtag", "ticker", "name", "hashtag", "coin2", "emoji_pos", "emoji_neg",
        "emoji", "user", "url", "spam_url", "tag", "pct", "big_pct", "tf", "amount", "n",
    }
)  # fmt: skip
_SLOT_RE: Final = re.compile(r"\{([a-z_0-9]+)\}")
_HANDLE_OK: Final = re.compile(r"[^A-Za-z0-9_]")
_ALNUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

_T = TypeVar("_T")


def mock_market(
    seed: int = DEFAULT_MARKET_SEED,
    *,
    sentiment_lead_minutes: float = 10.0,
    price_lead_minutes: float = 5.0,
) -> MarketScript:
    """The mock market over the coin catalogue (a coin's weight: how much it is talked about)."""
    return MarketScript(
        {coin.ticker: coin.weight for coin in COINS.values()},
        seed=seed,
        sentiment_lead_minutes=sentiment_lead_minutes,
        price_lead_minutes=price_lead_minutes,
    )


class _CoinForms(NamedTuple):
    ticker: str
    cashtag: str
    name: str
    hashtags: tuple[str, ...]
    mentions: tuple[str, ...]  # what {coin} draws from, repeated by preference
    lower: str


# A recent original post that retweets and replies can point at: (id, username, text, lang, coin).
_Post = tuple[str, str, str, str, "_CoinForms"]


# One generated tweet before it becomes a Tweet, a plain tuple (built 100,000s of times a second):
# (index, text, author index, lang, retweet_of, reply_to, likes, retweets, replies, quotes).
_Record = tuple[int, str, int, str, str | None, str | None, int, int, int, int]


Template = tuple[str, ...]
"""Literal, slot, literal, slot, ..., literal (odd positions are slot names)."""


def _read_data(name: str) -> str:
    return resources.files("cryptosent.data").joinpath(name).read_text(encoding="utf-8")


def parse_templates(text: str) -> dict[tuple[str, str], list[Template]]:
    """Parse ``mock_templates.txt``: ``[lang kind]`` sections of one template a line."""
    sections: dict[tuple[str, str], list[Template]] = {}
    current: list[Template] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("# ") or line == "#":
            continue
        where = f"mock_templates.txt line {number}"
        if line.startswith("[") and line.endswith("]"):
            parts = line[1:-1].split()
            if len(parts) != 2 or parts[1] not in _KINDS:
                raise ValueError(f"{where}: expected [lang kind] with kind in {_KINDS}")
            current = sections.setdefault((parts[0], parts[1]), [])
            continue
        if current is None:
            raise ValueError(f"{where}: template before the first [lang kind] section")
        pieces = _SLOT_RE.split(line)
        unknown = set(pieces[1::2]) - _SLOTS
        if unknown:
            raise ValueError(f"{where}: unknown slot(s) {sorted(unknown)}")
        current.append(tuple(pieces))
    return sections


def _weighted_table(items: Sequence[_T], weights: Sequence[float], size: int = _TABLE) -> list[_T]:
    """A list of ``size`` items in proportion to ``weights``: t[random index] is a weighted draw."""
    cumulative: list[float] = []
    total = 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    return [items[bisect.bisect_left(cumulative, (k + 0.5) * total / size)] for k in range(size)]


def _coin_forms(coin: Coin) -> _CoinForms:
    cashtag = "$" + coin.ticker
    hashtags = ["#" + coin.name.replace(" ", "").replace(".", ""), "#" + coin.ticker]
    hashtags += ["#" + tag for tag in coin.hashtags[:2]]
    hashtags = list(dict.fromkeys(hashtags))
    # How people write a coin: mostly cashtags and names, bare tickers less, hashtags least.
    mentions = [cashtag] * 8 + [coin.name] * 6 + [coin.ticker] * 3 + hashtags
    return _CoinForms(
        coin.ticker, cashtag, coin.name, tuple(hashtags), tuple(mentions), coin.ticker.lower()
    )


def _random_seed() -> int:
    return random.SystemRandom().getrandbits(63)


class MockGenerator(Source):
    """Deterministic stream of realistic crypto tweets; see the module docstring."""

    name = SOURCE

    def __init__(
        self,
        seed: int | None = None,
        clock: Callable[[], datetime] = utc_now,
        market: MarketScript | None = None,
    ) -> None:
        """Build the author pool and lookup tables; ``clock`` stamps ``created_at`` and says
        which market events are running; ``market`` defaults to `mock_market()`."""
        self.seed: Final[int] = _random_seed() if seed is None else seed
        self._clock = clock
        self._rng = random.Random(self.seed)
        self.market = market if market is not None else mock_market()
        self.events: list[MarketEvent] = []
        """Market events whose posts this generator has written, in the order first seen."""
        self._seen_events: set[MarketEvent] = set()
        self.count = 0
        """How many tweets this generator has made; the next tweet has this index."""

        vocab: dict[str, Any] = tomllib.loads(_read_data("mock_vocab.toml"))
        self._templates = parse_templates(_read_data("mock_templates.txt"))
        mix = vocab["mix"]
        self._p_retweet: float = mix["retweet"]
        self._p_reply: float = mix["reply"]
        self._p_spam: float = mix["spam"]
        self._p_emoji_slot: float = mix["emoji_slot"]
        self._p_tail_emoji: float = mix["tail_emoji"]
        self._p_tail_hashtag: float = mix["tail_hashtag"]
        self._p_tail_url: float = mix["tail_url"]
        self._emoji: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in vocab["emoji"].items()}
        words = vocab["words"]
        self._timeframes: tuple[str, ...] = tuple(words["timeframes"])
        self._tags: tuple[str, ...] = tuple(words["hashtags"])
        self._amounts: tuple[str, ...] = tuple(words["amounts"])
        self._spam_links: tuple[str, ...] = tuple(vocab["links"]["spam"])

        coins = list(COINS.values())
        self._forms = [_coin_forms(c) for c in coins]
        self._forms_of = {f.ticker: f for f in self._forms}
        self._coin_table = _weighted_table(self._forms, [c.weight for c in coins])

        sentiments = vocab["sentiment"]
        self._sentiment_table = _weighted_table(list(sentiments), list(sentiments.values()), 100)
        languages = vocab["languages"]
        missing = [lang for lang in languages if (lang, "positive") not in self._templates]
        if (
            missing
            or ("en", "reply") not in self._templates
            or ("en", "spam") not in self._templates
        ):
            raise ValueError(f"mock_templates.txt lacks sections for languages {missing or ['en']}")
        language_table = _weighted_table(list(languages), list(languages.values()), 1000)

        self._build_authors(vocab["handles"], language_table)
        self._urls = tuple(
            "https://t.co/" + "".join(self._rng.choices(_ALNUM, k=10)) for _ in range(400)
        )
        self._ring: list[_Post] = []
        self._ring_pos = 0
        self._id_base: int | None = None

        # the market events running at this batch's moment: (share of posts, coin, kind of posts)
        self._moment: list[tuple[float, _CoinForms, str]] = []

        self._fill = self._slot_functions()

    # ----------------------------------------------------------------- construction helpers

    def _build_authors(self, handles: dict[str, list[str]], language_table: list[str]) -> None:
        from faker import Faker  # only here: Faker is slow, tweets never touch it

        fake = Faker("en_US")
        fake.seed_instance(self.seed)
        rng = self._rng
        names: list[str] = []
        seen: set[str] = set()

        def add(handle: str) -> None:
            handle = _HANDLE_OK.sub("", handle)[:15]
            if handle and handle.lower() not in seen:
                seen.add(handle.lower())
                names.append(handle)

        while len(names) < _HUMANS:
            if rng.random() < 0.3:
                stem = rng.choice(handles["stems"])
                if rng.random() < 0.5:
                    stem = stem.capitalize()
                add(rng.choice(handles["prefixes"]) + stem + rng.choice(handles["suffixes"]))
            else:
                add(fake.user_name() + (str(rng.randint(1, 999)) if rng.random() < 0.3 else ""))
        while len(names) < _HUMANS + _BOTS:
            stem = rng.choice(handles["bot_stems"])
            add(f"{stem}_{fake.first_name().lower()}{rng.randint(10, 99999)}")

        authors: list[Author] = []
        langs: list[str] = []
        reach: list[float] = []
        for i, username in enumerate(names):
            if i < _HUMANS:
                # Log-normal follower counts, median ~270, with a long tail of influencers.
                followers = min(int(math.exp(rng.gauss(5.6, 1.9))), 150_000_000)
                verified = rng.random() < (0.6 if followers >= 100_000 else 0.01)
                langs.append(language_table[rng.randrange(len(language_table))])
            else:
                followers = rng.randint(0, 60)
                verified = False
                langs.append("en")
            author_id = str(rng.randrange(10**8, 10**19))
            authors.append(Author(id=author_id, username=username, followers=followers,
                                  verified=verified))  # fmt: skip
            reach.append(followers**0.6)
        self._authors = authors
        self._author_lang = langs
        self._author_reach = reach
        self._usernames = tuple(names[:_HUMANS])  # bots are never @mentioned
        # A few accounts post far more than others.
        activity = [min(rng.paretovariate(1.5), 40.0) for _ in range(_HUMANS)]
        self._author_table = _weighted_table(list(range(_HUMANS)), activity)

    # ------------------------------------------------------------------------------ slots

    def _pick(self, items: Sequence[_T]) -> _T:
        return items[int(self._rng.random() * len(items))]

    def _slot_functions(self) -> dict[str, Callable[[_CoinForms], str]]:
        """One function per template slot; closures over locals, as they run for every tweet."""
        rand = self._rng.random
        coin_table = self._coin_table
        usernames, urls, tags = self._usernames, self._urls, self._tags
        timeframes, amounts = self._timeframes, self._amounts
        pos, neg, neutral = self._emoji["positive"], self._emoji["negative"], self._emoji["neutral"]
        with_emoji = self._p_emoji_slot

        def coin2(coin: _CoinForms) -> str:
            other = coin
            while other is coin:
                other = coin_table[int(rand() * _TABLE)]
            return other.cashtag if rand() < 0.6 else other.name

        def spam_url(coin: _CoinForms) -> str:
            code = "".join(self._rng.choices(_ALNUM, k=7))
            link = self._pick(self._spam_links)
            return link.format(coin=coin.lower, code=code, n=int(rand() * 90_000) + 1_000)

        return {
            "coin": lambda c: c.mentions[int(rand() * len(c.mentions))],
            "cashtag": lambda c: c.cashtag,
            "ticker": lambda c: c.ticker,
            "name": lambda c: c.name,
            "hashtag": lambda c: c.hashtags[int(rand() * len(c.hashtags))],
            "coin2": coin2,
            "emoji_pos": lambda c: pos[int(rand() * len(pos))] if rand() < with_emoji else "",
            "emoji_neg": lambda c: neg[int(rand() * len(neg))] if rand() < with_emoji else "",
            "emoji": lambda c: neutral[int(rand() * len(neutral))] if rand() < with_emoji else "",
            "user": lambda c: "@" + usernames[int(rand() * len(usernames))],
            "url": lambda c: urls[int(rand() * len(urls))],
            "spam_url": spam_url,
            "tag": lambda c: tags[int(rand() * len(tags))],
            "pct": lambda c: f"{rand() * 9 + 0.5:.1f}%",
            "big_pct": lambda c: f"{int(rand() * 70) + 15}%",
            "tf": lambda c: timeframes[int(rand() * len(timeframes))],
            "amount": lambda c: amounts[int(rand() * len(amounts))],
            "n": lambda c: str(int(rand() * 9) + 2),
        }

    def _render(self, template: Template, coin: _CoinForms) -> str:
        if len(template) == 1:
            return template[0]
        out = [template[0]]
        fill = self._fill
        for i in range(1, len(template), 2):
            out.append(fill[template[i]](coin))
            out.append(template[i + 1])
        # An empty slot at the end ({emoji_pos} left out) must not leave a trailing space.
        return "".join(out).rstrip()

    # ------------------------------------------------------------------------------ events

    def _update_moment(self, now: datetime) -> None:
        """Which market events are running now, and what share of posts each one takes."""
        moment: list[tuple[float, _CoinForms, str]] = []
        for event in self.market.active(now):
            share = event.post_share(now)
            forms = self._forms_of.get(event.coin)
            if share <= 0.0 or forms is None:
                continue
            moment.append((share, forms, event.posts))
            if event not in self._seen_events:
                self._seen_events.add(event)
                self.events.append(event)
        total = sum(share for share, _, _ in moment)
        if total > _MAX_EVENT_SHARE:
            moment = [(share * _MAX_EVENT_SHARE / total, f, k) for share, f, k in moment]
        self._moment = moment

    # ---------------------------------------------------------------------------- tweets

    def _next(self) -> _Record:
        """Make the next tweet as a plain record."""
        index = self.count
        self.count = index + 1
        rand = self._rng.random
        templates = self._templates
        ring = self._ring
        author = self._author_table[int(rand() * _TABLE)]
        lang = self._author_lang[author]

        if self._moment:
            roll = rand()
            for share, coin, kind in self._moment:
                if roll < share:
                    if (lang, kind) not in templates or rand() < 0.3:
                        lang = "en"
                    choices = templates[lang, kind]
                    text = self._render(choices[int(rand() * len(choices))], coin)
                    return self._original(index, author, lang, coin, text)
                roll -= share

        roll = rand()
        if ring and roll < self._p_retweet:
            parent = ring[int(rand() * len(ring))]
            text = f"RT @{parent[1]}: {parent[2]}"
            return (index, text, author, parent[3], parent[0], None, 0, 0, 0, 0)
        roll -= self._p_retweet
        if ring and roll < self._p_reply:
            parent_id, parent_user, _, parent_lang, parent_coin = ring[int(rand() * len(ring))]
            # Replies follow the thread's language when the generator can write it.
            lang = parent_lang if (parent_lang, "reply") in templates else "en"
            choices = templates[lang, "reply"]
            body = self._render(choices[int(rand() * len(choices))], parent_coin)
            likes = int(self._author_reach[author] * rand() ** 3)
            text = f"@{parent_user} {body}"
            return (index, text, author, lang, None, parent_id, likes, likes // 8, 0, 0)
        roll -= self._p_reply
        coin = self._coin_table[int(rand() * _TABLE)]
        if roll < self._p_spam:
            bot = _HUMANS + int(rand() * _BOTS)
            choices = templates["en", "spam"]
            text = self._render(choices[int(rand() * len(choices))], coin)
            return (index, text, bot, "en", None, None, 0, int(rand() * 3), 0, 0)

        if rand() < 0.1:
            lang = "en"
        sentiment = self._sentiment_table[int(rand() * 100)]
        choices = templates[lang, sentiment]
        text = self._render(choices[int(rand() * len(choices))], coin)
        # Tails: what people add after the sentence.
        if rand() < self._p_tail_hashtag:
            text = f"{text} {coin.hashtags[int(rand() * len(coin.hashtags))]}"
            if rand() < 0.4:
                text = f"{text} {self._pick(self._tags)}"
        if rand() < self._p_tail_emoji:
            text = f"{text} {self._pick(self._emoji[sentiment])}"
        if rand() < self._p_tail_url:
            text = f"{text} {self._pick(self._urls)}"
        return self._original(index, author, lang, coin, text)

    def _original(self, index: int, author: int, lang: str, coin: _CoinForms, text: str) -> _Record:
        rand = self._rng.random
        # Engagement grows with reach, but most posts get little of it.
        reach = self._author_reach[author]
        likes = int(reach * rand() ** 3)
        # Retweets and replies go to a sample of recent posts, the widely read ones first.
        if rand() * 40.0 < reach:
            post = (self._id(index), self._usernames[author], text, lang, coin)
            if len(self._ring) < _RING:
                self._ring.append(post)
            else:
                self._ring[self._ring_pos] = post
                self._ring_pos = (self._ring_pos + 1) % _RING
        return (index, text, author, lang, None, None, likes, likes // 5, likes // 9, likes // 30)

    def _id(self, index: int) -> str:
        if self._id_base is None:
            raise RuntimeError("tweet ids are assigned only while generating")
        return str(self._id_base + (index << _WORKER_BITS))

    def _start_batch(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the mock generator's clock must return timezone-aware datetimes")
        now = now.astimezone(UTC)
        if self._id_base is None:
            # Snowflake layout: milliseconds since Twitter's epoch << 22, plus the tweet counter
            # above 10 "worker" bits drawn from the seed. Generators with different worker bits
            # never collide; a later run starts above an earlier run's ids unless the earlier
            # one outpaced 4 million tweets/s.
            millis = int(now.timestamp() * 1000) - _SNOWFLAKE_EPOCH_MS
            worker = random.Random(self.seed).getrandbits(_WORKER_BITS)
            self._id_base = (millis << 22) | worker
        return now

    def tweets(self, n: int) -> list[Tweet]:
        """The next ``n`` tweets, all stamped with one reading of the clock."""
        now = self._start_batch()
        self._update_moment(now)
        out: list[Tweet] = []
        for _ in range(n):
            (index, text, author, lang, retweet_of, reply_to, likes, retweets, replies, quotes) = (
                self._next()
            )
            a = self._authors[author]
            out.append(
                Tweet(
                    id=self._id(index),
                    text=text,
                    created_at=now,
                    author=Author(a.id, a.username, a.followers, a.verified),
                    lang=lang,
                    source=SOURCE,
                    retweet_of=retweet_of,
                    reply_to=reply_to,
                    metrics=Metrics(likes, retweets, replies, quotes),
                )
            )
        return out

    def read(self, n: int) -> list[Tweet]:
        """The next ``n`` tweets (the source contract; the generator is never exhausted)."""
        return self.tweets(n)
