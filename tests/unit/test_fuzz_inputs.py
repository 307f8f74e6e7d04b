"""Property-based fuzzing of everything a hostile message reaches before a sink.

The decoder may only ever raise InvalidTweet (anything else would stop the processor on the
message, and again after every restart); coin matching and both analyzers never raise and keep
scores in range; the batch builder and the COPY renderer keep any text intact.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptosent.analysis.coins import COINS, coin_mentions
from cryptosent.analysis.sentiment import get_analyzer
from cryptosent.batch import SCHEMA
from cryptosent.model import InvalidTweet, Tweet, decode_tweet
from cryptosent.processor.transform import score_tweets
from cryptosent.sinks.postgres import to_copy_csv

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text that breaks parsers and renderers: quotes, separators, escapes, markers, emoji, RTL
NASTY = [
    '"', "'", ",", "\n", "\r\n", "\r", "\\", "\\.", "\\N", "\t", "{", "}", "NULL", "$$", ";",
    "--", "<script>", "![x](y)", "🚀", "❤️", "👍🏽", "👨‍👩‍👧", "\u200b", "\u202e", "\ufeff",
    "\u2028", "\x1b[31m", "\x7f", "$BTC", "#bitcoin", "Bitcoin Cash", "rug pull", "HODL",
    "not bad", "!!!", "??", ":)", "ALL CAPS", "'t",
]  # fmt: skip
no_nul_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
texts = st.lists(
    st.one_of(st.sampled_from(NASTY), st.text(no_nul_chars, max_size=12)), max_size=25
).map("".join)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=offsets
    ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.datetimes().map(datetime.isoformat),  # no offset
    st.text(max_size=30),
)
FIELDS = ["id", "text", "created_at", "author", "lang", "source", "retweet_of", "reply_to",
          "metrics", "v", "extra"]  # fmt: skip
messages = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=10), json_values),
        "text": st.one_of(texts, json_values),
        "created_at": st.one_of(timestamps, json_values),
        "author": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": json_values,
                    "followers": json_values,
                    "verified": json_values,
                    "username": json_values,
                },
            ),
            json_values,
        ),
        "metrics": st.one_of(
            st.dictionaries(st.sampled_from(["likes", "quotes"]), json_values), json_values
        ),
        "lang": json_values,
        "v": json_values,
        "extra": json_values,
    },
)


def check_decoded(tweet: Tweet) -> None:
    assert isinstance(tweet.id, str) and tweet.id
    assert isinstance(tweet.text, str) and "\x00" not in tweet.text
    assert tweet.created_at.utcoffset() == timedelta(0)


@FUZZ
@given(st.binary(max_size=300))
def test_decode_tweet_on_arbitrary_bytes_raises_only_invalid_tweet(raw: bytes) -> None:
    try:
        check_decoded(decode_tweet(raw))
    except InvalidTweet as err:
        assert str(err) and "\n" not in str(err)


@FUZZ
@given(messages, st.booleans())
def test_decode_tweet_on_json_like_objects_raises_only_invalid_tweet(
    message: dict[str, object], pretty: bool
) -> None:
    raw = json.dumps(message, indent=2 if pretty else None, ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )
    try:
        tweet = decode_tweet(raw)
    except InvalidTweet as err:
        assert str(err) and "\n" not in str(err)
        return
    check_decoded(tweet)
    assert tweet.text == message["text"]


@FUZZ
@given(st.integers(min_value=1, max_value=40_000), st.sampled_from(["[", '{"a":']))
def test_decode_tweet_on_deep_nesting_raises_only_invalid_tweet(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    raw = f'{{"id":"a","text":"b","created_at":"2026-01-01T00:00:00Z","x":{nested}}}'.encode()
    try:
        check_decoded(decode_tweet(raw))
    except InvalidTweet as err:
        assert "over the" in str(err) or "nested" in str(err)


@FUZZ
@given(texts)
def test_coin_mentions_never_raises_and_returns_known_tickers_once(text: str) -> None:
    found = coin_mentions(text)
    assert found == sorted(set(found))
    assert all(ticker in COINS for ticker in found)


def in_range(scores: tuple[float, float, float, float]) -> bool:
    compound, pos, neu, neg = scores
    return (
        all(math.isfinite(x) for x in scores)
        and -1.0 <= compound <= 1.0
        and all(0.0 <= x <= 1.0 for x in (pos, neu, neg))
    )


@FUZZ
@given(texts)
def test_both_analyzers_never_raise_and_keep_scores_in_range(text: str) -> None:
    for name in ("crypto", "vader"):
        scores = get_analyzer(name).scores(text)
        assert in_range(scores), (name, scores)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(texts, st.datetimes(min_value=datetime(1, 1, 2),
                                               max_value=datetime(9999, 12, 30),
                                               timezones=st.just(UTC))),
                min_size=1, max_size=20))  # fmt: skip
def test_batch_builder_and_copy_renderer_keep_every_text_intact(
    rows: list[tuple[str, datetime]],
) -> None:
    tweets = [Tweet(id=f"id-{i}-\"',\n", text=t, created_at=c) for i, (t, c) in enumerate(rows)]
    table = score_tweets(
        tweets, [0] * len(tweets), list(range(len(tweets))), get_analyzer("crypto"),
        get_analyzer("vader"),
    )  # fmt: skip
    assert table.schema == SCHEMA and table.num_rows == len(tweets)
    assert table.column("text").to_pylist() == [t for t, _ in rows]
    assert set(table.column("label").to_pylist()) <= {"positive", "neutral", "negative"}
    columns = [table.column(c).to_pylist() for c in ("compound", "pos", "neu", "neg")]
    assert all(in_range(r) for r in zip(*columns, strict=True))
    # PostgreSQL's COPY CSV reads quoted fields like Python's csv module does
    rendered = to_copy_csv(table).decode("utf-8")
    parsed = list(csv.reader(io.StringIO(rendered, newline="")))
    assert len(parsed) == len(tweets)
    names = SCHEMA.names
    for row, tweet in zip(parsed, tweets, strict=True):
        assert len(row) == len(names)
        assert row[names.index("id")] == tweet.id
        assert row[names.index("text")] == tweet.text
        coins = row[names.index("coins")]
        assert coins.startswith("{") and coins.endswith("}")
    # every string is quoted, so an empty text ("") never reads as NULL and a lone \. never as
    # COPY's end-of-data marker
    empty = pa.table({"text": ["", "\\."], "coins": [[], ["BTC"]]})
    assert to_copy_csv(empty) == b'"","{}"\n"\\.","{BTC}"\n'
