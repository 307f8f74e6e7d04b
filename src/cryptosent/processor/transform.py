"""The processor's transform: consumed Kafka messages -> valid tweets and dead letters -> one
scored `ScoredBatch` (both analyzers' scores, labels and coin mentions as Arrow columns).

Pure apart from the analyzers' caches: no Kafka calls, no storage. Importing it does no work;
`warm_up()` pays pyarrow's first-use costs when the processor starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pyarrow as pa
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError

from cryptosent.analysis.coins import coin_mentions, coin_mentions_many
from cryptosent.analysis.learned.analyzers import FLOAT_COLUMNS, LABEL_CODES
from cryptosent.analysis.sentiment import (
    DEFAULT_ANALYZER,
    Analyzer,
    get_analyzer,
    label,
    score_batch,
)
from cryptosent.batch import SCHEMA, Ranges, ScoredBatch
from cryptosent.model import (
    FUTURE_MARGIN,
    Author,
    InvalidTweet,
    Tweet,
    check_not_future,
    decode_tweet,
)

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MILLISECOND = timedelta(milliseconds=1)


class ConsumeError(Protocol):
    """A consumer error as confluent_kafka reports it (`KafkaError`)."""

    def code(self) -> int: ...

    def str(self) -> str: ...


class Message(Protocol):
    """What the transform reads of a consumed message (confluent_kafka.Message has it)."""

    def error(self) -> ConsumeError | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def key(self) -> bytes | None: ...

    def value(self) -> bytes | None: ...

    def timestamp(self) -> tuple[int, int]: ...


DeadLetter = tuple[Message, str]
"""An invalid message and the one-line reason it was refused."""


@dataclass
class Decoded:
    """One consumed batch split into valid tweets (with where they came from) and dead letters."""

    tweets: list[Tweet] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    # the message of each valid tweet (a tweet an analyzer cannot score is dead-lettered)
    messages: list[Message] = field(default_factory=list)
    # every message consumed, valid or not: a sink's offsets move past dead letters too
    ranges: Ranges = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)


def received_at(message: Message, now: datetime) -> datetime:
    """When the message reached Kafka: its timestamp, or now when it has none or is ahead of
    now (a producer with a fast clock must not widen the margin)."""
    kind, millis = message.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or millis < 0:
        return now
    return min(_EPOCH + timedelta(milliseconds=millis), now)


def decode(
    messages: Sequence[Message],
    future_margin: timedelta | None = FUTURE_MARGIN,
    now: datetime | None = None,
) -> Decoded:
    """Validate each message against the contract (`model.decode_tweet`) and, unless
    future_margin is None, refuse posts dated more than future_margin after they reached Kafka
    (`received_at`); invalid ones become dead letters with their reason, consumer errors are
    logged and skipped."""
    out = Decoded()
    now = now or datetime.now(UTC)
    # A post dated before the batch's earliest arrival + the margin is not in the future,
    # whichever message it came in: one comparison instead of `received_at` per message.
    surely_past = _surely_past(messages, now, future_margin)
    ranges, dead = out.ranges, out.dead
    tweets, raws, partitions, offsets, kept = (
        out.tweets,
        out.raw,
        out.partitions,
        out.offsets,
        out.messages,
    )
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", error.str())
            continue
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        if partition not in ranges:
            ranges[partition] = (offset, offset)
        else:
            ranges[partition] = (ranges[partition][0], offset)
        raw = message.value()
        if raw is None:
            dead.append((message, "empty message (no value)"))
            continue
        try:
            tweet = decode_tweet(raw)
            if future_margin is not None and not tweet.created_at <= surely_past:
                check_not_future(tweet, received_at(message, now), future_margin)
        except InvalidTweet as invalid:
            dead.append((message, str(invalid)))
            continue
        tweets.append(tweet)
        raws.append(raw)
        partitions.append(partition)
        offsets.append(offset)
        kept.append(message)
    return out


def _surely_past(
    messages: Sequence[Message], now: datetime, future_margin: timedelta | None
) -> datetime:
    """The earliest `received_at` of the messages, plus the margin (a lower bound of it)."""
    if future_margin is None:
        return now
    earliest = (now - _EPOCH) // _MILLISECOND
    for message in messages:
        kind, millis = message.timestamp()
        if kind != TIMESTAMP_NOT_AVAILABLE and 0 <= millis < earliest:
            earliest = millis
    try:
        return _EPOCH + timedelta(milliseconds=earliest) + future_margin
    except OverflowError:  # a margin of centuries: nothing is in the future
        return datetime.max.replace(tzinfo=UTC)


_REASON_LIMIT = 300


def isolate_poison(score: Callable[[Decoded], object], decoded: Decoded, error: Exception) -> None:
    """After ``score`` raised ``error`` on the batch: score each tweet alone and move those that
    raise from ``decoded`` to its dead letters, with the reason, so one poison message cannot
    stop its partition. When every tweet raises, the analyzer itself is broken: ``error`` is
    raised (a user must fix it; dead-lettering everything would hide it)."""
    rows = list(
        zip(decoded.tweets, decoded.raw, decoded.partitions, decoded.offsets, decoded.messages,
            strict=True)
    )  # fmt: skip
    kept: list[tuple[Tweet, bytes, int, int, Message]] = []
    poisoned: list[DeadLetter] = []
    for row in rows:
        try:
            score(Decoded([row[0]], [row[1]], [row[2]], [row[3]], [row[4]]))
        except Exception as err:
            reason = " ".join(f"analyzer failed: {type(err).__name__}: {err}".split())
            poisoned.append((row[4], reason[:_REASON_LIMIT]))
        else:
            kept.append(row)
    if len(poisoned) > 1 and not kept:
        raise error
    decoded.tweets, decoded.raw, decoded.partitions, decoded.offsets, decoded.messages = (
        [list(column) for column in zip(*kept, strict=True)] if kept else [[], [], [], [], []]
    )
    decoded.dead.extend(poisoned)
    log.warning("%d message(s) made an analyzer raise: dead-lettered", len(poisoned))


class Scorer:
    """Scores decoded tweets with the default analyzer (`learned`) and exact VADER."""

    def __init__(self, default: Analyzer | None = None, vader: Analyzer | None = None) -> None:
        self.default = default or get_analyzer(DEFAULT_ANALYZER)
        self.vader = vader or get_analyzer("vader")
        # an empty batch builds what scoring builds on first use (the crypto analyzer the
        # learned one consults, the compiled coin matcher) now, not in the first batch
        self.table(Decoded())

    def __call__(self, decoded: Decoded) -> ScoredBatch:
        """The batch every sink receives; a tweet an analyzer raises on leaves ``decoded`` for
        its dead letters (`isolate_poison`)."""
        try:
            table = self.table(decoded)
        except Exception as err:
            isolate_poison(self.table, decoded, err)
            table = self.table(decoded)
        return ScoredBatch(table, decoded.raw, dict(decoded.ranges))

    def table(self, decoded: Decoded) -> pa.Table:
        """The scored columns of the decoded tweets."""
        return score_tweets(
            decoded.tweets, decoded.partitions, decoded.offsets, self.default, self.vader
        )


def score_tweets(
    tweets: Sequence[Tweet],
    partitions: Sequence[int],
    offsets: Sequence[int],
    default: Analyzer,
    vader: Analyzer,
) -> pa.Table:
    """Score tweets with the default analyzer and VADER, find their coins; return the table.

    A learned default also gives each tweet's confidence, and ``unscored`` for posts in
    languages it was not trained on (their compound is 0 and no label count includes them).
    One call into the compiled core scores the batch when it can (`LearnedAnalyzer.columns`);
    otherwise `score_tweets_python` does, with the same results.
    """
    texts = [tweet.text for tweet in tweets]
    columns = getattr(default, "columns", None)
    scored = columns(texts, [t.lang for t in tweets], vader) if columns is not None else None
    if scored is None:
        return score_tweets_python(tweets, partitions, offsets, default, vader)
    n = len(tweets)
    arrays = _tweet_columns(tweets, texts)
    floats = pa.py_buffer(scored.floats)
    for k, name in enumerate(FLOAT_COLUMNS):
        arrays[name] = pa.Array.from_buffers(
            pa.float64(), n, [None, floats.slice(k * n * 8, n * 8)]
        )
    arrays["label"] = _LABELS.take(
        pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(scored.labels)])
    )
    arrays["vader_label"] = _LABELS.take(
        pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(scored.vader_labels)])
    )
    arrays["kafka_partition"] = pa.array(partitions, pa.int32())
    arrays["kafka_offset"] = pa.array(offsets, pa.int64())
    return pa.Table.from_arrays([arrays[name] for name in SCHEMA.names], schema=SCHEMA)


_LABELS = pa.array(LABEL_CODES, pa.string())


def _tweet_columns(tweets: Sequence[Tweet], texts: list[str]) -> dict[str, pa.Array]:
    """The columns taken from the tweets as they are, and their coins; spam False and no
    campaign until the campaign detector flags the batch (processor.campaigns)."""
    n = len(tweets)
    none = _NO_AUTHOR
    authors = [none if t.author is None else t.author for t in tweets]
    return {
        "id": pa.array([t.id for t in tweets], pa.string()),
        # integer microseconds: exact, and spares pyarrow a pandas import for tz-aware datetimes
        "created_at": pa.array(
            [(t.created_at - _EPOCH) // _MICROSECOND for t in tweets], pa.int64()
        ).view(SCHEMA.field("created_at").type),
        "text": pa.array(texts, pa.string()),
        "author_id": pa.array([a.id for a in authors], pa.string()),
        "author_username": pa.array([a.username for a in authors], pa.string()),
        "author_followers": pa.array([a.followers for a in authors], pa.int64()),
        "author_verified": pa.array([a.verified for a in authors], pa.bool_()),
        "lang": pa.array([t.lang for t in tweets], pa.string()),
        "source": pa.array([t.source for t in tweets], pa.string()),
        "retweet_of": pa.array([t.retweet_of for t in tweets], pa.string()),
        "reply_to": pa.array([t.reply_to for t in tweets], pa.string()),
        "coins": pa.array(coin_mentions_many(texts), pa.list_(pa.string())),
        "spam": pa.array([False] * n, pa.bool_()),
        "campaign_id": pa.nulls(n, pa.string()),
    }


_NO_AUTHOR = Author()


def score_tweets_python(
    tweets: Sequence[Tweet],
    partitions: Sequence[int],
    offsets: Sequence[int],
    default: Analyzer,
    vader: Analyzer,
) -> pa.Table:
    """`score_tweets` the pure-Python way, a Python object per tweet (the compiled core's
    reference: both give the same table)."""
    n = len(tweets)
    cols: dict[str, list[object]] = {name: [None] * n for name in SCHEMA.names}
    texts = [tweet.text for tweet in tweets]
    vader_all = score_batch(vader, texts)
    judge = getattr(default, "judge_many", None)
    if judge is not None:
        judgements = judge(texts, [tweet.lang for tweet in tweets], vader=vader_all, explain=False)
        default_all = [j.scores for j in judgements]
        cols["label"] = [j.label for j in judgements]
        cols["confidence"] = [j.confidence for j in judgements]
    else:
        default_all = score_batch(default, texts)
        cols["label"] = [label(c[0]) for c in default_all]
    for i, (tweet, c, v) in enumerate(zip(tweets, default_all, vader_all, strict=True)):
        author = tweet.author
        cols["id"][i] = tweet.id
        # integer microseconds: exact, and spares pyarrow a pandas import for tz-aware datetimes
        cols["created_at"][i] = (tweet.created_at - _EPOCH) // _MICROSECOND
        cols["text"][i] = texts[i]
        if author is not None:
            cols["author_id"][i] = author.id
            cols["author_username"][i] = author.username
            cols["author_followers"][i] = author.followers
            cols["author_verified"][i] = author.verified
        cols["lang"][i] = tweet.lang
        cols["source"][i] = tweet.source
        cols["retweet_of"][i] = tweet.retweet_of
        cols["reply_to"][i] = tweet.reply_to
        cols["compound"][i], cols["pos"][i], cols["neu"][i], cols["neg"][i] = c
        cols["vader_compound"][i], cols["vader_pos"][i], cols["vader_neu"][i] = v[:3]
        cols["vader_neg"][i] = v[3]
        cols["vader_label"][i] = label(v[0])
        cols["coins"][i] = coin_mentions(texts[i])
    cols["spam"] = [False] * n  # until the campaign detector flags the batch (processor.campaigns)
    cols["kafka_partition"] = list(partitions)
    cols["kafka_offset"] = list(offsets)
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def warm_up() -> None:
    """Pay one-time costs before the first batch: pyarrow loads pandas (about a second) the
    first time it builds a tz-aware timestamp array."""
    pa.array([0], pa.timestamp("us", tz="UTC"))
