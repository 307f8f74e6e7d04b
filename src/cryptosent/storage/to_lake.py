"""Replay to the lake: a historical archive (the formats `cryptosent replay` reads) written
straight into the lake's raw and processed layers, without Kafka, scored as the processor scores.

Each tweet goes the processor's way: encoded as the Kafka message `cryptosent replay` would have
sent (`model.encode_tweet`), validated by the processor's `transform.decode` (its time sanity
included), scored by its `Scorer` inside its campaign stage (`processor.campaigns`; the stage's
detector sees the archive in file order, batch by batch, as a processor would), and rendered and
put by the lake sink's own `render` / `Lake.put`.

Keys, so that readers and compaction understand the objects (docs/storage.md): the archive is a
pseudo topic ``archive.<file stem>`` (lower case; characters other than letters, digits, ``.``
and ``_`` become ``_``) with one partition, 0, whose offsets are the tweets' ordinals among the
file's valid records (0-based). The archive is cut into fixed windows of `chunk_rows` ordinals;
window k's objects are ``<layer>/dt=.../hour=HH/archive.<stem>-p000-<k*chunk>-<(k+1)*chunk-1>``
(one per hour the window touches). The same file gives the same keys and the same bytes, so a
re-run replaces each object by itself: idempotent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Final

import pyarrow as pa
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

from cryptosent.batch import ScoredBatch
from cryptosent.config import Settings
from cryptosent.model import Tweet, encode_tweet
from cryptosent.processor.campaigns import campaign_stage
from cryptosent.processor.transform import Decoded, Scorer, decode
from cryptosent.runtime import Backoff, Retry, StopSignal
from cryptosent.sinks.lake import Lake, LakeBuffer, render
from cryptosent.sources.replay import BadLineHandler, ReplayFormat, read_replay

ARCHIVE_PREFIX: Final = "archive."
PARTITION: Final = 0
DEFAULT_CHUNK_ROWS: Final = 200_000
_UNSAFE: Final = re.compile(r"[^a-z0-9._]+")
_SUFFIXES: Final = {".gz", ".jsonl", ".ndjson", ".json", ".csv"}


def archive_topic(path: Path) -> str:
    """The pseudo topic of an archive file: ``archive.<stem>`` (``.gz`` and the format's suffix
    dropped, lower case, unsafe characters as ``_``)."""
    name = path.name
    while Path(name).suffix.lower() in _SUFFIXES:
        name = name[: -len(Path(name).suffix)]
    return ARCHIVE_PREFIX + (_UNSAFE.sub("_", name.lower()).strip("_") or "archive")


@dataclass(frozen=True)
class ArchiveMessage:
    """One archive record as the processor's transform reads a consumed Kafka message."""

    ordinal: int
    raw: bytes

    def error(self) -> None:
        """Never a consumer error."""
        return None

    def partition(self) -> int:
        """Always the archive's one partition."""
        return PARTITION

    def offset(self) -> int:
        """The record's ordinal among the file's valid records."""
        return self.ordinal

    def key(self) -> bytes | None:
        """Not used by the transform."""
        return None

    def value(self) -> bytes:
        """The message bytes `cryptosent replay` would have sent."""
        return self.raw

    def timestamp(self) -> tuple[int, int]:
        """No broker time: the transform takes "now" as the received time."""
        return (TIMESTAMP_NOT_AVAILABLE, -1)


@dataclass
class ToLakeStats:
    """What a load wrote so far."""

    topic: str
    tweets: int = 0
    refused: int = 0
    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    keys: list[str] = field(default_factory=list)
    complete_before: int = 0
    """The first ordinal of the last window when it is partial (else the end of the last one):
    every window before it is full and final, so compaction may merge its objects."""

    @property
    def rate_per_s(self) -> float:
        """Tweets a wall-clock second."""
        return self.tweets / self.seconds if self.seconds > 0 else 0.0


Scoring = Callable[[Decoded], ScoredBatch]


def scoring(settings: Settings, stop: StopSignal | None = None) -> Scoring:
    """The processor's scorer inside its campaign stage, without peers (nothing else writes the
    archive's pseudo topic)."""
    retry = Retry(Backoff(0.5, 10.0, factor=2.0), stop=stop)
    return campaign_stage(settings, Scorer(), retry, stop or StopSignal(), sinks=["lake"])


def windows(tweets: Iterable[Tweet], chunk_rows: int) -> Iterator[tuple[int, list[Tweet]]]:
    """(first ordinal, tweets) of each fixed window of chunk_rows tweets."""
    iterator = iter(tweets)
    first = 0
    while chunk := list(islice(iterator, chunk_rows)):
        yield first, chunk
        first += chunk_rows


def score_window(
    score: Scoring,
    first: int,
    tweets: list[Tweet],
    *,
    batch_size: int,
    future_margin: timedelta | None,
    on_refused: Callable[[int, str], None],
) -> list[ScoredBatch]:
    """The processor's work on one window: decode and score it in the processor's batch size;
    refused records are reported with their ordinal."""
    now = datetime.now(UTC)
    messages = [ArchiveMessage(first + i, encode_tweet(t)) for i, t in enumerate(tweets)]
    batches = []
    for start in range(0, len(messages), batch_size):
        decoded = decode(messages[start : start + batch_size], future_margin, now)
        batch = score(decoded)
        for message, reason in decoded.dead:
            on_refused(int(message.offset() or 0), reason)
        batches.append(batch)
    return batches


def load_archive(
    path: Path,
    lake: Lake,
    settings: Settings,
    *,
    fmt: ReplayFormat | None = None,
    columns: Mapping[str, str | None] | None = None,
    on_bad_line: BadLineHandler | None = None,
    on_refused: Callable[[int, str], None] | None = None,
    on_progress: Callable[[ToLakeStats], None] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    stop: StopSignal | None = None,
    score: Scoring | None = None,
) -> ToLakeStats:
    """Write the archive's tweets into the lake (raw and processed layers), window by window;
    a stop ends it after the window in hand (every window written is whole)."""
    started, cpu = time.monotonic(), time.process_time()
    stats = ToLakeStats(archive_topic(path))
    score = score or scoring(settings, stop)
    refused = on_refused or (lambda _ordinal, _reason: None)

    def count_refused(ordinal: int, reason: str) -> None:
        stats.refused += 1
        refused(ordinal, reason)

    tweets = read_replay(path, fmt=fmt, columns=columns, on_bad_line=on_bad_line)
    margin = timedelta(seconds=settings.future_margin_seconds)
    for first, chunk in windows(tweets, chunk_rows):
        batches = score_window(
            score, first, chunk, batch_size=settings.batch_size, future_margin=margin,
            on_refused=count_refused,
        )  # fmt: skip
        buffer = LakeBuffer()
        for batch in batches:
            buffer.add(batch)
        # the window's fixed range: the key does not depend on which records were valid
        buffer.ranges = {PARTITION: (first, first + chunk_rows - 1)}
        # one contiguous table: render takes each hour's rows from it, and a take across the
        # batches' chunks cost about 5 ms per object (a thin archive has thousands per window)
        if len(buffer.tables) > 1:
            buffer.tables = [pa.concat_tables(buffer.tables).combine_chunks()]
        pending = render(buffer, stats.topic)
        lake.put_all(pending.blobs)
        stats.tweets += pending.rows
        stats.objects += len(pending.blobs)
        stats.bytes += sum(len(b) for b in pending.blobs.values())
        stats.keys.extend(pending.blobs)
        stats.complete_before = first + chunk_rows if len(chunk) == chunk_rows else first
        stats.seconds = time.monotonic() - started
        stats.cpu_seconds = time.process_time() - cpu
        if on_progress is not None:
            on_progress(stats)
        if stop is not None and stop.is_set:
            break
    stats.seconds = time.monotonic() - started
    stats.cpu_seconds = time.process_time() - cpu
    return stats


def record_complete(dsn: str, group: str, stats: ToLakeStats) -> None:
    """Tell compaction which of the archive's objects are final: the lake sink's offset of the
    pseudo topic (`kafka_offsets`, consumer group `group`, what `lake compact` reads) moves to
    `stats.complete_before`, never backwards. The last, partial window is left out, so an
    archive appended to and loaded again cannot hide its new rows behind a compacted object."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=5) as conn:
        conn.execute(
            "insert into kafka_offsets (consumer_group, topic, partition, sink, next_offset)"
            " values (%s, %s, %s, 'lake', %s) on conflict (consumer_group, topic, partition, sink)"
            " do update set next_offset = greatest(kafka_offsets.next_offset,"
            " excluded.next_offset), updated_at = now()",
            [group, stats.topic, PARTITION, stats.complete_before],
        )


def count_records(path: Path) -> int:
    """Lines in the file (decompressed): the progress bar's total, an upper bound of tweets."""
    from cryptosent.sources.replay import open_binary

    lines = 0
    with open_binary(path) as stream:
        while block := stream.read(1 << 22):
            lines += block.count(b"\n")
    return lines
