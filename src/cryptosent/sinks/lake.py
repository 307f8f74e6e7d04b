"""Lake sink: raw messages (gzip JSON Lines, the exact bytes received) and processed Parquet (zstd),
Hive-partitioned by the tweet's hour, on S3 or a local directory.

Object names come from topic, partition and offset range, e.g.
``processed/dt=2026-11-23/hour=14/tweets-p003-000000001000-000000001999.parquet``; a local
object is written under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import gzip
import io
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cryptosent.batch import ScoredBatch


class LakeError(RuntimeError):
    """The lake URL or a write failed in a way a user must fix; ``str(err)`` is one line."""


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


@dataclass
class PendingObjects:
    """Objects rendered for one flush: key -> bytes, and the offsets they cover."""

    blobs: dict[str, bytes]
    ranges: dict[int, tuple[int, int]]
    rows: int


@dataclass
class LakeBuffer:
    """Batches accumulated between flushes (the lake prefers few large objects)."""

    tables: list[pa.Table] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Tweets buffered."""
        return len(self.raw)

    @property
    def empty(self) -> bool:
        """Nothing consumed since the last flush (not even invalid messages)."""
        return not self.ranges

    def add(self, batch: ScoredBatch, ranges: Mapping[int, tuple[int, int]]) -> None:
        """Append a batch (already trimmed to what the lake has not stored)."""
        if batch.size:
            self.tables.append(batch.table)
            self.raw.extend(batch.raw)
        for partition, (first, last) in ranges.items():
            if partition in self.ranges:
                first = self.ranges[partition][0]
            self.ranges[partition] = (first, last)

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
        hours = pc.strftime(table.column("created_at"), format="dt=%Y-%m-%d/hour=%H")
        groups: dict[tuple[int, str], list[int]] = defaultdict(list)
        for index, (partition, hour) in enumerate(
            zip(table.column("kafka_partition").to_pylist(), hours.to_pylist(), strict=True)
        ):
            groups[(partition, hour)].append(index)
        for (partition, hour), indexes in sorted(groups.items()):
            first, last = buffer.ranges[partition]
            name = f"{topic}-p{partition:03d}-{first:012d}-{last:012d}"
            part = table.take(pa.array(indexes, pa.int64()))
            parquet = io.BytesIO()
            pq.write_table(part, parquet, compression="zstd")
            blobs[f"processed/{hour}/{name}.parquet"] = parquet.getvalue()
            lines = b"".join(_one_line(buffer.raw[i]) + b"\n" for i in indexes)
            blobs[f"raw/{hour}/{name}.jsonl.gz"] = gzip.compress(lines, compresslevel=1, mtime=0)
    return PendingObjects(blobs, dict(buffer.ranges), buffer.rows)


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
            raise LakeError(f"lake write failed for {self.location.url}/{key}: {err}") from err

    def put_all(self, blobs: Mapping[str, bytes]) -> None:
        """Write every object (each one atomically)."""
        for key, data in blobs.items():
            self.put(key, data)

    def delete(self, keys: Iterable[str]) -> None:
        """Delete objects that exist; missing ones are fine, other failures raise LakeError."""
        fs = self.location.fs
        for key in keys:
            try:
                if fs.get_file_info(self.path(key)).type != pafs.FileType.NotFound:
                    fs.delete_file(self.path(key))
            except OSError as err:
                raise LakeError(f"lake delete failed for {self.location.url}/{key}: {err}") from err


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    try:
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.NotFound:
            fs.delete_file(path)
    except OSError:
        pass
