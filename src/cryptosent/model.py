"""The Kafka message contracts and their JSON codecs: tweets (`tweets`) and prices (`prices`).

Tweet: UTF-8 JSON object, key = tweet id. Required: ``id`` (string), ``text`` (string),
``created_at`` (RFC 3339, UTC). Optional: ``author``, ``lang``, ``source``, ``retweet_of``,
``reply_to``, ``metrics``, ``v`` (schema version). Unknown fields are ignored here (the lake's raw
layer keeps the exact bytes). msgspec decodes and type-checks in one pass, in C.

Price: one trade or ticker per message, UTF-8 JSON object, key = coin. Required: ``coin``
(canonical ticker of the coin catalogue), ``ts`` (RFC 3339, UTC), ``price`` (USD, > 0).
Optional: ``size`` (>= 0, in coins), ``source``, ``v``.
"""

from __future__ import annotations

import math
from collections.abc import Container
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

import msgspec

from cryptosent.errors import CryptosentError

SCHEMA_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 64 * 1024
FUTURE_MARGIN: Final = timedelta(minutes=10)
"""How far after its arrival a post may be dated (clocks drift; a year 2999 is a bug)."""
IN_THE_FUTURE: Final = "created_at in the future"


# Tweets, authors and metrics hold only strings, numbers, datetimes and each other, so they can
# never be part of a reference cycle: gc=False keeps the garbage collector from tracking (and
# walking) the millions of them a processor decodes (it halved `transform.decode`'s CPU).

# counters must fit PostgreSQL's bigint (and Arrow's int64)
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class Author(msgspec.Struct, omit_defaults=True, gc=False):
    """Who posted a tweet, as far as the source knows."""

    id: str | None = None
    username: str | None = None
    followers: Count | None = None
    verified: bool | None = None


class Metrics(msgspec.Struct, omit_defaults=True, gc=False):
    """Public engagement counters at the time the source saw the tweet."""

    likes: Count | None = None
    retweets: Count | None = None
    replies: Count | None = None
    quotes: Count | None = None


class Tweet(msgspec.Struct, omit_defaults=True, gc=False):
    """One post about crypto, as it travels on the `tweets` topic."""

    id: str
    text: str
    created_at: datetime
    author: Author | None = None
    lang: str | None = None
    source: str | None = None
    retweet_of: str | None = None
    reply_to: str | None = None
    metrics: Metrics | None = None
    v: int = SCHEMA_VERSION


class InvalidTweet(CryptosentError, ValueError):
    """A message that breaks the contract; ``str(err)`` is the one-line reason for the DLQ.

    Neither transient nor fatal: the processor dead-letters the message and goes on."""


_decoder: Final = msgspec.json.Decoder(Tweet)
_encoder: Final = msgspec.json.Encoder()


def decode_tweet(raw: bytes) -> Tweet:
    """Decode and validate one message; raise InvalidTweet with a one-line reason."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidTweet(f"message is {len(raw)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        tweet = _decoder.decode(raw)
    except msgspec.ValidationError as err:
        raise InvalidTweet(f"schema: {err}") from None
    except UnicodeDecodeError as err:
        raise InvalidTweet(f"not UTF-8: {err}") from None
    except msgspec.DecodeError as err:
        raise InvalidTweet(f"not JSON: {err}") from None
    except RecursionError:
        # msgspec recurses per nesting level, also inside ignored fields: a 64 KiB message of
        # brackets would otherwise escape as RecursionError and stop the processor on it forever
        raise InvalidTweet("not JSON: nested too deeply") from None
    if not tweet.id:
        raise InvalidTweet("schema: `id` is empty")
    # msgspec gives `Z` and `+00:00` the `UTC` singleton: one identity test for most posts
    utc = tweet.created_at.tzinfo is UTC
    if not utc and tweet.created_at.tzinfo is None:
        raise InvalidTweet("schema: `created_at` has no UTC offset (RFC 3339 requires one)")
    if "\x00" in tweet.text or "\x00" in tweet.id:
        # PostgreSQL text cannot hold NUL; storing a altered text would break "byte for byte".
        raise InvalidTweet("schema: `text` or `id` contains a NUL character")
    if not utc and tweet.created_at.utcoffset():
        try:
            tweet.created_at = tweet.created_at.astimezone(UTC)
        except OverflowError:
            # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC: Python cannot hold it
            raise InvalidTweet("schema: `created_at` out of range in UTC") from None
    return tweet


def check_not_future(tweet: Tweet, received: datetime, margin: timedelta = FUTURE_MARGIN) -> None:
    """Refuse a post dated more than margin after it was received (InvalidTweet, reason
    `created_at in the future`); old dates stay valid: replays of archives are legitimate."""
    if tweet.created_at - received > margin:
        raise InvalidTweet(
            f"{IN_THE_FUTURE} ({tweet.created_at.isoformat()}, received "
            f"{received.astimezone(UTC).isoformat()}, margin {margin.total_seconds():.0f} s)"
        )


def encode_tweet(tweet: Tweet) -> bytes:
    """Encode a tweet as compact UTF-8 JSON (created_at in RFC 3339 UTC)."""
    return _encoder.encode(tweet)


# --- prices ------------------------------------------------------------------------------------

MAX_PRICE_MESSAGE_BYTES: Final = 4 * 1024
"""A price message is about 100 bytes; anything near this is not one."""


class PriceTick(msgspec.Struct, omit_defaults=True):
    """One trade (or ticker update) of a coin, as it travels on the `prices` topic."""

    coin: str
    """Canonical ticker of the coin catalogue (``BTC``), whatever the exchange calls it."""
    ts: datetime
    """When the trade happened (the exchange's time), UTC."""
    price: float
    """In USD (USDT and USDC quotes count as USD), > 0."""
    size: float | None = None
    """Traded amount in coins, >= 0; absent for ticker updates that carry none."""
    source: str | None = None
    """``mock``, ``replay``, ``coinbase``, ``kraken``, ``binance``."""
    v: int = SCHEMA_VERSION


class InvalidPrice(CryptosentError, ValueError):
    """A price message that breaks the contract; ``str(err)`` is the one-line reason for the DLQ.

    Neither transient nor fatal: the processor dead-letters the message and goes on."""


_price_decoder: Final = msgspec.json.Decoder(PriceTick)


def decode_price(raw: bytes, known_coins: Container[str]) -> PriceTick:
    """Decode and validate one price message; raise InvalidPrice with a one-line reason.

    ``known_coins`` holds the canonical tickers (the coin catalogue, which this foundation module
    does not import): a coin outside it is refused."""
    if len(raw) > MAX_PRICE_MESSAGE_BYTES:
        raise InvalidPrice(
            f"message is {len(raw)} bytes, over the {MAX_PRICE_MESSAGE_BYTES}-byte limit"
        )
    try:
        tick = _price_decoder.decode(raw)
    except msgspec.ValidationError as err:
        raise InvalidPrice(f"schema: {err}") from None
    except UnicodeDecodeError as err:
        raise InvalidPrice(f"not UTF-8: {err}") from None
    except msgspec.DecodeError as err:
        raise InvalidPrice(f"not JSON: {err}") from None
    except RecursionError:
        raise InvalidPrice("not JSON: nested too deeply") from None
    if tick.coin not in known_coins:
        shown = tick.coin if len(tick.coin) <= 20 else tick.coin[:20] + "..."
        raise InvalidPrice(f"schema: unknown coin {shown!r} (not a ticker of the coin catalogue)")
    if not (math.isfinite(tick.price) and tick.price > 0):
        raise InvalidPrice(f"schema: `price` is {tick.price!r}; it must be a finite number > 0")
    if tick.size is not None and not (math.isfinite(tick.size) and tick.size >= 0):
        raise InvalidPrice(f"schema: `size` is {tick.size!r}; it must be a finite number >= 0")
    if tick.ts.tzinfo is None:
        raise InvalidPrice("schema: `ts` has no UTC offset (RFC 3339 requires one)")
    if tick.ts.utcoffset():
        try:
            tick.ts = tick.ts.astimezone(UTC)
        except OverflowError:
            raise InvalidPrice("schema: `ts` out of range in UTC") from None
    return tick


def encode_price(tick: PriceTick) -> bytes:
    """Encode a price as compact UTF-8 JSON (ts in RFC 3339 UTC)."""
    return _encoder.encode(tick)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (what sources stamp as event time)."""
    return datetime.now(UTC)
