"""The price stream without servers: decoding price messages, minute bars and their merging
(late and out-of-order trades), and the lake's prices/ objects."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from fakes import FakeMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosent.batch import ScoredBatch
from cryptosent.processor.prices import decode_prices
from cryptosent.sinks.lake import LakeBuffer
from cryptosent.sinks.prices import PRICE_SCHEMA, MinuteBar, minute_bars, render_prices

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
KNOWN = {"BTC", "ETH", "SOL"}


def message(partition: int, offset: int, body: object) -> FakeMessage:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return FakeMessage(partition, offset, value)


def price(coin: str, seconds: float, value: float, size: float | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "coin": coin,
        "ts": (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
        "price": value,
    }
    if size is not None:
        body["size"] = size
    return body


def table(trades: list[tuple[str, float, float, float | None, int, int]]) -> pa.Table:
    """(coin, seconds after T0, price, size, partition, offset) rows as a PRICE_SCHEMA table."""
    micros = [
        (T0 + timedelta(seconds=s) - EPOCH) // timedelta(microseconds=1) for _, s, *_ in trades
    ]
    return pa.Table.from_pydict(
        {
            "coin": [t[0] for t in trades],
            "ts": micros,
            "price": [t[2] for t in trades],
            "size": [t[3] for t in trades],
            "source": ["test"] * len(trades),
            "kafka_partition": [t[4] for t in trades],
            "kafka_offset": [t[5] for t in trades],
        },
        schema=PRICE_SCHEMA,
    )


def test_decode_prices_keeps_valid_trades_and_dead_letters_the_rest_with_reasons() -> None:
    messages = [
        message(0, 10, price("BTC", 1.5, 95000.5, 0.25)),
        message(0, 11, b"not json"),
        message(0, 12, price("DOGE", 2, 0.1)),  # not in the known coins given
        message(0, 13, price("ETH", 3, -1)),
        FakeMessage(0, 14, None),
        message(3, 7, price("ETH", 4, 3000.0)),
        message(3, 8, {**price("SOL", 0, 150.0), "ts": "2026-01-01T14:00:00Z"}),  # 1 h ahead
    ]
    decoded = decode_prices(messages, KNOWN, timedelta(minutes=10), now=NOW)
    batch = decoded.batch
    assert batch.ranges == {0: (10, 14), 3: (7, 8)}
    assert batch.table.column("coin").to_pylist() == ["BTC", "ETH"]
    assert batch.table.column("price").to_pylist() == [95000.5, 3000.0]
    assert batch.table.column("size").to_pylist() == [0.25, None]
    assert batch.table.column("kafka_offset").to_pylist() == [10, 7]
    assert batch.table.column("ts").to_pylist() == [
        T0 + timedelta(seconds=1.5), T0 + timedelta(seconds=4)
    ]  # fmt: skip
    assert len(batch.raw) == 2 and json.loads(batch.raw[0])["coin"] == "BTC"
    reasons = [(m.offset(), reason) for m, reason in decoded.dead]
    assert [offset for offset, _ in reasons] == [11, 12, 13, 14, 8]
    assert reasons[0][1].startswith("not JSON: ")
    assert reasons[1][1] == "schema: unknown coin 'DOGE' (not a ticker of the coin catalogue)"
    assert reasons[2][1] == "schema: `price` is -1.0; it must be a finite number > 0"
    assert reasons[3][1] == "empty message (no value)"
    assert reasons[4][1] == (
        "ts in the future (2026-01-01T14:00:00+00:00, received 2026-01-01T13:00:00+00:00, "
        "margin 600 s)"
    )


def test_a_batch_of_only_invalid_messages_still_covers_their_offsets() -> None:
    decoded = decode_prices([message(2, 5, b"{}")], KNOWN, None, now=NOW)
    assert decoded.batch.size == 0 and decoded.batch.ranges == {2: (5, 5)}
    assert decoded.dead[0][1].startswith("schema: Object missing required field")


def test_minute_bars_take_open_and_close_by_trade_time_not_arrival() -> None:
    # arrival (offset) order differs from trade time; two trades share ts 30 s (offsets 3, 5)
    bars = minute_bars(
        table(
            [
                ("BTC", 45, 101.0, 0.5, 1, 0),
                ("BTC", 10, 100.0, 0.25, 1, 1),
                ("BTC", 59.999999, 99.0, None, 1, 2),
                ("BTC", 30, 105.0, 1.0, 1, 3),
                ("BTC", 61, 200.0, 2.0, 1, 4),  # next minute
                ("BTC", 30, 98.0, 0.125, 1, 5),
                ("ETH", 10, 3000.0, 4.0, 2, 0),
            ]
        )
    )
    minute = (T0 - EPOCH) // timedelta(microseconds=1)
    assert [(b.coin, b.minute) for b in bars] == [
        ("BTC", T0), ("BTC", T0 + timedelta(minutes=1)), ("ETH", T0)
    ]  # fmt: skip
    first = bars[0]
    assert (first.open, first.high, first.low, first.close) == (100.0, 105.0, 98.0, 99.0)
    assert (first.volume, first.trades) == (1.875, 5)
    assert first.open_key == (minute + 10_000_000, 1, 1)
    assert first.close_key == (minute + 59_999_999, 1, 2)
    assert (bars[1].open, bars[1].close, bars[1].volume, bars[1].trades) == (200.0, 200.0, 2.0, 1)
    assert (bars[2].open, bars[2].close, bars[2].trades) == (3000.0, 3000.0, 1)


def test_equal_trade_times_are_ordered_by_partition_then_offset() -> None:
    bars = minute_bars(
        table([("SOL", 5, 1.0, 1.0, 2, 9), ("SOL", 5, 2.0, 1.0, 1, 50), ("SOL", 5, 3.0, 1.0, 2, 3)])
    )
    assert (bars[0].open, bars[0].close) == (2.0, 1.0)  # (1, 50) first, (2, 9) last


def test_a_late_trade_merged_into_a_written_minute_gives_the_bar_of_all_trades() -> None:
    written = minute_bars(table([("BTC", 20, 100.0, 1.0, 0, 0), ("BTC", 40, 110.0, 1.0, 0, 1)]))
    late_open = minute_bars(table([("BTC", 5, 90.0, 0.5, 0, 2)]))
    late_middle = minute_bars(table([("BTC", 30, 120.0, 0.25, 0, 3)]))
    merged = written[0].merge(late_open[0]).merge(late_middle[0])
    assert (merged.open, merged.high, merged.low, merged.close) == (90.0, 120.0, 90.0, 110.0)
    assert (merged.volume, merged.trades) == (2.75, 4)
    all_at_once = minute_bars(
        table(
            [("BTC", 20, 100.0, 1.0, 0, 0), ("BTC", 40, 110.0, 1.0, 0, 1),
             ("BTC", 5, 90.0, 0.5, 0, 2), ("BTC", 30, 120.0, 0.25, 0, 3)]
        )
    )  # fmt: skip
    assert merged == all_at_once[0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 179),  # seconds: three minutes
            st.integers(1, 64),  # price in 1/8 steps: exact sums in any order
            st.integers(0, 16),
        ),
        min_size=1,
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_merging_batches_in_any_order_equals_one_batch(
    trades: list[tuple[int, int, int]], rng: random.Random
) -> None:
    rows = [("ETH", float(s), p / 8, z / 8, 0, offset) for offset, (s, p, z) in enumerate(trades)]
    expected = {(b.coin, b.minute_us): b for b in minute_bars(table(rows))}
    shuffled = rows[:]
    rng.shuffle(shuffled)
    cut = sorted(rng.sample(range(len(shuffled) + 1), k=min(3, len(shuffled) + 1)))
    parts = [shuffled[a:b] for a, b in zip([0, *cut], [*cut, len(shuffled)], strict=True)]
    merged: dict[tuple[str, int], MinuteBar] = {}
    for part in parts:
        if not part:
            continue
        for bar in minute_bars(table(part)):
            key = (bar.coin, bar.minute_us)
            merged[key] = bar if key not in merged else merged[key].merge(bar)
    assert merged == expected


def test_prices_render_as_hive_partitioned_parquet_per_partition_and_hour() -> None:
    buffer = LakeBuffer()
    rows = [
        ("BTC", 10, 100.0, 1.0, 0, 40),
        ("BTC", 3600 + 5, 101.0, None, 0, 41),  # 13:00, the next hour
        ("ETH", 20, 3000.0, 2.0, 4, 7),
    ]
    t = table(rows)
    buffer.add(ScoredBatch(t, [b"x"] * 3, {0: (40, 42), 4: (7, 7)}))  # offset 42: a dead letter
    pending = render_prices(buffer, "prices")
    assert sorted(pending.blobs) == [
        "prices/dt=2026-01-01/hour=12/prices-p000-000000000040-000000000042.parquet",
        "prices/dt=2026-01-01/hour=12/prices-p004-000000000007-000000000007.parquet",
        "prices/dt=2026-01-01/hour=13/prices-p000-000000000040-000000000042.parquet",
    ]
    assert pending.ranges == {0: (40, 42), 4: (7, 7)} and pending.rows == 3
    key = "prices/dt=2026-01-01/hour=13/prices-p000-000000000040-000000000042.parquet"
    stored = pq.read_table(io.BytesIO(pending.blobs[key]))
    assert stored.schema == PRICE_SCHEMA
    assert stored.to_pylist() == [
        {"coin": "BTC", "ts": T0 + timedelta(seconds=3605), "price": 101.0, "size": None,
         "source": "test", "kafka_partition": 0, "kafka_offset": 41}
    ]  # fmt: skip


def test_the_future_is_judged_from_the_kafka_timestamp_when_there_is_one() -> None:
    sent = T0 + timedelta(minutes=20)  # reached Kafka 40 minutes before NOW
    millis = (sent - EPOCH) // timedelta(milliseconds=1)
    early = FakeMessage(1, 0, json.dumps(price("BTC", 30 * 60, 1.0)).encode(), (1, millis))
    late = FakeMessage(1, 1, json.dumps(price("BTC", 31 * 60, 1.0)).encode(), (1, millis))
    decoded = decode_prices([early, late], KNOWN, timedelta(minutes=10), now=NOW)
    assert decoded.batch.table.column("kafka_offset").to_pylist() == [0]  # 10 min after: kept
    assert [(m.offset(), r) for m, r in decoded.dead] == [
        (1, "ts in the future (2026-01-01T12:31:00+00:00, received 2026-01-01T12:20:00+00:00, "
            "margin 600 s)")
    ]  # fmt: skip
