"""PostgreSQL sink: tweets, coin mentions and per-minute aggregates in one transaction with the
consumed offsets, so a replay after any crash neither loses nor double-counts a tweet.

Rows arrive by COPY (CSV rendered by Arrow, no per-row Python) into a temporary staging table;
one statement then inserts the new tweets (a known id is skipped), their coin mentions, and adds
exactly the inserted rows to `coin_minute`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import datetime

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cryptosent.analysis.alerts import Alert, CoinMinute
from cryptosent.batch import SCHEMA

POSTGRES = "postgres"
LAKE = "lake"

_COLUMNS = ", ".join(SCHEMA.names)
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=8192)

_INSERT_BATCH = f"""
with ins as (
    insert into tweets ({_COLUMNS})
    select distinct on (id) {_COLUMNS} from staging order by id, kafka_partition, kafka_offset
    on conflict (id) do nothing
    returning id, created_at, coins, label, compound, vader_label, vader_compound
), mentions as (
    insert into tweet_coins (coin, tweet_id, created_at)
    select coin, id, created_at from ins, unnest(coins) as coin
    on conflict do nothing
    returning 1
), minutes as (
    insert into coin_minute as m (coin, minute, tweets, positive, neutral, negative, compound_sum,
                                  vader_positive, vader_neutral, vader_negative,
                                  vader_compound_sum)
    select coin, date_trunc('minute', created_at), count(*),
           count(*) filter (where label = 'positive'),
           count(*) filter (where label = 'neutral'),
           count(*) filter (where label = 'negative'),
           sum(compound),
           count(*) filter (where vader_label = 'positive'),
           count(*) filter (where vader_label = 'neutral'),
           count(*) filter (where vader_label = 'negative'),
           sum(vader_compound)
    from ins, unnest(coins || '{{*}}'::text[]) as coin
    group by 1, 2
    on conflict (coin, minute) do update set
        tweets = m.tweets + excluded.tweets,
        positive = m.positive + excluded.positive,
        neutral = m.neutral + excluded.neutral,
        negative = m.negative + excluded.negative,
        compound_sum = m.compound_sum + excluded.compound_sum,
        vader_positive = m.vader_positive + excluded.vader_positive,
        vader_neutral = m.vader_neutral + excluded.vader_neutral,
        vader_negative = m.vader_negative + excluded.vader_negative,
        vader_compound_sum = m.vader_compound_sum + excluded.vader_compound_sum
    returning 1
)
select (select count(*) from ins), (select count(*) from mentions),
       (select count(*) from minutes)
"""  # noqa: S608 - column names come from the schema constant, values only through COPY


class StaleBatch(RuntimeError):
    """Another processor already stored part of this batch (a rebalance raced us)."""


def to_copy_csv(table: pa.Table) -> bytes:
    """The table as PostgreSQL COPY CSV: arrays as `{A,B}` literals, NULL as an unquoted empty."""
    coins = table.column("coins")
    literal = pc.binary_join_element_wise("{", pc.binary_join(coins, ","), "}", "")
    table = table.set_column(table.schema.get_field_index("coins"), "coins", literal)
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, _CSV_OPTIONS)
    return buffer.getvalue()


class PostgresSink:
    """Writes scored batches and keeps the consumed offsets; one connection, reconnectable."""

    def __init__(self, dsn: str, *, group: str, topic: str) -> None:
        self.dsn = dsn
        self.group = group
        self.topic = topic
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    @property
    def conn(self) -> psycopg.Connection[tuple[object, ...]]:
        """The open connection (opened on first use, and again after a failure)."""
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self.dsn, connect_timeout=5, application_name="cryptosent")
            conn.execute("set time zone 'UTC'")
            conn.execute(
                "create temp table if not exists staging "
                "(like tweets including defaults) on commit delete rows"
            )
            conn.commit()
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def reset(self) -> None:
        """Drop a broken connection so the next call opens a new one."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # ---- offsets -------------------------------------------------------------------------------
    def stored_offsets(self, partitions: Iterable[int]) -> dict[int, dict[str, int]]:
        """partition -> {sink: next offset} for the partitions that have any."""
        rows = self.conn.execute(
            "select partition, sink, next_offset from kafka_offsets"
            " where consumer_group = %s and topic = %s and partition = any(%s::integer[])",
            [self.group, self.topic, list(partitions)],
        ).fetchall()
        self.conn.commit()
        found: dict[int, dict[str, int]] = {}
        for partition, sink, offset in rows:
            found.setdefault(int(str(partition)), {})[str(sink)] = int(str(offset))
        return found

    def _advance(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        sink: str,
        ranges: Mapping[int, tuple[int, int]],
    ) -> None:
        """Move sink's offsets past ranges, refusing if another writer got further first."""
        partitions = sorted(ranges)
        current: dict[object, object] = dict(
            cur.execute(
                "select partition, next_offset from kafka_offsets where consumer_group = %s"
                " and topic = %s and sink = %s and partition = any(%s) for update",
                [self.group, self.topic, sink, partitions],
            ).fetchall()  # type: ignore[arg-type]
        )
        for partition, (first, _last) in ranges.items():
            stored = current.get(partition)
            if stored is not None and int(str(stored)) > first:
                raise StaleBatch(
                    f"partition {partition}: {sink} already at offset {stored}, batch starts at "
                    f"{first}"
                )
        cur.executemany(
            "insert into kafka_offsets (consumer_group, topic, partition, sink, next_offset)"
            " values (%s, %s, %s, %s, %s) on conflict (consumer_group, topic, partition, sink)"
            " do update set next_offset = excluded.next_offset, updated_at = now()",
            [(self.group, self.topic, p, sink, last + 1) for p, (_f, last) in ranges.items()],
        )

    # ---- tweets --------------------------------------------------------------------------------
    def write(self, table: pa.Table, ranges: Mapping[int, tuple[int, int]]) -> int:
        """Store the batch and its offsets atomically; return how many tweets were new."""
        conn = self.conn
        try:
            with conn.cursor() as cur:
                self._advance(cur, POSTGRES, ranges)
                inserted = 0
                if table.num_rows:
                    with cur.copy(f"copy staging ({_COLUMNS}) from stdin with (format csv)") as cp:
                        cp.write(to_copy_csv(table))
                    row = cur.execute(_INSERT_BATCH).fetchone()
                    inserted = int(str(row[0])) if row else 0
            conn.commit()
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise
        return inserted

    # ---- alerts --------------------------------------------------------------------------------
    def coin_minutes(self, since: datetime, until: datetime) -> list[CoinMinute]:
        """coin_minute rows with since <= minute <= until (crypto analyzer's sums)."""
        rows = self.conn.execute(
            "select coin, minute, tweets, compound_sum from coin_minute"
            " where minute >= %s and minute <= %s",
            [since, until],
        ).fetchall()
        self.conn.commit()
        return [
            CoinMinute(str(c), m, int(str(n)), float(str(s)))  # type: ignore[arg-type]
            for c, m, n, s in rows
        ]

    def insert_alerts(self, alerts: list[Alert]) -> list[Alert]:
        """Store alerts; return those that were new (a (coin, minute, kind) is stored once)."""
        new: list[Alert] = []
        try:
            with self.conn.cursor() as cur:
                for alert in alerts:
                    cur.execute(
                        "insert into alerts (coin, minute, kind, value, baseline, message)"
                        " values (%s, %s, %s, %s, %s, %s)"
                        " on conflict (coin, minute, kind) do nothing returning id",
                        [alert.coin, alert.minute, alert.kind, alert.value, alert.baseline,
                         alert.message],
                    )  # fmt: skip
                    if cur.fetchone() is not None:
                        new.append(alert)
            self.conn.commit()
        except BaseException:
            if not self.conn.closed:
                self.conn.rollback()
            raise
        return new

    # ---- lake bookkeeping ----------------------------------------------------------------------
    def begin_lake_write(self, keys: list[str], partitions: Iterable[int]) -> int:
        """Record that keys are about to be written (committed before the first byte is)."""
        row = self.conn.execute(
            "insert into lake_intents (consumer_group, topic, partitions, keys)"
            " values (%s, %s, %s, %s) returning id",
            [self.group, self.topic, sorted(partitions), keys],
        ).fetchone()
        self.conn.commit()
        assert row is not None
        return int(str(row[0]))

    def finish_lake_write(
        self, intent: int, ranges: Mapping[int, tuple[int, int]], keys: Iterable[str] = ()
    ) -> None:
        """The objects are durable: advance the lake's offsets and forget the intent, atomically.

        Intents of the same group and topic naming any of keys go too: those objects now hold
        these rows (same name, same content), and deleting them later would lose the lake's copy.
        An intent whose insert committed but whose answer was lost (a dropped connection) is one.
        """
        conn = self.conn
        try:
            with conn.cursor() as cur:
                self._advance(cur, LAKE, ranges)
                cur.execute(
                    "delete from lake_intents where id = %s or (consumer_group = %s"
                    " and topic = %s and keys && %s::text[])",
                    [intent, self.group, self.topic, list(keys)],
                )
            conn.commit()
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise

    def abandoned_lake_writes(self, partitions: Iterable[int]) -> list[tuple[int, list[str]]]:
        """Intents left by a crashed writer that touch any of partitions: (id, keys)."""
        rows = self.conn.execute(
            "select id, keys from lake_intents where consumer_group = %s and topic = %s"
            " and partitions && %s::integer[] order by id",
            [self.group, self.topic, list(partitions)],
        ).fetchall()
        self.conn.commit()
        return [(int(str(i)), list(keys)) for i, keys in rows]  # type: ignore[call-overload]

    def forget_lake_write(self, intent: int) -> None:
        """Drop an intent whose objects were deleted."""
        self.conn.execute("delete from lake_intents where id = %s", [intent])
        self.conn.commit()
