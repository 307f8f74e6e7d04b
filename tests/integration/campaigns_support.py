"""A mixed stream for the campaign tests: the mock's organic feed (and its standing spam bots,
named by its ground truth) with coordinated campaigns written here, interleaved and sent
through Kafka."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer

from cryptosent.config import Settings
from cryptosent.kafka import producer_config
from cryptosent.model import Author, Tweet, encode_tweet
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import CampaignMock

# one template per campaign, written for these tests (not the mock's): {coin} a cashtag,
# {n} a number, {link} a link, {emoji} an emoji; edits are applied on top
TEMPLATES = (
    "{emoji} ${coin} is about to explode, whales are loading up before the big exchange "
    "listing next week. Get in now before it is too late {link}",
    "Just claimed my ${coin} airdrop bonus of {n} tokens in two minutes, claim yours before "
    "midnight here {link} {emoji}",
    "Heads up: the ${coin} team quietly moved {n} million from the liquidity pool, sell "
    "everything before it goes to zero {emoji}",
    "Compré más ${coin} hoy, este proyecto va a hacer {n}x antes de fin de año y nadie lo "
    "está viendo todavía {emoji}",
    "BREAKING partnership announced between ${coin} and a top payment network, price target "
    "{n} dollars by Friday {emoji} {link}",
)
COINS = ("PEPE", "BONK", "WIF", "FLOKI", "SHIB", "INJ", "SEI", "TIA")
EMOJI = ("🚀", "🔥", "💎", "🌙", "📈", "⚠️", "💰", "✅")
OPENERS = ("", "", "", "Guys, ", "Fam ", "Not financial advice but ", "ALERT: ")


@dataclass
class Stream:
    """What was sent: every tweet in order, and the truth about each non-organic one."""

    tweets: list[Tweet] = field(default_factory=list)
    campaign_of: dict[str, str] = field(default_factory=dict)  # test campaign posts
    mock_spam: set[str] = field(default_factory=set)  # the mock's spam bots (its truth)

    @property
    def organic(self) -> set[str]:
        """Ids of the posts no truth names."""
        return {t.id for t in self.tweets} - set(self.campaign_of) - self.mock_spam


def campaign_post(rng: random.Random, campaign: int, number: int, when: datetime) -> Tweet:
    """One post of a test campaign: the template with small edits, from its own account."""
    text = TEMPLATES[campaign].format(
        coin=rng.choice(COINS), n=rng.randint(2, 900), emoji=rng.choice(EMOJI),
        link=f"https://t.co/{rng.getrandbits(40):x}",
    )  # fmt: skip
    words = text.split(" ")
    if rng.random() < 0.3:  # drop a word
        del words[rng.randrange(3, len(words))]
    text = rng.choice(OPENERS) + " ".join(words)
    if rng.random() < 0.3:
        text += " " + rng.choice(EMOJI) * rng.randint(1, 3)
    # sock puppets: most with a handful of followers, a few bought
    followers = int(rng.lognormvariate(2.3, 1.0))
    if rng.random() < 0.08:
        followers = rng.randint(300, 5000)
    account = f"shill{campaign}x{number}"
    return Tweet(
        id=f"camp-{campaign}-{number}",
        text=text,
        created_at=when,
        author=Author(id=account, username=account, followers=followers, verified=False),
        lang="es" if campaign == 3 else "en",
        source="test",
    )


def mixed_stream(organic: int, campaigns: int = 5, per_campaign: int = 40, seed: int = 7) -> Stream:
    """The mock's feed (campaign share 0: organic posts and its spam bots) with `campaigns` test
    campaigns of `per_campaign` posts each, spread over the stream."""
    rng = random.Random(seed)
    stream = Stream()
    mock = CampaignMock(
        MockGenerator(seed=seed), 0.0, on_label=lambda label: stream.mock_spam.add(label.id)
    )
    feed: list[Tweet] = []
    while len(feed) < organic:
        feed.extend(mock.read(min(1000, organic - len(feed))))
    mock.close()
    # each campaign runs over a stretch of the stream, its posts at random positions in it
    slots: dict[int, list[Tweet]] = {}
    start = min(t.created_at for t in feed)
    for c in range(campaigns):
        first = rng.randrange(0, organic // 2)
        positions = sorted(rng.randrange(first, organic) for _ in range(per_campaign))
        for number, position in enumerate(positions):
            when = feed[position].created_at if feed else start
            post = campaign_post(rng, c, number, when + timedelta(milliseconds=1))
            slots.setdefault(position, []).append(post)
            stream.campaign_of[post.id] = f"test-{c}"
    for position, tweet in enumerate(feed):
        stream.tweets.append(tweet)
        stream.tweets.extend(slots.get(position, []))
    return stream


def send(settings: Settings, topic: str, tweets: list[Tweet]) -> None:
    """Produce the tweets to the topic (key = id), in order, and wait for every delivery."""
    producer = Producer({**producer_config(settings), "linger.ms": 20})
    failed: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    for tweet in tweets:
        producer.produce(topic, encode_tweet(tweet), tweet.id.encode(), on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failed, failed[:3]


def now_utc() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)
