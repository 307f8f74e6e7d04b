"""The mock generator: realistic mix, market events, determinism, valid messages, speed."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from statistics import mean

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from cryptosent.analysis.coins import COINS, coin_mentions
from cryptosent.ingest import to_message
from cryptosent.model import Tweet, decode_tweet, encode_tweet
from cryptosent.sources.market import MarketScript
from cryptosent.sources.mock import MarketEvent, MockGenerator, parse_templates

SEED = 2026
N = 10_000
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# Emoji blocks: pictographs, symbols (❤, ⚡), supplemental symbols (🩸).
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")


def fixed_clock() -> datetime:
    return NOW


@pytest.fixture(scope="module")
def generated() -> tuple[MockGenerator, list[Tweet], list[list[str]]]:
    generator = MockGenerator(seed=SEED, clock=fixed_clock)
    tweets = generator.tweets(N)
    return generator, tweets, [coin_mentions(t.text) for t in tweets]


def test_many_coins(generated: tuple[MockGenerator, list[Tweet], list[list[str]]]) -> None:
    _, _, mentions = generated
    distinct = {ticker for found in mentions for ticker in found}
    assert len(distinct) >= 40
    # Popular coins dominate, as on the real feed.
    counts = Counter(ticker for found in mentions for ticker in found)
    assert counts.most_common(1)[0][0] == "BTC"
    assert sum(bool(found) for found in mentions) / N >= 0.8


def test_mix_of_posts(generated: tuple[MockGenerator, list[Tweet], list[list[str]]]) -> None:
    _, tweets, _ = generated
    with_emoji = sum(bool(EMOJI.search(t.text)) for t in tweets) / N
    retweets = [t for t in tweets if t.retweet_of is not None]
    replies = [t for t in tweets if t.reply_to is not None]
    languages = Counter(t.lang for t in tweets)
    assert with_emoji >= 0.10
    assert len(retweets) / N >= 0.05
    assert all(t.text.startswith("RT @") for t in retweets)
    assert len(replies) / N >= 0.03
    assert all(t.text.startswith("@") for t in replies)
    assert len(languages) >= 2
    assert languages.most_common(1)[0][0] == "en"
    assert languages["en"] / N > 0.5
    assert {t.source for t in tweets} == {"mock"}
    assert any("\u2764\ufe0f" in t.text for t in tweets)  # ❤️ with its variation selector
    assert any(re.search("[\U0001f3fb-\U0001f3ff]", t.text) for t in tweets)  # skin tones
    assert any("https://t.co/" in t.text for t in tweets)
    assert any(re.search(r"(?:^|\s)@\w+", t.text) for t in tweets if not t.reply_to)
    assert sum("airdrop" in t.text.lower() or "giveaway" in t.text.lower() for t in tweets) > 50


def test_retweets_and_replies_point_at_earlier_tweets(
    generated: tuple[MockGenerator, list[Tweet], list[list[str]]],
) -> None:
    _, tweets, _ = generated
    seen: dict[str, Tweet] = {}
    for tweet in tweets:
        parent_id = tweet.retweet_of or tweet.reply_to
        if parent_id is not None:
            parent = seen[parent_id]
            assert parent.author is not None
            assert tweet.text.startswith(f"RT @{parent.author.username}: " if tweet.retweet_of
                                         else f"@{parent.author.username} ")  # fmt: skip
            if tweet.retweet_of:
                assert tweet.text.endswith(parent.text)
        seen[tweet.id] = tweet


def test_authors(generated: tuple[MockGenerator, list[Tweet], list[list[str]]]) -> None:
    _, tweets, _ = generated
    authors = {t.author.id: t.author for t in tweets if t.author is not None}
    followers = sorted(a.followers or 0 for a in authors.values())
    assert len(authors) > 1_000
    assert all(re.fullmatch(r"\w{1,15}", a.username or "") for a in authors.values())
    # Heavy tail: the median account is small, the biggest ones are huge.
    assert followers[len(followers) // 2] < 1_000
    assert followers[-1] > 100_000
    assert 0 < sum(bool(a.verified) for a in authors.values()) < len(authors) * 0.05
    spam = [t for t in tweets if "airdrop" in t.text.lower()]
    assert spam and all((t.author.followers or 0) <= 60 for t in spam if t.author)
    metrics = [t.metrics for t in tweets if t.metrics is not None]
    assert len(metrics) == N
    assert max(m.likes or 0 for m in metrics) > 100


MARKET_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POSITIVE_POSTS = {"pump", "good_news"}


@pytest.fixture(scope="module")
def market_run() -> tuple[MockGenerator, list[Tweet], list[list[str]]]:
    # 40 minutes of the mock market at 500 tweets a minute: the clock moves 6 s per batch of 50
    moments = (MARKET_START + timedelta(seconds=6 * i) for i in itertools.count())
    generator = MockGenerator(seed=SEED, clock=lambda: next(moments))
    tweets = [tweet for _ in range(400) for tweet in generator.tweets(50)]
    return generator, tweets, [coin_mentions(t.text) for t in tweets]


def test_market_events_move_volume_and_mood(
    market_run: tuple[MockGenerator, list[Tweet], list[list[str]]],
) -> None:
    generator, tweets, mentions = market_run
    end = tweets[-1].created_at
    window = timedelta(minutes=1)

    def alone(event: MarketEvent) -> bool:  # no other event of the same coin at the same time
        return not any(
            o is not event and o.coin == event.coin and o.start < event.end and event.start < o.end
            for o in generator.market.events_between(MARKET_START - window, end + window)
        )

    checked = [
        e
        for e in generator.events
        if e.sentiment_start >= MARKET_START
        and e.sentiment_start + timedelta(minutes=e.minutes) <= end
        and alone(e)
    ]
    assert len(checked) >= 4, generator.events
    vader = SentimentIntensityAnalyzer()
    for event in checked:
        # the middle half of the posts' window, where at least 70 % of the peak share is reached
        low = event.sentiment_start + timedelta(minutes=event.minutes / 4)
        high = event.sentiment_start + timedelta(minutes=3 * event.minutes / 4)
        inside = [i for i, t in enumerate(tweets) if low <= t.created_at < high]
        outside = [i for i, t in enumerate(tweets) if not event.start <= t.created_at < event.end]
        share_in = sum(event.coin in mentions[i] for i in inside) / len(inside)
        share_out = sum(event.coin in mentions[i] for i in outside) / len(outside)
        assert share_in - share_out >= 0.5 * event.share, (event, share_in, share_out)

        def mood(indexes: list[int], coin: str = event.coin) -> float:
            scores = [vader.polarity_scores(tweets[i].text)["compound"] for i in indexes
                      if coin in mentions[i]]  # fmt: skip
            return mean(scores) if scores else 0.0

        mood_in, mood_out = mood(inside), mood(outside)
        if event.posts in POSITIVE_POSTS:
            assert mood_in > mood_out + 0.1, (event, mood_in, mood_out)
        else:
            assert mood_in < mood_out - 0.1, (event, mood_in, mood_out)


def test_events_come_from_the_wall_clock_not_the_rate() -> None:
    # two generators with other seeds, rates and batch sizes over the same hour see the same events
    def run(seed: int, batch: int, step_s: float) -> MockGenerator:
        moments = (MARKET_START + timedelta(seconds=step_s * i) for i in itertools.count())
        generator = MockGenerator(seed=seed, clock=lambda: next(moments))
        for _ in range(int(3600 / step_s)):
            generator.tweets(batch)
        return generator

    slow, fast = run(1, 5, 10.0), run(2, 40, 2.0)
    expected = generator_events(slow.market, MARKET_START, MARKET_START + timedelta(hours=1))
    assert len(expected) >= 8
    assert {e.coin for e in expected} <= set(COINS)
    # an event counts once a post of it was written: the faster feed sees at least as many
    assert set(slow.events) <= set(expected) and set(fast.events) <= set(expected)
    assert len(set(slow.events) & set(fast.events)) >= len(expected) - 2


def generator_events(market: MarketScript, start: datetime, end: datetime) -> list[MarketEvent]:
    """The events whose posts run inside [start, end)."""
    return [
        e
        for e in market.events_between(start, end)
        if e.sentiment_start < end and e.sentiment_start + timedelta(minutes=e.minutes) > start
    ]


def test_messages_decode_to_the_same_tweets() -> None:
    generator = MockGenerator(seed=SEED, clock=fixed_clock)
    tweets = generator.tweets(N // 2) + generator.read(N // 2)  # the source contract: read()
    messages = [to_message(t) for t in tweets]
    assert [value for _, value in messages] == [encode_tweet(t) for t in tweets]
    for (key, value), tweet in zip(messages, tweets, strict=True):
        decoded = decode_tweet(value)
        assert key == decoded.id.encode() == tweet.id.encode()
        assert decoded == tweet
        assert decoded.created_at == NOW
        assert re.fullmatch(r"\d{19}", decoded.id)
    assert len({key for key, _ in messages}) == N


def test_deterministic() -> None:
    first = MockGenerator(seed=SEED, clock=fixed_clock)
    second = MockGenerator(seed=SEED, clock=fixed_clock)
    # Batch sizes do not matter, only the sequence.
    a = [to_message(t) for t in first.tweets(3_000) + first.tweets(2_000)]
    b = [to_message(t) for t in second.tweets(1) + second.tweets(4_999)]
    assert a == b
    assert first.events == second.events
    other = [to_message(t) for t in MockGenerator(seed=SEED + 1, clock=fixed_clock).tweets(5_000)]
    assert [v for _, v in other] != [v for _, v in a]
    assert len({k for k, _ in a} | {k for k, _ in other}) == 10_000


def test_ids_unique_across_batches_and_clock_sets_created_at() -> None:
    times = iter([NOW, NOW + timedelta(seconds=1)])
    generator = MockGenerator(seed=1, clock=lambda: next(times))
    first, second = generator.tweets(500), generator.tweets(500)
    assert {t.created_at for t in first} == {NOW}
    assert {t.created_at for t in second} == {NOW + timedelta(seconds=1)}
    assert len({t.id for t in first + second}) == 1_000
    assert generator.count == 1_000


def test_non_utc_clock_is_converted_and_naive_clock_rejected() -> None:
    plus_two = timezone(timedelta(hours=2))
    tweet = MockGenerator(seed=1, clock=lambda: datetime(2026, 1, 1, 14, tzinfo=plus_two)).tweets(1)
    assert tweet[0].created_at == NOW and tweet[0].created_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        MockGenerator(seed=1, clock=lambda: datetime(2026, 1, 1)).tweets(1)


def test_unseeded_generators_differ() -> None:
    assert MockGenerator().seed != MockGenerator().seed


def test_template_errors() -> None:
    assert parse_templates("[en positive]\n# a comment\n#BTC {coin} {emoji_pos}\n") == {
        ("en", "positive"): [("#BTC ", "coin", " ", "emoji_pos", "")]
    }
    with pytest.raises(ValueError, match="line 2: unknown slot"):
        parse_templates("[en positive]\n{coin} {price}\n")
    with pytest.raises(ValueError, match="line 1: expected"):
        parse_templates("[en happy]\n")
    with pytest.raises(ValueError, match="before the first"):
        parse_templates("{coin}\n")


def test_tweets_and_their_messages_fast_enough() -> None:
    # The producer needs 50,000 tweets/s into Kafka on 2 cores; generating and encoding runs
    # at about 90,000/s on one core, asserted loosely so a busy CI machine does not fail it.
    generator = MockGenerator(seed=1)
    start = time.perf_counter()
    for _ in range(20):
        [to_message(t) for t in generator.read(1_000)]
    rate = 20_000 / (time.perf_counter() - start)
    assert rate > 40_000, f"{rate:,.0f} tweets/s"
