"""A processed batch in columnar form: the scored tweets as one Arrow table, plus where they came
from. Built once per consumed batch and handed, unchanged, to every sink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from cryptosent.analysis.coins import coin_mentions
from cryptosent.analysis.sentiment import Analyzer, label, score_batch
from cryptosent.model import Tweet

# pyarrow loads pandas (about a second) the first time it builds a tz-aware timestamp array:
# pay that when the processor starts, not in the first batch's latency
pa.array([0], pa.timestamp("us", tz="UTC"))

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# The `tweets` columns, in table order (PostgreSQL's COPY and the Parquet files share it).
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("text", pa.string()),
        ("author_id", pa.string()),
        ("author_username", pa.string()),
        ("author_followers", pa.int64()),
        ("author_verified", pa.bool_()),
        ("lang", pa.string()),
        ("source", pa.string()),
        ("retweet_of", pa.string()),
        ("reply_to", pa.string()),
        ("compound", pa.float64()),
        ("pos", pa.float64()),
        ("neu", pa.float64()),
        ("neg", pa.float64()),
        ("label", pa.string()),
        ("vader_compound", pa.float64()),
        ("vader_pos", pa.float64()),
        ("vader_neu", pa.float64()),
        ("vader_neg", pa.float64()),
        ("vader_label", pa.string()),
        ("coins", pa.list_(pa.string())),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)


@dataclass
class ScoredBatch:
    """Valid tweets of one consumed batch, scored, with their exact received bytes."""

    table: pa.Table
    raw: list[bytes]
    # partition -> (first offset, last offset) of every message consumed, valid or not
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of valid tweets."""
        return int(self.table.num_rows)


def score_tweets(
    tweets: Sequence[Tweet],
    partitions: Sequence[int],
    offsets: Sequence[int],
    crypto: Analyzer,
    vader: Analyzer,
) -> pa.Table:
    """Score tweets with both analyzers and find their coins; return the columnar table."""
    n = len(tweets)
    cols: dict[str, list[object]] = {name: [None] * n for name in SCHEMA.names}
    texts = [tweet.text for tweet in tweets]
    crypto_all = score_batch(crypto, texts)
    vader_all = score_batch(vader, texts)
    for i, (tweet, c, v) in enumerate(zip(tweets, crypto_all, vader_all, strict=True)):
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
        cols["label"][i] = label(c[0])
        cols["vader_compound"][i], cols["vader_pos"][i], cols["vader_neu"][i] = v[:3]
        cols["vader_neg"][i] = v[3]
        cols["vader_label"][i] = label(v[0])
        cols["coins"][i] = coin_mentions(texts[i])
    cols["kafka_partition"] = list(partitions)
    cols["kafka_offset"] = list(offsets)
    return pa.Table.from_pydict(cols, schema=SCHEMA)
