"""Lake sink: raw messages (gzip JSON Lines, the exact bytes received) and processed Parquet (zstd),
Hive-partitioned by the tweet's hour, on S3 or a local directory.

Object names come from topic, partition and offset range, e.g.
``processed/dt=2026-11-23/hour=14/tweets-p003-000000001000-000000001999.parquet``; a local
object is written under a temporary name and renamed, so a reader never sees half a file.

The sink buffers batches (the lake prefers few large objects) and flushes every
`lake_flush_seconds` or `lake_flush_rows`. A full buffer is rendered (Parquet, gzip) and written
on a background thread while the processor consumes the next batches (at most one flush in
flight: a second full buffer waits for it); a flush the checkpoint asks for (revocation, the end,
an idle stream) waits for the one in flight and writes the rest itself. A flush follows an
intent protocol, so a crash at any point leaves no duplicate object behind: (1) record the keys
about to be written in `lake_intents` (committed before the first byte), (2) put every object,
(3) advance the lake's offsets and delete the intent in one transaction. On `resume`, objects of
intents a crashed writer left are deleted before the partition is consumed again.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from isal import igzip

from cryptosent.batch import SCHEMA, Ranges, ScoredBatch
from cryptosent.config import Settings
from cryptosent.errors import FatalError, TransientError
from cryptosent.runtime import Retry
from cryptosent.sinks.base import Sink, Written
from cryptosent.sinks.database import Connection, Database
from cryptosent.sinks.offsets import OffsetStore, StaleBatch

log = logging.getLogger(__name__)


class LakeError(FatalError):
    """The lake URL or a write failed in a way a user must fix (a wrong URL, a missing bucket,
    refused credentials, a path that is not a writable folder); ``str(err)`` is one line."""


class LakeUnavailable(TransientError):
    """The object store cannot be reached, or the disk is full: retry with backoff (freeing
    space or restarting the server resumes the pipeline without a restart)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, service="the lake")


# Failures retrying cannot fix. Local: permissions, a read-only disk, a file where a folder
# should be. S3 (pyarrow names AWS errors "AWS Error <CODE> during ..."): refused credentials,
# a missing bucket.
_FATAL_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}
)
_FATAL_AWS = re.compile(
    r"AWS Error (ACCESS_DENIED|SIGNATURE_DOES_NOT_MATCH|INVALID_ACCESS_KEY_ID|NO_SUCH_BUCKET"
    r"|MISSING_AUTHENTICATION_TOKEN|INVALID_CLIENT_TOKEN_ID|UNRECOGNIZED_CLIENT)\b"
    r"|HTTP status 40[13]\b"
)
_FIX = {
    errno.EACCES: "make the lake folder writable or set CRYPTOSENT_LAKE_URL",
    errno.EPERM: "make the lake folder writable or set CRYPTOSENT_LAKE_URL",
    errno.EROFS: "the disk is read-only: set CRYPTOSENT_LAKE_URL",
    errno.ENOTDIR: "a file stands where a folder of the lake should be: move it or set "
    "CRYPTOSENT_LAKE_URL",
}


def lake_failure(err: OSError, what: str) -> LakeError | LakeUnavailable:
    """The error kind of an OSError from the lake's filesystem; `what` says which operation."""
    message = f"{what}: {err}"
    if err.errno in _FATAL_ERRNOS:
        fix = _FIX.get(err.errno)
        return LakeError(f"{message} ({fix})" if fix else message)
    if _FATAL_AWS.search(str(err)):
        return LakeError(
            f"{message} (check the bucket in CRYPTOSENT_LAKE_URL and AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY)"
        )
    return LakeUnavailable(message)


@dataclass(frozen=True)
class LakeLocation:
    """A filesystem and the base path inside it."""

    fs: pafs.FileSystem
    base: str
    url: str
    local: bool


def open_lake(
    url: str,
    *,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = "us-east-1",
) -> LakeLocation:
    """Resolve a lake URL (`file://<path>` or `s3://bucket/prefix`) to a filesystem."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = (parts.netloc + parts.path) or "."
        fs = pafs.LocalFileSystem()
        base = os.path.abspath(path)
        return LakeLocation(fs, base, url, local=True)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise LakeError(f"lake URL {url!r} has no bucket: use s3://bucket/prefix")
        options: dict[str, object] = {"region": region}
        if endpoint_url:
            endpoint = urlsplit(endpoint_url)
            options["endpoint_override"] = endpoint.netloc
            options["scheme"] = endpoint.scheme or "https"
            options["force_virtual_addressing"] = False
        if access_key and secret_key:
            options["access_key"] = access_key
            options["secret_key"] = secret_key
        fs = pafs.S3FileSystem(**options)
        base = (parts.netloc + "/" + parts.path.strip("/")).rstrip("/")
        return LakeLocation(fs, base, url, local=False)
    raise LakeError(f"lake URL {url!r}: use file://<path> or s3://bucket/prefix")


def lake_location(settings: Settings, url: str | None = None) -> LakeLocation:
    """The configured lake (or url) with the configured S3 endpoint, credentials and region."""
    access_key, secret_key = settings.s3_credentials()
    return open_lake(
        url or settings.lake_url,
        endpoint_url=settings.s3_endpoint_url,
        access_key=access_key,
        secret_key=secret_key,
        region=settings.aws_region,
    )


@dataclass
class PendingObjects:
    """Objects rendered for one flush: key -> bytes, and the offsets they cover."""

    blobs: dict[str, bytes]
    ranges: Ranges
    rows: int


@dataclass
class LakeBuffer:
    """Batches accumulated between flushes (the lake prefers few large objects)."""

    tables: list[pa.Table] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    ranges: Ranges = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Tweets buffered."""
        return len(self.raw)

    @property
    def empty(self) -> bool:
        """Nothing consumed since the last flush (not even invalid messages)."""
        return not self.ranges

    def add(self, batch: ScoredBatch) -> None:
        """Append a batch (already trimmed to what the lake has not stored)."""
        if batch.size:
            self.tables.append(batch.table)
            self.raw.extend(batch.raw)
        for partition, (first, last) in batch.ranges.items():
            if partition in self.ranges:
                first = self.ranges[partition][0]
            self.ranges[partition] = (first, last)

    def discard(self, partitions: Collection[int]) -> None:
        """Forget the rows and ranges of partitions (they moved to another member)."""
        lost = set(partitions) & set(self.ranges)
        if not lost:
            return
        kept = [
            ScoredBatch(table, raw, {}).without(lost)
            for table, raw in zip(self.tables, self._raw_per_table(), strict=True)
        ]
        self.tables = [b.table for b in kept]
        self.raw = [line for b in kept for line in b.raw]
        for partition in lost:
            self.ranges.pop(partition, None)

    def _raw_per_table(self) -> list[list[bytes]]:
        out, start = [], 0
        for table in self.tables:
            out.append(self.raw[start : start + table.num_rows])
            start += table.num_rows
        return out

    def clear(self) -> None:
        """Forget everything (after a flush)."""
        self.tables.clear()
        self.raw.clear()
        self.ranges.clear()


def render(buffer: LakeBuffer, topic: str) -> PendingObjects:
    """Turn the buffer into objects: one raw and one Parquet per (partition, hour)."""
    blobs: dict[str, bytes] = {}
    if buffer.rows:
        table = pa.concat_tables(buffer.tables)
        order, groups = hour_groups(table.column("kafka_partition"), table.column("created_at"))
        raw = buffer.raw
        runs = group_runs(order, [(start, end) for _, start, end in groups])
        if runs is None:  # short runs (rows of partitions interleaved): one take, then slices
            table = table.take(pa.array(order))
            raw = [raw[i] for i in order.tolist()]
            runs = [[(start, end - start)] for _, start, end in groups]
        for ((partition, hour), _, _), pieces in zip(groups, runs, strict=True):
            first, last = buffer.ranges[partition]
            name = f"{topic}-p{partition:03d}-{first:012d}-{last:012d}"
            parquet = io.BytesIO()
            part = (
                table.slice(*pieces[0])
                if len(pieces) == 1
                else pa.concat_tables([table.slice(*piece) for piece in pieces])
            )
            pq.write_table(
                part, parquet, compression="zstd", use_dictionary=_DICTIONARY_COLUMNS
            )  # fmt: skip
            blobs[f"processed/{hour}/{name}.parquet"] = parquet.getvalue()
            lines = _lines(list(chain.from_iterable(raw[at : at + n] for at, n in pieces)))
            blobs[f"raw/{hour}/{name}.jsonl.gz"] = igzip.compress(lines, compresslevel=1, mtime=0)
    return PendingObjects(blobs, dict(buffer.ranges), buffer.rows)


# Below this many rows a run on average, `render` takes the rows into order instead of slicing
# them: slices of a few rows cost more than one copy.
_MIN_RUN = 64


def group_runs(
    order: npt.NDArray[np.intp], groups: Sequence[tuple[int, int]]
) -> list[list[tuple[int, int]]] | None:
    """Each group's rows (``groups``: start and end in ``order``) as runs of consecutive row
    numbers, (first row, rows) each, in ``order``; None when the runs average under `_MIN_RUN`
    rows. A consumer gets a partition's messages in long runs (2-4 runs per 20,000-message
    batch from 6 partitions), so a buffer's rows usually need no copy to be grouped."""
    n = len(order)
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    if (len(breaks) + len(groups)) * _MIN_RUN > n:
        return None
    bounds = np.union1d(breaks, np.array([start for start, _ in groups], np.intp))
    ends = np.r_[bounds[1:], n]
    firsts, lengths = order[bounds].tolist(), (ends - bounds).tolist()
    out = []
    for start, end in groups:
        lo, hi = np.searchsorted(bounds, [start, end]).tolist()
        out.append(list(zip(firsts[lo:hi], lengths[lo:hi], strict=True)))
    return out


# Dictionary pages pay off for repeated values; ids, texts, times and offsets are (nearly) all
# distinct, and trying them costs a sixth of the write (0.87 -> 0.74 CPU ms per 1,000 tweets).
_DICTIONARY_COLUMNS = [
    name for name in SCHEMA.names if name not in ("id", "created_at", "text", "kafka_offset")
]
_HOUR_US = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_name(hour: int) -> str:
    """The Hive folder of an hour counted from the epoch: ``dt=2026-11-23/hour=14``."""
    t = _EPOCH + timedelta(hours=hour)
    return f"dt={t.year:04d}-{t.month:02d}-{t.day:02d}/hour={t.hour:02d}"


def hour_groups(
    partitions: pa.ChunkedArray, created_at: pa.ChunkedArray
) -> tuple[npt.NDArray[np.intp], list[tuple[tuple[int, str], int, int]]]:
    """The rows grouped by (partition, hour of created_at): the row order that puts each group
    together (in (partition, hour) order, rows ascending inside a group) and each group's
    (partition, hour folder) with its start and end in that order. By arrays: only the
    distinct hours are formatted."""
    hours = created_at.cast(pa.int64()).to_numpy() // _HOUR_US
    distinct, codes = np.unique(hours, return_inverse=True)
    keys = partitions.to_numpy().astype(np.int64) * len(distinct) + codes
    order = np.argsort(keys, kind="stable")  # stable: row numbers stay ascending in a group
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    names = [hour_name(int(hour)) for hour in distinct]
    groups = [
        ((key // len(names), names[key % len(names)]), start, end)
        for key, start, end in zip(
            sorted_keys[starts].tolist(), starts.tolist(), ends.tolist(), strict=True
        )
    ]
    return order, groups


def _lines(raws: list[bytes]) -> bytes:
    """Messages as JSON Lines: one a line, each ending with a line break."""
    joined = b"\n".join([*raws, b""])  # one copy of the bytes, not two
    if _line_breaks(joined) == len(raws):
        return joined  # the usual case: no message holds a line break of its own
    return b"".join(_one_line(raw) + b"\n" for raw in raws)


def _python_line_breaks(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r")


def _compiled_line_breaks() -> Callable[[bytes], int]:
    """The compiled core's count (``rust/vader_core``; `sinks/` imports the module itself, as
    it may not import `analysis/`), or the Python one when the core is not installed."""
    try:
        count: Callable[[bytes], int] = importlib.import_module("cryptosent_vader_core").line_breaks
    except (ImportError, AttributeError):
        return _python_line_breaks
    return count


# line feeds and carriage returns in a batch's joined messages: the compiled core counts them
# without the GIL and ten times faster than bytes.count (1,600 instructions a message there)
_line_breaks = _compiled_line_breaks()


def _one_line(raw: bytes) -> bytes:
    # A valid JSON message can only hold a newline as whitespace between tokens (never inside a
    # string), so turning it into a space keeps the same JSON and one message per line.
    if b"\n" in raw or b"\r" in raw:
        return raw.replace(b"\r", b" ").replace(b"\n", b" ")
    return raw


class Lake:
    """Puts and deletes objects under the lake's base path."""

    def __init__(self, location: LakeLocation) -> None:
        self.location = location

    def path(self, key: str) -> str:
        """The filesystem path of a key."""
        return f"{self.location.base}/{key}"

    def put(self, key: str, data: bytes) -> None:
        """Write one object completely or not at all (bytes as given: pyarrow would otherwise
        gzip a `.gz` name a second time)."""
        fs, path = self.location.fs, self.path(key)
        try:
            if self.location.local:
                directory = path.rsplit("/", 1)[0]
                fs.create_dir(directory, recursive=True)
                temp = f"{directory}/.tmp-{uuid.uuid4().hex}"
                try:
                    with fs.open_output_stream(temp, compression=None) as stream:
                        stream.write(data)
                    fs.move(temp, path)
                except BaseException:
                    _delete_quietly(fs, temp)
                    raise
            else:
                with fs.open_output_stream(path, compression=None) as stream:
                    stream.write(data)
        except OSError as err:
            raise lake_failure(err, f"lake write failed for {self.location.url}/{key}") from err

    def put_all(self, blobs: Mapping[str, bytes]) -> None:
        """Write every object (each one atomically)."""
        for key, data in blobs.items():
            self.put(key, data)

    def delete(self, keys: Iterable[str]) -> None:
        """Delete objects that exist; missing ones are fine, other failures raise."""
        fs = self.location.fs
        for key in keys:
            try:
                if fs.get_file_info(self.path(key)).type != pafs.FileType.NotFound:
                    fs.delete_file(self.path(key))
            except OSError as err:
                what = f"lake delete failed for {self.location.url}/{key}"
                raise lake_failure(err, what) from err


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    try:
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.NotFound:
            fs.delete_file(path)
    except OSError:
        pass


class IntentLog:
    """The lake's half of its protocol kept in PostgreSQL (table `lake_intents`): keys about to
    be written, and the atomic "objects durable: advance the offsets, forget the intent"."""

    def __init__(self, offsets: OffsetStore) -> None:
        self.offsets = offsets
        self.group, self.topic = offsets.group, offsets.topic

    def begin(self, conn: Connection, keys: list[str], partitions: Iterable[int]) -> int:
        """Record that keys are about to be written; the intent's id."""
        row = conn.execute(
            "insert into lake_intents (consumer_group, topic, partitions, keys)"
            " values (%s, %s, %s, %s) returning id",
            [self.group, self.topic, sorted(partitions), keys],
        ).fetchone()
        assert row is not None
        return int(str(row[0]))

    def finish(self, conn: Connection, intent: int, ranges: Ranges, keys: Iterable[str]) -> None:
        """The objects are durable: advance the lake's offsets and drop the intent.

        Intents of the same group and topic naming any of keys go too: those objects now hold
        these rows (same name, same content), and deleting them later would lose the lake's copy.
        An intent whose insert committed but whose answer was lost (a dropped connection) is one.
        """
        self.offsets.advance(conn, LakeSink.name, ranges)
        conn.execute(
            "delete from lake_intents where id = %s or (consumer_group = %s"
            " and topic = %s and keys && %s::text[])",
            [intent, self.group, self.topic, list(keys)],
        )

    def abandoned(self, conn: Connection, partitions: Iterable[int]) -> list[tuple[int, list[str]]]:
        """Intents left by a crashed writer that touch any of partitions: (id, keys)."""
        rows = conn.execute(
            "select id, keys from lake_intents where consumer_group = %s and topic = %s"
            " and partitions && %s::integer[] order by id",
            [self.group, self.topic, list(partitions)],
        ).fetchall()
        return [(int(str(i)), list(keys)) for i, keys in rows]  # type: ignore[call-overload]

    def forget(self, conn: Connection, intent: int) -> None:
        """Drop an intent whose objects were deleted (or are known to hold the same rows)."""
        conn.execute("delete from lake_intents where id = %s", [intent])


class LakeSink(Sink):
    """Buffers batches and writes them as raw and Parquet objects with the intent protocol."""

    name = "lake"

    def __init__(
        self,
        lake: Lake,
        database: Database,
        offsets: OffsetStore,
        retry: Retry,
        *,
        flush_interval_s: float = 60.0,
        flush_rows: int = 200_000,
        clock: _Clock = time.monotonic,
        background: bool = True,
    ) -> None:
        self.lake = lake
        self.database = database
        self.offsets = offsets
        self.intents = IntentLog(offsets)
        self.retry = retry
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self._clock = clock
        self.buffer = LakeBuffer()
        self.last_flush = clock()
        # a full buffer is written on this thread while the processor goes on (`background`)
        self.background = background
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future[list[Written]] | None = None
        self._done: list[Written] = []

    def resume(self, partitions: Sequence[int]) -> dict[int, int]:
        """Delete the objects of writes a crashed writer left unfinished; the stored offsets."""
        self._wait()  # the flush in flight may move them

        def prepare() -> dict[int, int]:
            with self.database.transaction() as conn:
                abandoned = self.intents.abandoned(conn, partitions)
            for intent, keys in abandoned:
                self.lake.delete(keys)
                with self.database.transaction() as conn:
                    self.intents.forget(conn, intent)
                log.info("deleted %d lake objects of an unfinished write", len(keys))
            with self.database.transaction() as conn:
                return self.offsets.load(conn, self.name, partitions)

        return self.retry(self.name, prepare)

    def add(self, batch: ScoredBatch) -> None:
        """Buffer the batch until the next flush; a full buffer (or one the flush interval
        passed) goes to the background writer, once the flush before it is done."""
        self.buffer.add(batch)
        if self.background and self.due(self._clock()):
            self._wait()
            self.last_flush = self._clock()
            buffer, self.buffer = self.buffer, LakeBuffer()
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-writer")
            self._pending = self._writer.submit(self.write, buffer)

    def due(self, now: float) -> bool:
        """A full buffer, or the flush interval passed with something buffered, or a background
        flush finished that nobody collected (a quiet stream: its offsets get committed)."""
        if self._pending is not None and self._pending.done():
            return True
        if self.buffer.empty:
            return False
        return self.buffer.rows >= self.flush_rows or now - self.last_flush >= self.flush_interval_s

    def completed(self) -> list[Written]:
        """The background flush that finished (if the one in flight did), and those collected."""
        if self._pending is not None and self._pending.done():
            self._wait()
        done, self._done = self._done, []
        return done

    def flush(self) -> list[Written]:
        """Wait for the flush in flight, then write the buffer as objects (retrying what is
        transient); what became durable."""
        self._wait()
        self.last_flush = self._clock()
        if not self.buffer.empty:
            self._done.extend(self.write(self.buffer))
            self.buffer = LakeBuffer()
        done, self._done = self._done, []
        return done

    def _wait(self) -> None:
        """Wait for the flush in flight and collect what it wrote (or raise its error)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._done.extend(pending.result())

    def write(self, buffer: LakeBuffer) -> list[Written]:
        """Write buffer as objects with the intent protocol (retrying what is transient)."""
        if buffer.empty:
            return []
        started = self._clock()
        pending = self.objects(buffer)
        # one intent for all retries: a new one per attempt would leave the earlier ones
        # behind, and the next assignment would delete these very objects as "unfinished"
        intent: int | None = None

        def attempt() -> None:
            nonlocal intent
            keys = list(pending.blobs)
            if intent is None:
                with self.database.transaction() as conn:
                    intent = self.intents.begin(conn, keys, pending.ranges)
            self.lake.put_all(pending.blobs)
            try:
                with self.database.transaction() as conn:
                    self.intents.finish(conn, intent, pending.ranges, keys)
            except StaleBatch as stale:
                # a member that lost these partitions without noticing (a zombie) raced the new
                # owner: keep the objects (same names hold the same rows) and drop the intent
                log.warning("lake range already stored by another processor: %s", stale)
                with self.database.transaction() as conn:
                    self.intents.forget(conn, intent)

        self.retry(self.name, attempt)
        return [
            Written(
                pending.ranges, rows=pending.rows, new=pending.rows, objects=len(pending.blobs),
                seconds=self._clock() - started,
            )
        ]  # fmt: skip

    def objects(self, buffer: LakeBuffer) -> PendingObjects:
        """The objects a flush writes: the tweets' raw and processed layers (the price stream's
        lake sink, `sinks.prices.PriceLakeSink`, writes its `prices/` layer instead)."""
        return render(buffer, self.offsets.topic)

    def discard(self, partitions: Collection[int]) -> None:
        """Forget buffered rows of partitions (their next owner writes them); a flush in flight
        lands first (a range another member stored meanwhile keeps its objects, see `write`)."""
        with contextlib.suppress(StaleBatch):
            self._wait()
        self.buffer.discard(partitions)

    def close(self) -> None:
        """Stop the background writer (after its flush) and close the bookkeeping connection."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        self.database.close()


_Clock = Callable[[], float]


def open_sink(settings: Settings, retry: Retry) -> LakeSink:
    """The lake sink of the configured lake URL (S3 or a local folder)."""
    return LakeSink(
        Lake(lake_location(settings)),
        Database(settings.database_dsn(), application_name="cryptosent-lake", stop=retry.stop),
        OffsetStore(settings.consumer_group, settings.topic),
        retry,
        flush_interval_s=settings.lake_flush_seconds,
        flush_rows=settings.lake_flush_rows,
    )
