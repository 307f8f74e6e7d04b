"""Backfill: PostgreSQL's tables rebuilt from the lake's processed layer, one UTC day at a time.

For each day of the lake (the ``dt=`` folders, from `since` on), in one transaction:

- the day's rows are read from its live Parquet objects (`live_processed`), duplicates of an id
  dropped as the processor drops them (the first by Kafka partition and offset is kept);
- the day's `coin_minute` rows are deleted (the rollup triggers take them out of `coin_hour`,
  whose emptied rows go too) and built again from those rows;
- within retention (a day PostgreSQL's retention would not drop yet, `retention.expired_days`)
  the day's `tweets` and `tweet_coins` are deleted and inserted again (into the day's own
  partition, created if missing, when the tables are partitioned by day), with the processor's
  statement shape: COPY into a staging table, then one insert of the tweets, their coin
  mentions and their `coin_minute` rows (`aggregates.minute_upsert`) from the rows actually
  inserted. Older days get the
  aggregates only, computed by DuckDB with the same measures (`aggregates.duckdb_minutes`) and
  COPied into `coin_minute`; their raw rows in PostgreSQL (if any) are the retention job's.

Every day is replaced whole, so a re-run (or a run after a kill) gives the same tables:
idempotent. Plain INSERT and COPY into the parent tables work whether `tweets` is partitioned by
day or not. The lake keeps each post's first campaign verdict (docs/campaigns.md): flags that the
processor revised later in PostgreSQL come back as first judged.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads

from cryptosent import aggregates
from cryptosent.batch import SCHEMA
from cryptosent.sinks.database import Connection, Database
from cryptosent.sinks.lake import LakeLocation, LakeUnavailable, lake_failure
from cryptosent.sinks.postgres import to_copy_csv
from cryptosent.storage.lake_files import LakeObject, list_layer, live
from cryptosent.storage.retention import expired_days, prepare

LAYER: Final = "processed"
_COLUMNS: Final = ", ".join(SCHEMA.names)
_STAGING: Final = (
    "create temp table if not exists backfill_staging (like tweets including defaults)"
    " on commit delete rows"
)
_COPY_STAGING: Final = f"copy backfill_staging ({_COLUMNS}) from stdin with (format csv)"
_COPY_MINUTES: Final = (
    f"copy coin_minute (coin, minute, {aggregates.COLUMNS}) from stdin with (format csv)"
)
# the processor's statement (sinks.postgres), with a conflict on any unique key skipped: the
# primary key is (id) or, with day partitions, (id, created_at)
_INSERT_DAY: Final = f"""
with ins as (
    insert into tweets ({_COLUMNS})
    select distinct on (id) {_COLUMNS} from backfill_staging
    order by id, kafka_partition, kafka_offset
    on conflict do nothing
    returning id, created_at, coins, {", ".join(aggregates.INPUTS)}
), mentions as (
    insert into tweet_coins (coin, tweet_id, created_at)
    select coin, id, created_at from ins, unnest(coins) as coin
    on conflict do nothing
    returning 1
), minutes as (
    {aggregates.minute_upsert("ins")}
)
select (select count(*) from ins), (select count(*) from mentions)
"""  # noqa: S608 - column names come from constants, values only through COPY
_DEDUPED: Final = (
    "select * from day_rows"
    " qualify row_number() over (partition by id order by kafka_partition, kafka_offset) = 1"
)
_DAY_MINUTES: Final = (
    f"select coin, minute, {aggregates.COLUMNS}"  # noqa: S608 - constants
    f" from ({aggregates.duckdb_minutes(f'({_DEDUPED})')})"
)
_RELKIND: Final = "select relkind::text from pg_class where oid = 'tweets'::regclass"
_CSV: Final = pacsv.WriteOptions(include_header=False, batch_size=8192)


def live_processed(
    location: LakeLocation, since: date | None = None, until: date | None = None
) -> list[LakeObject]:
    """The processed layer's live objects (`lake_files`, containment rule) of the days in
    [since, until) (open ends when None); objects outside ``dt=`` folders are not read."""
    objects = live(list_layer(location, LAYER, since=since, until=until))
    return [o for o in objects if o.day is not None and o.ext == ".parquet"]


def by_day(objects: Iterable[LakeObject]) -> dict[date, list[LakeObject]]:
    """Objects grouped by UTC day, days in order."""
    days: dict[date, list[LakeObject]] = defaultdict(list)
    for obj in objects:
        assert obj.day is not None
        days[obj.day].append(obj)
    return dict(sorted(days.items()))


class ObjectVanished(LakeUnavailable):
    """A listed object was gone when read: a compaction replaced it (list again and retry)."""


_VANISHED: Final = re.compile(
    r"not ?found|no[ _]such[ _](file|key)|nosuchkey|does not exist", re.IGNORECASE
)
READ_ATTEMPTS: Final = 3
"""Reads of a day tried when its objects vanish between listing and reading."""


def vanished(err: BaseException) -> bool:
    """The error says a listed object no longer exists (local or S3)."""
    return isinstance(err, FileNotFoundError) or bool(_VANISHED.search(str(err)))


def read_day(location: LakeLocation, objects: Iterable[LakeObject]) -> pa.Table:
    """The rows of objects in the `tweets` columns (columns older files lack are null);
    `ObjectVanished` when one of them is gone."""
    paths = [f"{location.base}/{o.key}" for o in objects]
    if not paths:
        return SCHEMA.empty_table()
    try:
        dataset = pads.dataset(paths, schema=SCHEMA, format="parquet", filesystem=location.fs)
        return dataset.to_table()
    except (OSError, pa.ArrowException) as err:
        if vanished(err):
            raise ObjectVanished(f"{location.url}/{LAYER}: {err}") from err
        if isinstance(err, OSError):
            raise lake_failure(err, f"reading {location.url}/{LAYER} failed") from err
        raise


def read_live_day(location: LakeLocation, day: date) -> tuple[pa.Table, int]:
    """The rows of a day's live objects, listed just now (a compaction running beside the
    backfill may replace objects listed earlier), and their bytes; listed and read again when
    an object vanished in between."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        objects = [
            o for o in live_processed(location, day, day + timedelta(days=1)) if o.day == day
        ]
        try:
            return read_day(location, objects), sum(o.size for o in objects)
        except ObjectVanished:
            if attempt == READ_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _partitioned(conn: Connection) -> bool:
    row = conn.execute(
        "select relkind::text from pg_class where oid = 'tweets'::regclass"
    ).fetchone()
    return row is not None and str(row[0]) == "p"


def keeps_raw(day: date, retention_days: int, now: datetime | None = None) -> bool:
    """Whether PostgreSQL keeps the day's raw rows: the retention job's rule (`retention`:
    a day goes once wholly older than `retention_days` before now; 0 keeps every day)."""
    return not expired_days([day], retention_days, now or datetime.now(UTC))


@dataclass
class BackfillStats:
    """What a backfill rebuilt so far."""

    days: int = 0
    days_total: int = 0
    lake_rows: int = 0
    tweets: int = 0
    mentions: int = 0
    minute_rows: int = 0
    bytes_read: int = 0
    bytes_total: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    rebuilt: list[date] = field(default_factory=list)


class Backfill:
    """Rebuilds PostgreSQL's rows day by day from the lake (see the module docstring)."""

    def __init__(self, location: LakeLocation, database: Database, retention_days: int) -> None:
        self.location = location
        self.database = database
        self.retention_days = retention_days
        self.duck = duckdb.connect(":memory:")
        self.duck.execute("set TimeZone = 'UTC'")

    def run(
        self,
        since: date | None = None,
        *,
        on_progress: Callable[[BackfillStats], None] | None = None,
        now: datetime | None = None,
    ) -> BackfillStats:
        """Rebuild every lake day from `since` on; `on_progress` after each day."""
        started, cpu = time.monotonic(), time.process_time()
        days = by_day(live_processed(self.location, since))
        now = now or datetime.now(UTC)
        stats = BackfillStats(
            days_total=len(days), bytes_total=sum(o.size for objs in days.values() for o in objs)
        )
        for day in days:
            table, size = read_live_day(self.location, day)
            raw = keeps_raw(day, self.retention_days, now)
            tweets, mentions, minutes = self.rebuild_day(day, table, raw=raw)
            stats.days += 1
            stats.lake_rows += table.num_rows
            stats.tweets += tweets
            stats.mentions += mentions
            stats.minute_rows += minutes
            stats.bytes_read += size
            stats.rebuilt.append(day)
            stats.seconds = time.monotonic() - started
            stats.cpu_seconds = time.process_time() - cpu
            if on_progress is not None:
                on_progress(stats)
        stats.seconds = time.monotonic() - started
        stats.cpu_seconds = time.process_time() - cpu
        return stats

    def rebuild_day(self, day: date, table: pa.Table, *, raw: bool) -> tuple[int, int, int]:
        """Replace one day's rows with table's (one transaction); (tweets, mentions, minute
        rows) written."""
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        with self.database.transaction() as conn:
            self._delete_minutes(conn, start, end)
            if raw:
                if _partitioned(conn):  # the day's own partition, so retention can drop it
                    prepare(conn, day, day)
                conn.execute(
                    "delete from tweet_coins where created_at >= %s and created_at < %s",
                    [start, end],
                )
                conn.execute(
                    "delete from tweets where created_at >= %s and created_at < %s", [start, end]
                )
                tweets, mentions = self._insert_rows(conn, table)
            else:
                tweets = mentions = 0
                self._copy_minutes(conn, table)
            row = conn.execute(
                "select count(*) from coin_minute where minute >= %s and minute < %s", [start, end]
            ).fetchone()
        return tweets, mentions, int(str(row[0])) if row else 0

    @staticmethod
    def _delete_minutes(conn: Connection, start: datetime, end: datetime) -> None:
        conn.execute("delete from coin_minute where minute >= %s and minute < %s", [start, end])
        # the delete trigger subtracted the day from coin_hour: what is left of it is zeros
        conn.execute("delete from coin_hour where hour >= %s and hour < %s", [start, end])

    @staticmethod
    def _insert_rows(conn: Connection, table: pa.Table) -> tuple[int, int]:
        if not table.num_rows:
            return 0, 0
        conn.execute(_STAGING)
        with conn.cursor() as cur:
            with cur.copy(_COPY_STAGING) as copy:
                copy.write(to_copy_csv(table.select(SCHEMA.names)))
            row = cur.execute(_INSERT_DAY).fetchone()
        assert row is not None
        return int(str(row[0])), int(str(row[1]))

    def minutes(self, table: pa.Table) -> pa.Table:
        """The day's `coin_minute` rows from its lake rows (duplicate ids dropped)."""
        self.duck.register("day_rows", table)
        try:
            return self.duck.sql(_DAY_MINUTES).to_arrow_table()
        finally:
            self.duck.unregister("day_rows")

    def _copy_minutes(self, conn: Connection, table: pa.Table) -> None:
        if not table.num_rows:
            return
        minutes = self.minutes(table)
        buffer = pa.BufferOutputStream()
        pacsv.write_csv(minutes, buffer, _CSV)
        with conn.cursor() as cur, cur.copy(_COPY_MINUTES) as copy:
            copy.write(buffer.getvalue().to_pybytes())

    def close(self) -> None:
        """Close DuckDB and the database connection."""
        self.duck.close()
        self.database.close()
