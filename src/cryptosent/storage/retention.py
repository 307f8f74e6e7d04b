"""PostgreSQL retention: raw rows (`tweets`, `tweet_coins`) live in one partition per UTC day
(`<table>_pYYYYMMDD`, migration 0007) and are dropped a whole day at a time once older than the
retention; the aggregates, alerts and prices are never touched (docs/storage.md).

Days are prepared ahead (today and `AHEAD_DAYS` more) so a live feed never lands in the default
partition; a post dated outside the prepared days still lands there. A day's partition is
created as a plain table, given the default partition's rows of that day, then attached: ATTACH
takes a lighter lock on the parent than CREATE ... PARTITION OF, so readers and the writer keep
going. Every step waits at most `LOCK_TIMEOUT` for its locks and is simply tried again at the
next run; concurrent runs (several processors) take turns on an advisory lock.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_start

import psycopg
from psycopg import sql

from cryptosent.errors import TransientError
from cryptosent.runtime import StopSignal, Unanswered, until_stopped
from cryptosent.sinks.database import Connection, Database

log = logging.getLogger(__name__)

TABLES = ("tweets", "tweet_coins")
"""The partitioned raw tables; each day has one partition in each."""
AHEAD_DAYS = 3
LOCK_TIMEOUT = "2s"
DAY = timedelta(days=1)
# any fixed 64-bit number: the same for every processor and `db retain`
_LOCK_KEY = 0x726574656E74
_DAY_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<day>\d{8})$")

_PARTITIONS = """
select c.relname, pg_total_relation_size(c.oid)
from pg_inherits i
join pg_class c on c.oid = i.inhrelid
join pg_class p on p.oid = i.inhparent
join pg_namespace n on n.oid = p.relnamespace
where p.relname = %s and n.nspname = current_schema()
order by c.relname
"""


@dataclass(frozen=True)
class Partition:
    """One day's partition of a raw table, with its size on disk (table, indexes, TOAST)."""

    table: str
    day: date
    name: str
    bytes: int


@dataclass
class RetentionReport:
    """What one run created and dropped (or, in a dry run, would drop)."""

    days: int
    cutoff: datetime | None
    created: list[str] = field(default_factory=list)
    dropped: list[Partition] = field(default_factory=list)
    kept: list[Partition] = field(default_factory=list)
    default_rows: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_bytes(self) -> int:
        """Bytes freed by the dropped partitions."""
        return sum(p.bytes for p in self.dropped)

    @property
    def kept_bytes(self) -> int:
        """Bytes of the day partitions kept."""
        return sum(p.bytes for p in self.kept)


def partition_name(table: str, day: date) -> str:
    """`tweets_p20261129`: the name of a table's partition for one UTC day."""
    # the year in four digits like the migration's to_char(day, 'YYYYMMDD'); %Y does not pad
    return f"{table}_p{day.year:04d}{day.month:02d}{day.day:02d}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a day's partition holds: from midnight (included) to the next one."""
    start = datetime.combine(day, day_start(), tzinfo=UTC)
    return start, start + DAY


def expired_days(days: list[date], retention_days: int, now: datetime) -> list[date]:
    """The days wholly older than `retention_days` before now (none when retention is 0)."""
    if retention_days <= 0:
        return []
    cutoff = now - timedelta(days=retention_days)
    return [d for d in days if day_bounds(d)[1] <= cutoff]


def partitions(conn: Connection, table: str) -> list[Partition]:
    """A raw table's day partitions, oldest first."""
    found: list[Partition] = []
    for name, size in conn.execute(_PARTITIONS, [table]).fetchall():
        match = _DAY_NAME.match(str(name))
        if match and match["table"] == table:
            digits = match["day"]
            day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            found.append(Partition(table, day, str(name), int(str(size))))
    return sorted(found, key=lambda p: p.day)


def default_rows(conn: Connection, table: str) -> int:
    """How many rows a raw table's default partition holds (posts dated outside its days)."""
    query = sql.SQL("select count(*) from {}").format(sql.Identifier(f"{table}_default"))
    row = conn.execute(query).fetchone()
    return int(str(row[0])) if row else 0


def create_day(conn: Connection, table: str, day: date) -> int:
    """Create and attach a table's partition for `day`, moving the default partition's rows of
    that day into it first (the caller's transaction); how many rows moved."""
    name = sql.Identifier(partition_name(table, day))
    default = sql.Identifier(f"{table}_default")
    start, end = (sql.Literal(b) for b in day_bounds(day))
    # ATTACH needs this lock anyway; taken first, no row of that day can reach the default
    # partition between the move and the attach (which would then fail its check)
    conn.execute(sql.SQL("lock table {} in access exclusive mode").format(default))
    conn.execute(sql.SQL("create table {} (like {} including defaults including constraints)")
                 .format(name, sql.Identifier(table)))  # fmt: skip
    moved = conn.execute(
        sql.SQL(
            "with moved as (delete from {} where created_at >= {} and created_at < {}"
            " returning *) insert into {} select * from moved"
        ).format(default, start, end, name)
    ).rowcount
    conn.execute(
        sql.SQL("alter table {} attach partition {} for values from ({}) to ({})").format(
            sql.Identifier(table), name, start, end
        )
    )
    return max(moved, 0)


def prepare(conn: Connection, first: date, last: date) -> list[str]:
    """Make sure every table has a partition for each day from `first` to `last`, in the caller's
    transaction (it must be one: LOCK TABLE; on an autocommit connection use
    `conn.transaction()`); the names created."""
    created: list[str] = []
    for table in TABLES:
        existing = {p.day for p in partitions(conn, table)}
        day = first
        while day <= last:
            if day not in existing:
                moved = create_day(conn, table, day)
                created.append(partition_name(table, day))
                if moved:
                    log.info("%s: %d rows moved from the default partition", table, moved)
            day += DAY
    return created


def first_day(conn: Connection, today: date, cutoff: datetime | None) -> date:
    """The first day to prepare: today, or the day after the newest partition when days were
    missed (a processor down for days reads a backlog of them), but none the cutoff expires."""
    days = [p.day for p in partitions(conn, TABLES[0]) if p.day <= today]
    first = min(today, days[-1] + DAY) if days else today
    return max(first, cutoff.date()) if cutoff is not None else first


def retain(
    conn: Connection, retention_days: int, *, now: datetime | None = None, dry_run: bool = False
) -> RetentionReport:
    """Prepare today's and the next days' partitions, then drop the days older than
    `retention_days` (0: keep everything), each step in its own short transaction on `conn`
    (autocommit off). A dry run changes nothing and reports what would be dropped."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days) if retention_days > 0 else None
    report = RetentionReport(retention_days, cutoff)
    today = now.astimezone(UTC).date()
    if not dry_run:
        with _step(conn):
            report.created = prepare(conn, first_day(conn, today, cutoff), today + AHEAD_DAYS * DAY)
    found = {}
    for table in TABLES:
        found[table] = partitions(conn, table)
        report.default_rows[table] = default_rows(conn, table)
    conn.commit()
    days = sorted({p.day for parts in found.values() for p in parts})
    expired = set(expired_days(days, retention_days, now))
    for table in TABLES:
        report.kept += [p for p in found[table] if p.day not in expired]
    for day in sorted(expired):
        doomed = [p for table in TABLES for p in found[table] if p.day == day]
        if not dry_run:
            # both tables' partitions of a day go together: no coin mention outlives its tweet
            with _step(conn):
                for part in doomed:
                    conn.execute(sql.SQL("drop table if exists {}").format(
                        sql.Identifier(part.name)))  # fmt: skip
        report.dropped += doomed
    return report


class _step:
    """One short transaction: the advisory lock, a bounded wait for table locks, commit."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        self.conn.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
        self.conn.execute("select pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        return self.conn

    def __exit__(self, kind: object, _err: object, _tb: object) -> None:
        if kind is None:
            self.conn.commit()
        elif not self.conn.closed:
            self.conn.rollback()


class RetentionJob:
    """The processor's periodic run of `retain` (hourly by default, and at the start); a run
    that cannot get its locks or reach PostgreSQL is skipped until the next one."""

    name = "retention"

    def __init__(
        self,
        database: Database,
        retention_days: int,
        *,
        interval_s: float = 3600.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: StopSignal | None = None,
    ) -> None:
        self.database = database
        self.retention_days = retention_days
        self.interval_s = interval_s
        self._now = now
        self.stop = stop
        self._last_run = -math.inf

    def due(self, now: float) -> bool:
        """Whether the interval passed since the last run."""
        return now - self._last_run >= self.interval_s

    def run(self) -> int:
        """Prepare the coming days and drop the expired ones; how many partitions were dropped.
        The processor also calls this at its end: within the interval that call does nothing."""
        if not self.due(time.monotonic()):
            return 0
        self._last_run = time.monotonic()

        def once() -> RetentionReport:
            # retain() commits each step itself; the block turns connection failures into
            # DatabaseUnavailable and reconnects next time
            with self.database.transaction() as conn:
                return retain(conn, self.retention_days, now=self._now())

        stop = self.stop
        try:
            if stop is None:
                report = once()
            else:  # a database that stopped answering must not hold a stopping processor
                report = until_stopped(
                    stop, once, what="retention", stopped=lambda: Unanswered("retention", stop)
                )
        except (TransientError, psycopg.Error) as err:
            log.warning("retention skipped until the next run (%s)", str(err).splitlines()[0])
            return 0
        for part in report.dropped:
            log.info("retention: dropped %s (%d bytes)", part.name, part.bytes)
        return len(report.dropped)

    def close(self) -> None:
        """Close the job's connection."""
        self.database.close()
