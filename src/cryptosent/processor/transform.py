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

import numpy as np
import pyarrow as pa
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError

from cryptosent.analysis._native import CORE
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
    MAX_MESSAGE_BYTES,
    Author,
    InvalidTweet,
    Tweet,
    check_not_future,
    decode_tweet,
    encode_tweet,
)

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MILLISECOND = timedelta(milliseconds=1)
_NO_AUTHOR = Author()


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


CONTRACT_COLUMNS = SCHEMA.names[:11]
"""The columns taken from the tweets as they arrive (the rest are scores and flags)."""


@dataclass
class TweetColumns:
    """A batch's tweets by columns: the contract columns as Arrow arrays, and what the scoring
    and the campaign detector read of them as Python lists (one item per tweet)."""

    arrays: dict[str, pa.Array]
    """`CONTRACT_COLUMNS` -> array."""
    texts: list[str]
    langs: list[str | None]
    ids: list[str]
    authors: list[str]
    """The campaign detector's author key: the author's id, else the username, else ``?id``."""

    @classmethod
    def of_tweets(cls, tweets: Sequence[Tweet]) -> TweetColumns:
        """The columns of decoded tweets (the pure-Python path)."""
        none = _NO_AUTHOR
        authors = [none if t.author is None else t.author for t in tweets]
        ids = [t.id for t in tweets]
        texts = [t.text for t in tweets]
        langs = [t.lang for t in tweets]
        arrays = {
            "id": pa.array(ids, pa.string()),
            # integer microseconds: exact, and spares pyarrow a pandas import for tz-aware
            # datetimes
            "created_at": pa.array(
                [(t.created_at - _EPOCH) // _MICROSECOND for t in tweets], pa.int64()
            ).view(SCHEMA.field("created_at").type),
            "text": pa.array(texts, pa.string()),
            "author_id": pa.array([a.id for a in authors], pa.string()),
            "author_username": pa.array([a.username for a in authors], pa.string()),
            "author_followers": pa.array([a.followers for a in authors], pa.int64()),
            "author_verified": pa.array([a.verified for a in authors], pa.bool_()),
            "lang": pa.array(langs, pa.string()),
            "source": pa.array([t.source for t in tweets], pa.string()),
            "retweet_of": pa.array([t.retweet_of for t in tweets], pa.string()),
            "reply_to": pa.array([t.reply_to for t in tweets], pa.string()),
        }
        keys = [(a.id or a.username) or f"?{i}" for a, i in zip(authors, ids, strict=True)]
        return cls(arrays, texts, langs, ids, keys)

    def filter(self, keep: Sequence[bool]) -> TweetColumns:
        """The rows where keep is true."""
        mask = pa.array(keep, pa.bool_())
        rows = [i for i, k in enumerate(keep) if k]
        return TweetColumns(
            {name: array.filter(mask) for name, array in self.arrays.items()},
            [self.texts[i] for i in rows],
            [self.langs[i] for i in rows],
            [self.ids[i] for i in rows],
            [self.authors[i] for i in rows],
        )


@dataclass
class Decoded:
    """One consumed batch split into valid tweets (with where they came from) and dead letters.

    The tweets are either `Tweet` objects (``tweets``) or, when the compiled core decoded
    them, columns (``columns``, and ``tweets`` empty until `materialize`)."""

    tweets: list[Tweet] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    # the message of each valid tweet (a tweet an analyzer cannot score is dead-lettered)
    messages: list[Message] = field(default_factory=list)
    # every message consumed, valid or not: a sink's offsets move past dead letters too
    ranges: Ranges = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    columns: TweetColumns | None = None

    def materialize(self) -> None:
        """Turn columns into `Tweet` objects (msgspec decodes the kept bytes again: the same
        tweets), for the paths that work a tweet at a time."""
        if self.columns is not None:
            self.tweets = [decode_tweet(raw) for raw in self.raw]
            self.columns = None

    def tweet_columns(self) -> TweetColumns:
        """The tweets by columns, whichever way they were decoded."""
        return self.columns if self.columns is not None else TweetColumns.of_tweets(self.tweets)


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
    compiled: bool | None = None,
) -> Decoded:
    """Validate each message against the contract (`model.decode_tweet`) and, unless
    future_margin is None, refuse posts dated more than future_margin after they reached Kafka
    (`received_at`); invalid ones become dead letters with their reason (in message order),
    consumer errors are logged and skipped.

    With the compiled core (unless ``compiled`` is False) the valid tweets come back as columns
    (`decode_columns`); without it, or when ``compiled`` is False, as `Tweet` objects: the same
    tweets and dead letters either way."""
    out = Decoded()
    now = now or datetime.now(UTC)
    # A post dated before the batch's earliest arrival + the margin is not in the future,
    # whichever message it came in: one comparison instead of `received_at` per message.
    surely_past = _surely_past(messages, now, future_margin)
    ranges = out.ranges
    dead: list[tuple[int, Message, str]] = []
    candidates: list[Message] = []
    raws: list[bytes] = []
    partitions: list[int] = []
    offsets: list[int] = []
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
            dead.append((len(candidates), message, "empty message (no value)"))
            continue
        candidates.append(message)
        raws.append(raw)
        partitions.append(partition)
        offsets.append(offset)
    kept: list[int] | None = None
    if compiled is not False and CORE is not None:
        kept = decode_columns(out, candidates, raws, dead, surely_past, now, future_margin)
    if kept is None:
        kept = _decode_python(out, candidates, raws, dead, surely_past, now, future_margin)
    if len(kept) == len(raws):
        out.raw, out.messages, out.partitions, out.offsets = raws, candidates, partitions, offsets
    else:
        out.raw = [raws[i] for i in kept]
        out.messages = [candidates[i] for i in kept]
        out.partitions = [partitions[i] for i in kept]
        out.offsets = [offsets[i] for i in kept]
    dead.sort(key=lambda d: d[0])  # stable: an empty message before the next candidate
    out.dead = [(message, reason) for _, message, reason in dead]
    return out


def _decode_python(
    out: Decoded,
    candidates: Sequence[Message],
    raws: Sequence[bytes],
    dead: list[tuple[int, Message, str]],
    surely_past: datetime,
    now: datetime,
    future_margin: timedelta | None,
) -> list[int]:
    """msgspec decodes each message into a `Tweet`; the indices of the valid ones."""
    kept = []
    tweets = out.tweets
    for i, raw in enumerate(raws):
        try:
            tweet = decode_tweet(raw)
            if future_margin is not None and not tweet.created_at <= surely_past:
                check_not_future(tweet, received_at(candidates[i], now), future_margin)
        except InvalidTweet as invalid:
            dead.append((i, candidates[i], str(invalid)))
            continue
        tweets.append(tweet)
        kept.append(i)
    return kept


def decode_columns(
    out: Decoded,
    candidates: Sequence[Message],
    raws: Sequence[bytes],
    dead: list[tuple[int, Message, str]],
    surely_past: datetime,
    now: datetime,
    future_margin: timedelta | None,
) -> list[int] | None:
    """The compiled core decodes the messages into ``out.columns``; the indices of the valid
    ones, or None when it cannot (then the caller takes the Python path).

    The core takes only what it is sure msgspec takes alike (rust/vader_core/src/decode.rs)
    and hands back the rest, which msgspec decides here: a dead letter, or a valid tweet whose
    msgspec encoding (``v`` of the contract's canonical form: UTC, ``Z``) the core then reads
    in its place. The kept bytes stay the received ones (the lake's raw layer)."""
    assert CORE is not None
    values: list[bytes] = list(raws)
    kept = list(range(len(raws)))
    decoded = CORE.decode_tweets(values, MAX_MESSAGE_BYTES)
    if decoded[0]:
        refused: set[int] = set()
        for i in decoded[0]:
            try:
                values[i] = encode_tweet(decode_tweet(raws[i]))
            except InvalidTweet as invalid:
                dead.append((i, candidates[i], str(invalid)))
                refused.add(i)
        kept = [i for i in kept if i not in refused]
        decoded = CORE.decode_tweets([values[i] for i in kept], MAX_MESSAGE_BYTES)
        if decoded[0]:
            return None  # a valid tweet whose canonical form the core does not take either
    _, n, specs, texts, ids, authors, langs = decoded
    arrays = {
        name: _array(SCHEMA.field(name).type, n, spec)
        for name, spec in zip(CONTRACT_COLUMNS, specs, strict=True)
    }
    columns = TweetColumns(arrays, texts, langs, ids, authors)
    if future_margin is not None and n:
        limit = (surely_past - _EPOCH) // _MICROSECOND
        micros = arrays["created_at"].view(pa.int64()).to_numpy()
        refused_rows = []
        for j in np.flatnonzero(micros > limit).tolist():
            i = kept[j]
            try:
                check_not_future(decode_tweet(raws[i]), received_at(candidates[i], now),
                                 future_margin)  # fmt: skip
            except InvalidTweet as invalid:
                dead.append((i, candidates[i], str(invalid)))
                refused_rows.append(j)
        if refused_rows:
            gone = set(refused_rows)
            columns = columns.filter([j not in gone for j in range(n)])
            kept = [i for j, i in enumerate(kept) if j not in gone]
    out.columns = columns
    return kept


def _array(kind: pa.DataType, n: int, spec: tuple[bytes | None, ...]) -> pa.Array:
    """An Arrow array of the core's buffers: (validity, offsets, data, nulls) for strings,
    (validity, values, nulls) for the rest."""
    validity = None if spec[0] is None else pa.py_buffer(spec[0])
    buffers = [validity, *(pa.py_buffer(b) for b in spec[1:-1])]
    return pa.Array.from_buffers(kind, n, buffers, null_count=spec[-1])


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
    decoded.materialize()
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
        if decoded.columns is not None:
            table = score_table(
                decoded.columns, decoded.partitions, decoded.offsets, self.default, self.vader
            )
            if table is not None:
                return table
            decoded.materialize()
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
    One call into the compiled core scores the batch when it can (`score_table`); otherwise
    `score_tweets_python` does, with the same results.
    """
    if getattr(default, "columns", None) is not None:
        table = score_table(TweetColumns.of_tweets(tweets), partitions, offsets, default, vader)
        if table is not None:
            return table
    return score_tweets_python(tweets, partitions, offsets, default, vader)


def score_table(
    tweets: TweetColumns,
    partitions: Sequence[int],
    offsets: Sequence[int],
    default: Analyzer,
    vader: Analyzer,
) -> pa.Table | None:
    """`score_tweets` of tweets by columns, the batch scored in one call into the compiled core
    (`LearnedAnalyzer.columns`); None when the core cannot score it."""
    columns = getattr(default, "columns", None)
    texts = tweets.texts
    scored = columns(texts, tweets.langs, vader) if columns is not None else None
    if scored is None:
        return None
    n = len(texts)
    arrays = dict(tweets.arrays)
    arrays["coins"] = pa.array(coin_mentions_many(texts), pa.list_(pa.string()))
    # spam False and no campaign until the campaign detector flags the batch
    # (processor.campaigns)
    arrays["spam"] = pa.array([False] * n, pa.bool_())
    arrays["campaign_id"] = pa.nulls(n, pa.string())
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
