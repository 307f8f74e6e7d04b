"""The price stream's sinks: per-coin price minutes in PostgreSQL (`price_minute`) and the
lake's `prices/` layer (Parquet, Hive-partitioned by the trade's hour).

A price batch is a `ScoredBatch` whose table has `PRICE_SCHEMA` (one row per valid trade, with
its Kafka partition and offset), so the checkpoint trims, flushes and commits it exactly as it
does tweets, and each sink stores its rows with its offsets:

- `PriceMinuteSink` folds a batch into one `MinuteBar` per (coin, minute) (`minute_bars`) and
  merges them into `price_minute` in the transaction that advances its offsets. A replay after
  a crash is skipped by the offsets; a late trade for a minute already written merges exactly
  (`MinuteBar.merge`, the same rule as the SQL upsert): open and close come from the earliest and
  latest trade in the order (ts, partition, offset), high / low / volume / trades combine.
- `PriceLakeSink` is the lake sink (buffer, intent log, offsets) rendering `prices/` objects.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cryptosent.batch import ScoredBatch
from cryptosent.config import Settings
from cryptosent.runtime import Retry
from cryptosent.sinks.base import Sink, Written
from cryptosent.sinks.database import NO_JIT, Database
from cryptosent.sinks.lake import Lake, LakeBuffer, LakeSink, PendingObjects, lake_location
from cryptosent.sinks.offsets import OffsetStore

# One valid price message, as the lake stores it and the sinks receive it.
PRICE_SCHEMA = pa.schema(
    [
        ("coin", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("source", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

OrderKey = tuple[int, int, int]
"""(ts in microseconds since the epoch, Kafka partition, Kafka offset): the order of trades."""


@dataclass(frozen=True)
class MinuteBar:
    """One coin's trades in one UTC minute: OHLC, volume, count and the order keys of the
    trades that gave open and close."""

    coin: str
    minute_us: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    open_key: OrderKey
    close_key: OrderKey

    @property
    def minute(self) -> datetime:
        """The minute's start, UTC."""
        return _EPOCH + timedelta(microseconds=self.minute_us)

    def merge(self, other: MinuteBar) -> MinuteBar:
        """Both bars' trades as one bar (order-independent: a late trade lands exactly)."""
        first = self if self.open_key <= other.open_key else other
        last = self if self.close_key >= other.close_key else other
        return MinuteBar(
            self.coin, self.minute_us, first.open, max(self.high, other.high),
            min(self.low, other.low), last.close, self.volume + other.volume,
            self.trades + other.trades, first.open_key, last.close_key,
        )  # fmt: skip

    def row(self) -> tuple[object, ...]:
        """The bar as a `price_minute` row (staging column order)."""
        (open_ts, open_p, open_o), (close_ts, close_p, close_o) = self.open_key, self.close_key
        return (
            self.coin, self.minute, self.open, self.high, self.low, self.close, self.volume,
            self.trades, _time(open_ts), open_p, open_o, _time(close_ts), close_p, close_o,
        )  # fmt: skip


def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


# the grouped columns, in MinuteBar's field order
_BAR_AGGREGATES = (
    "coin", "minute", "price_first", "price_max", "price_min", "price_last", "size_sum",
    "price_count", "ts_first", "partition_first", "offset_first", "ts_last", "partition_last",
    "offset_last",
)  # fmt: skip


def minute_bars(table: pa.Table) -> list[MinuteBar]:
    """One bar per (coin, minute) of a `PRICE_SCHEMA` table, sorted by coin and minute; the same
    bars as merging every trade's own bar (`MinuteBar.merge`), computed by Arrow."""
    if not table.num_rows:
        return []
    # the trade's order key: integer microseconds, exact (timestamptz keeps microseconds too)
    micros = pc.cast(table.column("ts"), pa.int64())
    minutes = pc.cast(pc.floor_temporal(table.column("ts"), unit="minute"), pa.int64())
    trades = pa.table(
        {
            "coin": table.column("coin"),
            "minute": minutes,
            "ts": micros,
            "partition": table.column("kafka_partition"),
            "offset": table.column("kafka_offset"),
            "price": table.column("price"),
            "size": pc.fill_null(table.column("size"), 0.0),
        }
    ).sort_by([("coin", "ascending"), ("ts", "ascending"), ("partition", "ascending"),
               ("offset", "ascending")])  # fmt: skip
    # in order, one thread: "first" and "last" are the earliest and latest trade of each group
    grouped = trades.group_by(["coin", "minute"], use_threads=False).aggregate(
        [("price", "first"), ("price", "max"), ("price", "min"), ("price", "last"),
         ("size", "sum"), ("price", "count"),
         ("ts", "first"), ("partition", "first"), ("offset", "first"),
         ("ts", "last"), ("partition", "last"), ("offset", "last")]
    )  # fmt: skip
    rows = zip(*(grouped.column(name).to_pylist() for name in _BAR_AGGREGATES), strict=True)
    bars = [
        MinuteBar(coin, minute, o, h, low, close, volume, n, (ts0, p0, o0), (ts1, p1, o1))
        for coin, minute, o, h, low, close, volume, n, ts0, p0, o0, ts1, p1, o1 in rows
    ]
    return sorted(bars, key=lambda bar: (bar.coin, bar.minute_us))


# ---- PostgreSQL: price_minute -----------------------------------------------------------------

_BAR_COLUMNS = (
    "coin, minute, open, high, low, close, volume, trades, "
    "open_ts, open_partition, open_offset, close_ts, close_partition, close_offset"
)
_STAGING = (
    "create temp table if not exists price_staging on commit delete rows as select "  # noqa: S608 - constants
    f"{_BAR_COLUMNS} from price_minute with no data"
)
_COPY = f"copy price_staging ({_BAR_COLUMNS}) from stdin"
_EARLIER = (
    "(excluded.open_ts, excluded.open_partition, excluded.open_offset)"
    " < (m.open_ts, m.open_partition, m.open_offset)"
)
_LATER = (
    "(excluded.close_ts, excluded.close_partition, excluded.close_offset)"
    " > (m.close_ts, m.close_partition, m.close_offset)"
)
# every SET expression reads the stored row (m) as it was: the four open_* columns follow one
# comparison, the four close_* another (MinuteBar.merge in SQL)
_MERGE = ",\n    ".join(
    [f"{c} = case when {_EARLIER} then excluded.{c} else m.{c} end"
     for c in ("open", "open_ts", "open_partition", "open_offset")]
    + [f"{c} = case when {_LATER} then excluded.{c} else m.{c} end"
       for c in ("close", "close_ts", "close_partition", "close_offset")]
    + ["high = greatest(m.high, excluded.high)", "low = least(m.low, excluded.low)",
       "volume = m.volume + excluded.volume", "trades = m.trades + excluded.trades",
       "updated_at = now()"]
)  # fmt: skip
_UPSERT = f"""
insert into price_minute as m ({_BAR_COLUMNS})
select {_BAR_COLUMNS} from price_staging
on conflict (coin, minute) do update set
    {_MERGE}
"""  # noqa: S608 - built from constants only


class PriceMinuteSink(Sink):
    """Merges each batch's minute bars into `price_minute` with its offsets, atomically.

    A batch holds a few rows per coin and minute, so it is written at once, in `add`."""

    name = "postgres"

    def __init__(self, database: Database, offsets: OffsetStore, retry: Retry) -> None:
        self.database = database
        self.offsets = offsets
        self.retry = retry
        self._done: list[Written] = []

    def resume(self, partitions: Sequence[int]) -> dict[int, int]:
        """The stored offsets."""

        def load() -> dict[int, int]:
            with self.database.transaction() as conn:
                return self.offsets.load(conn, self.name, partitions)

        return self.retry(self.name, load)

    def add(self, batch: ScoredBatch) -> None:
        """Store the batch's minute bars and offsets (retrying outages)."""
        if not batch.ranges:
            return
        started = time.monotonic()
        bars = minute_bars(batch.table)
        self.retry(self.name, lambda: self.write(bars, batch))
        self._done.append(
            Written(
                dict(batch.ranges), rows=batch.size, new=len(bars),
                seconds=time.monotonic() - started,
            )
        )  # fmt: skip

    def write(self, bars: Iterable[MinuteBar], batch: ScoredBatch) -> None:
        """One attempt: advance the offsets and merge the bars in one transaction."""
        with self.database.transaction() as conn:
            self.offsets.advance(conn, self.name, batch.ranges)
            rows = [bar.row() for bar in bars]
            if not rows:
                return
            with conn.cursor() as cur:
                with cur.copy(_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_UPSERT.encode())

    def completed(self) -> list[Written]:
        """The writes since the last call (each add writes at once)."""
        done, self._done = self._done, []
        return done

    def flush(self) -> list[Written]:
        """Nothing is buffered."""
        return self.completed()

    def discard(self, partitions: Collection[int]) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Close the connection."""
        self.database.close()


# ---- the lake: prices/ ------------------------------------------------------------------------


def render_prices(buffer: LakeBuffer, topic: str) -> PendingObjects:
    """The buffer as `prices/dt=YYYY-MM-DD/hour=HH/<topic>-pNNN-<first>-<last>.parquet`
    objects: one per Kafka partition and trade hour."""
    blobs: dict[str, bytes] = {}
    if buffer.rows:
        table = pa.concat_tables(buffer.tables)
        hours = pc.strftime(table.column("ts"), format="dt=%Y-%m-%d/hour=%H")
        groups: dict[tuple[int, str], list[int]] = defaultdict(list)
        for index, (partition, hour) in enumerate(
            zip(table.column("kafka_partition").to_pylist(), hours.to_pylist(), strict=True)
        ):
            groups[(partition, hour)].append(index)
        for (partition, hour), indexes in sorted(groups.items()):
            first, last = buffer.ranges[partition]
            parquet = io.BytesIO()
            pq.write_table(table.take(pa.array(indexes, pa.int64())), parquet, compression="zstd")
            name = f"{topic}-p{partition:03d}-{first:012d}-{last:012d}"
            blobs[f"prices/{hour}/{name}.parquet"] = parquet.getvalue()
    return PendingObjects(blobs, dict(buffer.ranges), buffer.rows)


class PriceLakeSink(LakeSink):
    """The lake sink (buffer, intent log, offsets) writing the `prices/` layer."""

    def objects(self, buffer: LakeBuffer) -> PendingObjects:
        """Prices, not tweets: Parquet only (the messages are the rows)."""
        return render_prices(buffer, self.offsets.topic)


# ---- wiring -----------------------------------------------------------------------------------


def open_price_sinks(
    settings: Settings, group: str, retry: Callable[[], Retry], names: Collection[str]
) -> list[Sink]:
    """The price stream's sinks (`postgres`, `lake`; those in names), each with its own retry;
    offsets and intents are kept under consumer group `group` and the prices topic."""
    sinks: list[Sink] = []
    if "postgres" in names:
        r = retry()
        database = Database(
            settings.database_dsn(), setup=[_STAGING, NO_JIT], application_name="cryptosent-prices",
            stop=r.stop,
        )  # fmt: skip
        sinks.append(PriceMinuteSink(database, OffsetStore(group, settings.prices_topic), r))
    if "lake" in names:
        r = retry()
        sinks.append(
            PriceLakeSink(
                Lake(lake_location(settings)),
                Database(
                    settings.database_dsn(), application_name="cryptosent-prices-lake",
                    stop=r.stop,
                ),
                OffsetStore(group, settings.prices_topic),
                r,
                flush_interval_s=settings.lake_flush_seconds,
                flush_rows=settings.lake_flush_rows,
            )
        )  # fmt: skip
    return sinks
