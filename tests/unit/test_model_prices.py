"""The price message contract (`model.PriceTick`): what decodes, and the one-line reason for what
does not (the processor dead-letters it with that reason)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cryptosent.ingest import to_message
from cryptosent.model import InvalidPrice, PriceTick, decode_price, encode_price

COINS = frozenset({"BTC", "ETH", "SOL"})
TS = datetime(2026, 1, 1, 12, 0, 1, 250_000, tzinfo=UTC)


def test_round_trip_and_message_key() -> None:
    tick = PriceTick(coin="BTC", ts=TS, price=95_000.5, size=0.25, source="coinbase")
    raw = encode_price(tick)
    assert json.loads(raw) == {
        "coin": "BTC", "ts": "2026-01-01T12:00:01.250000Z", "price": 95000.5, "size": 0.25,
        "source": "coinbase",
    }  # fmt: skip
    assert decode_price(raw, COINS) == tick
    assert to_message(tick) == (b"BTC", raw)


def test_minimal_message_offsets_and_extra_fields() -> None:
    tick = decode_price(b'{"coin":"ETH","ts":"2026-01-01T13:00:00+01:00","price":3300}', COINS)
    assert tick == PriceTick(coin="ETH", ts=datetime(2026, 1, 1, 12, tzinfo=UTC), price=3300.0)
    assert tick.ts.utcoffset() is not None and not tick.ts.utcoffset()
    # unknown fields are ignored, as for tweets
    raw = b'{"coin":"SOL","ts":"2026-01-01T12:00:00Z","price":1.5,"size":0,"venue":"x"}'
    assert decode_price(raw, COINS).size == 0.0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":1,"source":"\xff"}', "not UTF-8"),
        (b"[1, 2]", "schema: Expected `object`, got `array`"),
        (b'{"ts":"2026-01-01T12:00:00Z","price":1}', "missing required field `coin`"),
        (b'{"coin":"BTC","price":1}', "missing required field `ts`"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z"}', "missing required field `price`"),
        (b'{"coin":7,"ts":"2026-01-01T12:00:00Z","price":1}', "Expected `str`, got `int`"),
        (b'{"coin":"BTC","ts":"yesterday","price":1}', "Invalid RFC3339"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":"1"}', "Expected `float`, got `str`"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":true}', "got `bool`"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":0}', "`price` is 0.0"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":-3}', "must be a finite number > 0"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":1e999}', "out of range"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":1,"size":-1}', "`size` is -1.0"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":1,"size":"2"}', "got `str`"),
        (b'{"coin":"DOGGO","ts":"2026-01-01T12:00:00Z","price":1}', "unknown coin 'DOGGO'"),
        (b'{"coin":"btc","ts":"2026-01-01T12:00:00Z","price":1}', "unknown coin 'btc'"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00","price":1}', "`ts` has no UTC offset"),
        (b'{"coin":"BTC","ts":"0001-01-01T00:00:00+01:00","price":1}', "`ts` out of range"),
        (b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":1,"x":"' + b"a" * 5000 + b'"}',
         "over the 4096-byte limit"),
    ],
)  # fmt: skip
def test_invalid_messages_give_one_line_reasons(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidPrice) as caught:
        decode_price(raw, COINS)
    message = str(caught.value)
    assert reason in message
    assert "\n" not in message


def test_deep_nesting_in_an_ignored_field_is_decoded_or_refused() -> None:
    nested = b"[" * 2000 + b"]" * 2000
    raw = b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":1,"x":' + nested + b"}"
    try:
        assert decode_price(raw, COINS).price == 1.0
    except InvalidPrice as err:
        assert "nested" in str(err)
