"""PostgreSQL sink: tweets, coin mentions and per-minute aggregates in one transaction with the
consumed offsets, so a replay after any crash neither loses nor double-counts a tweet.

Rows arrive by binary COPY (encoded from the Arrow columns by the compiled core, or pgpq; no
per-row Python). A batch of distinct ids is first copied straight into `tweets` inside a
savepoint, its coin mentions straight into `tweet_coins` (the client flattens the `coins` lists),
and one statement adds the `coin_minute` measures (`cryptosent.aggregates`) of the rows this
transaction stored: the common case, less than two thirds of the server's CPU of the guarded path.
When that meets a stored key (a replay after a crash) the savepoint is rolled back and the guarded
path runs: COPY into a temporary staging table, then one statement inserts the new tweets (a known
(id, created_at), the key of the table partitioned by day, is skipped: docs/storage.md), their
coin mentions, and adds exactly the inserted rows to `coin_minute`. Both store the same rows and
add the same measures, summed in id order.

Writes run on one background thread: PostgreSQL stores batch N while the processor scores batch
N+1. `add` waits for the previous write first, so at most one batch is in flight.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import time
from collections.abc import Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, cast

import psycopg
import psycopg.sql
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pgpq import ArrowToPostgresBinaryEncoder

from cryptosent import aggregates
from cryptosent.batch import SCHEMA, Revision, ScoredBatch
from cryptosent.config import Settings
from cryptosent.runtime import Retry
from cryptosent.sinks.base import Sink, Written
from cryptosent.sinks.database import NO_JIT, Database
from cryptosent.sinks.offsets import OffsetStore, StaleBatch

_COLUMNS = ", ".join(SCHEMA.names)
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=8192)
_STAGING = (
    "create temp table if not exists staging (like tweets including defaults) on commit delete rows"
)
_COPY = f"copy staging ({_COLUMNS}) from stdin with (format binary)"
_COPY_TWEETS = f"copy tweets ({_COLUMNS}) from stdin with (format binary)"
_COPY_MENTIONS = "copy tweet_coins (coin, tweet_id, created_at) from stdin with (format binary)"
_MENTIONS = pa.schema(
    [("coin", pa.string()), ("tweet_id", pa.string()), SCHEMA.field("created_at")]
)
# revised flags of tweets stored earlier (docs/campaigns.md), applied with the batch
_REVISED = (
    "create temp table if not exists revised"
    " (id text primary key, spam boolean not null, campaign_id text) on commit delete rows"
)
_LOCK_REVISED = "select 1 from tweets where id in (select id from revised) order by id for update"
# Day partitions that hold rows but have no statistics for `id` yet: a new day's partition until
# autovacuum first gets to it (a minute or more). Without them the planner takes each id for
# 0.5 % of the rows and hash-joins the revisions against a sequential scan of the partition: 66 ms
# for 12 revisions at 300,000 tweets, 1.5 ms once analyzed (docs/benchmarks.md, round five).
_UNANALYZED = """
select n.nspname, c.relname from pg_inherits i
join pg_class c on c.oid = i.inhrelid join pg_namespace n on n.oid = c.relnamespace
where i.inhparent = 'tweets'::regclass and pg_relation_size(c.oid) > 0
  and not exists (select 1 from pg_stats s
                  where s.schemaname = n.nspname and s.tablename = c.relname and s.attname = 'id')
"""
_OLD_INPUTS = ", ".join(f"t.{c}" for c in ("id", "created_at", "coins", *aggregates.INPUTS))
_REVISE = f"""
with old as (
    select {_OLD_INPUTS} from tweets t join revised r on r.id = t.id
    where t.spam is distinct from r.spam
), new as (
    update tweets t set spam = r.spam, campaign_id = r.campaign_id from revised r
    where t.id = r.id and (t.spam, t.campaign_id) is distinct from (r.spam, r.campaign_id)
    returning {_OLD_INPUTS}
), flipped as (
    select * from new where id in (select id from old)
), minutes as (
    {aggregates.revision_upsert("flipped", "old")}
)
select (select count(*) from new), (select count(*) from minutes)
"""  # noqa: S608 - column names come from constants, values only through COPY

_INSERT_BATCH = f"""
with ins as (
    insert into tweets ({_COLUMNS})
    select distinct on (id) {_COLUMNS} from staging order by id, kafka_partition, kafka_offset
    on conflict (id, created_at) do nothing
    returning id, created_at, coins, {", ".join(aggregates.INPUTS)}
), mentions as (
    insert into tweet_coins (coin, tweet_id, created_at)
    select coin, id, created_at from ins, unnest(coins) as coin
    on conflict do nothing
    returning 1
), minutes as (
    {aggregates.minute_upsert("ins")}
)
select (select count(*) from ins), (select count(*) from mentions),
       (select count(*) from minutes)
"""  # noqa: S608 - column names come from constants, values only through COPY

# The fast path's measures: the batch's minute rows (`aggregates.minute_rows`, the same bits as
# `minute_upsert` over the rows it copied) copied into a temporary table and added from there, in
# key order (two processors add to the same minutes in one order, so neither waits on the other
# in a cycle). PostgreSQL then adds about 100 rows per batch instead of evaluating every measure
# for every (tweet, coin) row it has just stored: a quarter of its CPU per tweet.
_MINUTE_DELTA = (
    "create temp table if not exists minute_delta (like coin_minute) on commit delete rows"
)
_MINUTE_COLUMNS = ", ".join(aggregates.MINUTE_SCHEMA.names)
_COPY_MINUTES = f"copy minute_delta ({_MINUTE_COLUMNS}) from stdin with (format binary)"
_ADD_MINUTES = f"""
insert into coin_minute as m ({_MINUTE_COLUMNS})
select {_MINUTE_COLUMNS} from minute_delta order by coin, minute
on conflict (coin, minute) do update set {aggregates.added("m")}
"""  # noqa: S608 - column names come from constants, values only through COPY


SESSION_SETUP: Final = (_STAGING, _REVISED, _MINUTE_DELTA)
"""What each of the sink's connections runs once: the temporary tables its statements use."""


def to_copy_binary(table: pa.Table, compiled: bool | None = None) -> bytes:
    """The table as a PostgreSQL binary COPY stream (header, rows, trailer). Arrow's types are
    the table's: text, text[], bigint, integer, double precision, boolean; timestamps go as
    microseconds since 2000, which `timestamptz` reads as UTC. A quarter of the CSV's CPU and
    less for the server to parse.

    The rows come from the compiled core when it is installed (unless ``compiled`` is False):
    the bytes of pgpq's encoder, which writes them otherwise, at a third of its CPU (0.90 ->
    0.30 ms per 1,000 tweets)."""
    table = _spam_filled(table)
    columns = _copy_kinds(table.schema) if compiled is not False else None
    if columns is not None and _CORE is not None:
        parts = [_COPY_HEADER]
        for batch in table.to_batches():
            specs = [_copy_spec(kind, batch.column(i)) for i, kind in enumerate(columns)]
            parts.append(_CORE.copy_rows(batch.num_rows, specs))
        parts.append(_COPY_TRAILER)
        return b"".join(parts)
    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    out = bytearray(encoder.write_header())
    for batch in table.to_batches():
        out += encoder.write_batch(batch)
    out += encoder.finish()
    return bytes(out)


def _load_core() -> Any:
    """The compiled core (``rust/vader_core``), or None when it is not installed."""
    try:
        return importlib.import_module("cryptosent_vader_core")
    except ImportError:
        return None


_CORE = _load_core()
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_COPY_TRAILER = b"\xff\xff"  # a field count of -1
# the compiled encoder's column kinds (rust/vader_core/src/copy.rs)
_STRING, _INT64, _INT32, _FLOAT64, _BOOL, _TIMESTAMP_US, _STRING_LIST = range(7)
_KIND_OF = {
    pa.string(): _STRING, pa.int64(): _INT64, pa.int32(): _INT32, pa.float64(): _FLOAT64,
    pa.bool_(): _BOOL, pa.timestamp("us", tz="UTC"): _TIMESTAMP_US,
    pa.list_(pa.string()): _STRING_LIST,
}  # fmt: skip


def _copy_kinds(schema: pa.Schema) -> list[int] | None:
    """Each column's kind for the compiled encoder; None when a type is not one it writes."""
    kinds = [_KIND_OF.get(field.type) for field in schema]
    return None if None in kinds else cast(list[int], kinds)


def _copy_spec(kind: int, array: pa.Array) -> tuple[Any, ...]:
    """(kind, offset, child offset, validity, offsets, data, child validity, child offsets) of
    an array, as `copy_rows` reads them."""
    buffers = array.buffers()
    if kind == _STRING_LIST:
        child = array.values
        validity, offsets, child_validity, child_offsets, data = buffers
        return (kind, array.offset, child.offset, validity, offsets, data, child_validity,
                child_offsets)  # fmt: skip
    if kind == _STRING:
        validity, offsets, data = buffers
        return kind, array.offset, 0, validity, offsets, data, None, None
    validity, data = buffers
    return kind, array.offset, 0, validity, None, data, None, None


def _spam_filled(table: pa.Table) -> pa.Table:
    """`spam` is not null in `tweets`: a row the detector did not flag is not spam."""
    spam = table.schema.get_field_index("spam")
    if spam < 0:
        return table
    return table.set_column(spam, "spam", pc.fill_null(table.column(spam), False))


def to_copy_csv(table: pa.Table) -> bytes:
    """The table as PostgreSQL COPY CSV: arrays as `{A,B}` literals, NULL as an unquoted empty."""
    coins = table.column("coins")
    literal = pc.binary_join_element_wise("{", pc.binary_join(coins, ","), "}", "")
    table = _spam_filled(table.set_column(table.schema.get_field_index("coins"), "coins", literal))
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, _CSV_OPTIONS)
    return buffer.getvalue()


class PostgresSink(Sink):
    """Stores each batch and its offsets atomically, on a background writer thread."""

    name = "postgres"

    def __init__(self, database: Database, offsets: OffsetStore, retry: Retry) -> None:
        self.database = database
        self.offsets = offsets
        self.retry = retry
        # one writer thread: PostgreSQL works on batch N while the processor scores batch N+1
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-writer")
        self._pending: Future[Written] | None = None
        self._done: list[Written] = []

    def resume(self, partitions: Sequence[int]) -> dict[int, int]:
        """The stored offsets (after the write in flight, which may move them)."""
        self._wait()

        def load() -> dict[int, int]:
            with self.database.transaction() as conn:
                return self.offsets.load(conn, self.name, partitions)

        return self.retry(self.name, load)

    def add(self, batch: ScoredBatch) -> None:
        """Hand the batch to the writer thread once the previous one is stored."""
        self._wait()
        if batch.ranges or batch.revisions:
            self._pending = self._writer.submit(self._write, batch)

    def completed(self) -> list[Written]:
        """The write that finished (if the one in flight did), and those already collected."""
        if self._pending is not None and self._pending.done():
            self._wait()
        done, self._done = self._done, []
        return done

    def flush(self) -> list[Written]:
        """Wait for the write in flight."""
        self._wait()
        return self.completed()

    def discard(self, partitions: Collection[int]) -> None:
        """Nothing is buffered: a write in flight either lands or is refused as stale."""
        with contextlib.suppress(StaleBatch):
            self._wait()

    def close(self) -> None:
        """Stop the writer thread (after its write) and close the connection."""
        self._writer.shutdown(wait=True)
        self.database.close()

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._done.append(pending.result())

    def _write(self, batch: ScoredBatch) -> Written:
        started = time.monotonic()
        inserted: int = self.retry(self.name, lambda: self.write(batch))
        return Written(
            dict(batch.ranges), rows=batch.size, new=inserted,
            seconds=time.monotonic() - started, batch=batch,
        )  # fmt: skip

    def write(self, batch: ScoredBatch) -> int:
        """Store the batch and its offsets atomically (one attempt); how many tweets were new."""
        with self.database.transaction() as conn:
            self.offsets.advance(conn, self.name, batch.ranges)
            inserted = 0
            with conn.cursor() as cur:
                if batch.size:
                    inserted = store(cur, batch.table)
                if batch.revisions:
                    revise(cur, batch.revisions)
            return inserted


def store(cur: psycopg.Cursor[Any], table: pa.Table) -> int:
    """Store the batch's new tweets, their coin mentions and their minute measures (the caller's
    transaction); how many tweets were new."""
    rows = to_copy_binary(table)
    distinct = pc.count_distinct(table.column("id")).as_py() == len(table)
    if distinct and copy_new(
        cur, rows, to_copy_binary(mention_rows(table)),
        to_copy_binary(aggregates.minute_rows(table)),
    ):  # fmt: skip
        return len(table)
    return insert_new(cur, rows)


def copy_new(cur: psycopg.Cursor[Any], rows: bytes, mentions: bytes, minutes: bytes) -> bool:
    """The fast path for rows (`to_copy_binary`) of distinct ids, their coin mentions
    (`to_copy_binary` of `mention_rows`) and their measures (of `aggregates.minute_rows`): copy
    the first two straight into `tweets` and `tweet_coins`, then add the measures to
    `coin_minute`, in a savepoint; False, with nothing stored, when a row or a mention is
    already stored."""
    try:
        with cur.connection.transaction():  # a savepoint: the caller's transaction is open
            with cur.copy(_COPY_TWEETS) as copy:
                copy.write(rows)
            with cur.copy(_COPY_MENTIONS) as copy:
                copy.write(mentions)
            with cur.copy(_COPY_MINUTES) as copy:
                copy.write(minutes)
            cur.execute(_ADD_MINUTES)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def mention_rows(table: pa.Table) -> pa.Table:
    """The `tweet_coins` rows of a batch's tweets: (coin, tweet_id, created_at) for each coin of
    each tweet, in row order; what the guarded path's `unnest(coins)` inserts, built from the
    Arrow columns (a third less of the server's CPU than inserting them by a statement)."""
    batches = []
    for batch in table.select(["coins", "id", "created_at"]).to_batches():
        coins, ids, created_at = batch.columns
        rows = pc.list_parent_indices(coins)
        batches.append(pa.record_batch(
            [pc.list_flatten(coins), ids.take(rows), created_at.take(rows)], schema=_MENTIONS
        ))  # fmt: skip
    return pa.Table.from_batches(batches, schema=_MENTIONS)


def insert_new(cur: psycopg.Cursor[Any], rows: bytes) -> int:
    """The guarded path: copy the rows (`to_copy_binary`) into the staging table, then insert the
    first of each id unless its key is stored, with its mentions and measures; how many were
    new."""
    with cur.copy(_COPY) as copy:
        copy.write(rows)
    row = cur.execute(_INSERT_BATCH).fetchone()
    return int(str(row[0])) if row else 0


def revise(cur: psycopg.Cursor[Any], revisions: Sequence[Revision]) -> int:
    """Apply revised flags to stored tweets and move their organic measures in `coin_minute`
    by exactly the change (the caller's transaction); how many tweets changed."""
    latest = {tweet_id: (tweet_id, spam, campaign) for tweet_id, spam, campaign in revisions}
    with cur.copy("copy revised (id, spam, campaign_id) from stdin") as copy:
        for revision in latest.values():
            copy.write_row(revision)
    # the planner then knows how few rows `revised` holds and looks them up by index; without
    # statistics it expects thousands and scans whole day partitions three times (at 50,000
    # stored tweets 5 CPU ms per 1,000 stored, 10 times the index lookups)
    cur.execute("analyze revised")
    # and that an id is one tweet: a partition no one has analyzed yet is analyzed now, once
    for schema, name in cur.execute(_UNANALYZED).fetchall():
        cur.execute(psycopg.sql.SQL("analyze {} (id)").format(psycopg.sql.Identifier(schema, name)))
    # lock the rows first, in id order: the next statement's snapshot then sees their
    # current flags, so `old` is exactly what the update changes
    cur.execute(_LOCK_REVISED)
    row = cur.execute(_REVISE).fetchone()
    return int(str(row[0])) if row else 0


def open_sink(settings: Settings, retry: Retry) -> PostgresSink:
    """The PostgreSQL sink of the configured database."""
    database = Database(settings.database_dsn(), setup=[*SESSION_SETUP, NO_JIT], stop=retry.stop)
    return PostgresSink(database, OffsetStore(settings.consumer_group, settings.topic), retry)
