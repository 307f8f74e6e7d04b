"""Lake compaction: a closed hour's small objects become a few large ones, and a closed day's
hours a handful of day-level objects, per layer (`processed/` and `prices/` Parquet, `raw/`
gzip JSON Lines), without a reader ever seeing a row twice or missing one.

Atomic for readers through the containment rule (`storage.lake_files`): each compacted object is
written whole first (one PUT, or a local temp file renamed), and the objects it covers are deleted
only after a grace period (`lake_compact_grace_seconds`), so a reader that listed just before the
write can still open what it listed. Idempotent: names are deterministic and each run starts by
deleting what a live compacted object already covers (the leftovers of a run that was killed).
Safe while the processor writes: only objects whose every offset is below the lake sink's
committed offset for its partition are merged (`kafka_offsets`, read before listing), so objects
of an unfinished intent (which the sink may delete and write again) are never touched.

Row content is preserved exactly: Parquet objects of one schema are concatenated table by table
(same schema, same values; objects of another schema go to another output), raw objects are
concatenated byte for byte (a gzip file may hold several members).
"""

from __future__ import annotations

import io
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from cryptosent.errors import FatalError
from cryptosent.sinks.lake import Lake, LakeLocation, lake_failure
from cryptosent.storage.lake_files import (
    LakeObject,
    compacted_name,
    dead,
    list_layer,
    live,
)

log = logging.getLogger(__name__)

LAYERS = ("processed", "raw", "prices")
"""The lake's layers, each compacted on its own."""

IO_THREADS = 16
"""Object reads and deletes in flight at once."""

ROW_GROUP_ROWS = 250_000
"""Rows per Parquet row group of a compacted object (inputs are gathered up to this)."""

MAX_NAME_BYTES = 255
"""Longest compacted file name (most local filesystems' limit; S3 allows 1,024 for the key)."""

Committed = Mapping[tuple[str, int], int]
"""(topic, partition) -> the lake sink's next offset (everything below is durable)."""


@dataclass(frozen=True)
class Merge:
    """One compacted object to write: its key and the live objects it replaces."""

    key: str
    inputs: tuple[LakeObject, ...]

    @property
    def bytes_in(self) -> int:
        """Total size of the inputs."""
        return sum(o.size for o in self.inputs)


@dataclass
class Report:
    """What a compaction run did (or, dry, would do)."""

    merges: list[Merge] = field(default_factory=list)
    written: int = 0  # compacted objects written
    rows: int = 0  # Parquet rows written into compacted objects
    bytes_in: int = 0
    bytes_out: int = 0
    deleted: int = 0
    skipped: list[str] = field(default_factory=list)  # why a group was left as it is
    before: dict[tuple[str, date], int] = field(default_factory=dict)  # live objects per day
    after: dict[tuple[str, date], int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def eligible(obj: LakeObject, committed: Committed) -> bool:
    """Every offset the object holds is below the lake sink's committed offset: no unfinished
    write can still delete or rewrite it."""
    return obj.parsed and all(
        last < committed.get((obj.topic, partition), 0) for partition, _first, last in obj.ranges
    )


def _overlap(a: Sequence[tuple[int, int, int]], b: LakeObject) -> bool:
    for partition, first, last in a:
        span = b.offsets(partition)
        if span is not None and span[0] <= last and first <= span[1]:
            return True
    return False


def _spans(units: Iterable[LakeObject]) -> list[tuple[int, int, int]]:
    spans: dict[int, tuple[int, int]] = {}
    for u in units:
        for p, first, last in u.ranges:
            lo, hi = spans.get(p, (first, last))
            spans[p] = (min(lo, first), max(hi, last))
    return [(p, lo, hi) for p, (lo, hi) in sorted(spans.items())]


def _safe(group: Sequence[LakeObject], scope: Iterable[LakeObject]) -> bool:
    """The group's compacted object would cover no live object outside the group (else that
    object's rows would vanish from readers)."""
    spans = _spans(group)
    keys = {u.key for u in group}
    first = group[0]
    return not any(
        o.key not in keys and (o.topic, o.ext) == (first.topic, first.ext) and _overlap(spans, o)
        for o in scope
    )


def plan_scope(
    scope: Sequence[LakeObject],
    folder: str,
    committed: Committed,
    target_bytes: int,
) -> tuple[list[Merge], list[str]]:
    """Merges for one scope (an hour folder, or a whole day written to its day folder): the live,
    eligible objects per topic and extension in offset order, cut into runs of about
    target_bytes; each run becomes one compacted object in folder. Also the reasons runs were
    left alone."""
    alive = live(scope)
    groups: dict[tuple[str, str], list[LakeObject]] = defaultdict(list)
    for obj in alive:
        if eligible(obj, committed):
            groups[(obj.topic, obj.ext)].append(obj)
    merges: list[Merge] = []
    skipped: list[str] = []
    for (topic, ext), units in sorted(groups.items()):
        units.sort(key=lambda o: o.ranges[0])
        runs: list[list[LakeObject]] = [[]]
        size = 0
        for unit in units:
            # cut only where the next object shares no offsets with the run: a day's hours hold
            # the same flush's offsets (one object per hour), and those must stay together.
            # A name names each partition's range: many partitions make another object (a file
            # name holds at most 255 bytes)
            spans = _spans(runs[-1])
            full = size + unit.size > target_bytes or (
                len(compacted_name(topic, [*spans, *unit.ranges], ext)) > MAX_NAME_BYTES
            )
            if runs[-1] and full and not _overlap(spans, unit):
                runs.append([])
                size = 0
            runs[-1].append(unit)
            size += unit.size
        for run in runs:
            if len(run) < 2:
                continue
            if not _safe(run, alive):
                skipped.append(f"{folder}: {topic}{ext} run of {len(run)} overlaps other objects")
                continue
            name = compacted_name(topic, _spans(run), ext)
            if len(name) > MAX_NAME_BYTES:
                skipped.append(f"{folder}: {topic}{ext} run of {len(run)}: name too long")
                continue
            key = f"{folder}/{name}"
            if key in {u.key for u in run}:
                continue  # already one compacted object
            merges.append(Merge(key, tuple(run)))
    return merges, skipped


def closed_scopes(
    objects: Iterable[LakeObject], cutoff: datetime
) -> tuple[set[tuple[date, int]], set[date]]:
    """(hours, days) closed before cutoff: a day whose end is before cutoff is compacted as a
    whole; an hour whose end is before cutoff, in a day still open, on its own."""
    hours: set[tuple[date, int]] = set()
    days: set[date] = set()
    for obj in objects:
        if obj.day is None or not obj.parsed:
            continue
        day_end = datetime.combine(obj.day, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
        if day_end <= cutoff:
            days.add(obj.day)
        elif obj.hour is not None and obj.rows_until is not None and obj.rows_until <= cutoff:
            hours.add((obj.day, obj.hour))
    return hours, days


class Compactor:
    """Compacts the layers of one lake (see the module's docstring)."""

    def __init__(
        self,
        location: LakeLocation,
        committed: Callable[[], Committed],
        *,
        target_bytes: int = 128 * 2**20,
        grace_seconds: float = 30.0,
        layers: Sequence[str] = LAYERS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_put: Callable[[Merge], None] | None = None,
    ) -> None:
        self.location = location
        self.lake = Lake(location)
        self.committed = committed
        self.target_bytes = target_bytes
        self.grace_seconds = grace_seconds
        self.layers = tuple(layers)
        self._sleep = sleep
        self._clock = clock
        self._after_put = after_put  # a hook for fault tests (a kill between two puts)

    def run(self, older_than: timedelta, *, dry_run: bool = False) -> Report:
        """Compact every hour and day that closed more than older_than ago; what was done."""
        started, cpu = time.monotonic(), time.process_time()
        report = Report()
        committed = self.committed()  # before listing: what it allows is already listed
        cutoff = self._clock() - older_than
        touched: dict[str, set[date]] = defaultdict(set)
        for layer in self.layers:
            listing = list_layer(self.location, layer)
            _count(live(listing), report.before)
            hours, days = closed_scopes(listing, cutoff)
            by_day: dict[date, list[LakeObject]] = defaultdict(list)
            for obj in listing:
                if obj.day is not None:
                    by_day[obj.day].append(obj)
            for day in sorted(by_day):
                objects = by_day[day]
                if dead(objects):
                    touched[layer].add(day)  # leftovers of a killed run
                scopes: list[tuple[str, list[LakeObject]]] = []
                if day in days:
                    scopes.append((f"{layer}/dt={day.isoformat()}", objects))
                else:
                    for hour in sorted(h for d, h in hours if d == day):
                        folder = f"{layer}/dt={day.isoformat()}/hour={hour:02d}"
                        scope = [o for o in objects if o.folder == folder or o.hour is None]
                        scopes.append((folder, scope))
                for folder, scope in scopes:
                    merges, skipped = plan_scope(scope, folder, committed, self.target_bytes)
                    report.skipped.extend(skipped)
                    for merge in merges:
                        report.merges.append(merge)
                        report.bytes_in += merge.bytes_in
                        if not dry_run:
                            self._write(merge, report)
                            touched[layer].add(day)
        if not dry_run and touched:
            # readers that listed before a put may still be opening what they listed
            self._sleep(self.grace_seconds)
            for layer, days_touched in touched.items():
                for day in sorted(days_touched):
                    since = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                    listing = list_layer(
                        self.location, layer, since=since, until=since + timedelta(days=1)
                    )
                    garbage = [o.key for o in dead(listing)]
                    self._delete(garbage)
                    report.deleted += len(garbage)
        for layer in self.layers:
            _count(live(list_layer(self.location, layer)), report.after)
        report.seconds = time.monotonic() - started
        report.cpu_seconds = time.process_time() - cpu
        return report

    def _write(self, merge: Merge, report: Report) -> None:
        try:
            data, rows = self._merged(merge)
        except CompactionConflict as conflict:
            report.skipped.append(str(conflict))
            return
        self.lake.put(merge.key, data)
        report.written += 1
        report.rows += rows
        report.bytes_out += len(data)
        log.info("compacted %d objects into %s", len(merge.inputs), merge.key)
        if self._after_put is not None:
            self._after_put(merge)

    def _merged(self, merge: Merge) -> tuple[bytes, int]:
        if merge.inputs[0].ext == ".jsonl.gz":
            # gzip members concatenate into one valid gzip file: the raw bytes stay as received
            return b"".join(self._read_all(merge.inputs)), 0
        out = io.BytesIO()
        schema: pa.Schema | None = None
        writer: pq.ParquetWriter | None = None
        pending: list[pa.Table] = []
        rows = 0
        for obj, data in zip(merge.inputs, self._read_all(merge.inputs), strict=True):
            table = pq.read_table(io.BytesIO(data))
            if schema is None:
                schema = table.schema
                writer = pq.ParquetWriter(out, schema, compression="zstd")
            elif not table.schema.equals(schema, check_metadata=False):
                raise CompactionConflict(
                    f"{obj.key}: its schema differs from {merge.inputs[0].key}'s; not merged"
                )
            pending.append(table)
            rows += table.num_rows
            if sum(t.num_rows for t in pending) >= ROW_GROUP_ROWS:
                assert writer is not None
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                pending.clear()
        assert writer is not None
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
        writer.close()
        return out.getvalue(), rows

    def _read_all(self, objects: Sequence[LakeObject]) -> Iterator[bytes]:
        """The objects' bytes in order, fetched IO_THREADS at a time (an object store answers
        each request in tens of milliseconds; a day is thousands of objects)."""
        with ThreadPoolExecutor(IO_THREADS) as pool:
            yield from pool.map(self._read, objects)

    def _delete(self, keys: Sequence[str]) -> None:
        """Delete objects, IO_THREADS at a time; one already gone is fine."""
        fs = self.location.fs

        def delete(key: str) -> None:
            try:
                fs.delete_file(self.lake.path(key))
            except FileNotFoundError:
                pass
            except OSError as err:
                what = f"lake delete failed for {self.location.url}/{key}"
                raise lake_failure(err, what) from err

        with ThreadPoolExecutor(IO_THREADS) as pool:
            list(pool.map(delete, keys))

    def _read(self, obj: LakeObject) -> bytes:
        path = self.lake.path(obj.key)
        try:
            with self.location.fs.open_input_stream(path, compression=None) as stream:
                return bytes(stream.read())
        except OSError as err:
            raise lake_failure(err, f"lake read failed for {self.location.url}/{obj.key}") from err


class CompactionConflict(FatalError):
    """Objects planned together cannot be merged (different Parquet schemas)."""


def _count(objects: Iterable[LakeObject], into: dict[tuple[str, date], int]) -> None:
    for obj in objects:
        if obj.day is not None:
            into[(obj.layer, obj.day)] = into.get((obj.layer, obj.day), 0) + 1


def committed_offsets(dsn: str, groups: Sequence[str]) -> dict[tuple[str, int], int]:
    """The lake sinks' committed offsets of consumer groups (the lowest, where several groups
    wrote the same topic): (topic, partition) -> next offset."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=5) as conn:
        try:
            rows = conn.execute(
                "select topic, partition, min(next_offset) from kafka_offsets"
                " where sink = 'lake' and consumer_group = any(%s) group by topic, partition",
                [list(groups)],
            ).fetchall()
        except psycopg.errors.UndefinedTable as err:
            raise FatalError(
                "lake compaction needs the lake sink's offsets, and PostgreSQL has no "
                "kafka_offsets table: run `cryptosent db migrate` (and the processor) first"
            ) from err
    return {(str(t), int(str(p))): int(str(n)) for t, p, n in rows}


def per_day(report: Report) -> list[tuple[str, date, int, int]]:
    """(layer, day, live objects before, after), sorted."""
    keys = sorted(set(report.before) | set(report.after))
    return [(layer, day, report.before.get((layer, day), 0), report.after.get((layer, day), 0))
            for layer, day in keys]  # fmt: skip


__all__ = [
    "LAYERS",
    "CompactionConflict",
    "Compactor",
    "Merge",
    "Report",
    "closed_scopes",
    "committed_offsets",
    "eligible",
    "per_day",
    "plan_scope",
]
