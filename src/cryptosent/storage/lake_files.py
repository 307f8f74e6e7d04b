"""Which lake objects are live: the one place that lists a layer of the lake for readers.

Every object's key names the Kafka offsets it holds. The lake sink writes *small* objects,
one per (partition, hour) and flush::

    <layer>/dt=2026-11-23/hour=14/<topic>-p003-000000001000-000000001999.<ext>

Compaction writes *compacted* objects naming, per partition present, the offset range covered::

    <layer>/dt=2026-11-23/hour=14/<topic>-c-p000.000000000000-000000004999_p003.000000001000-000000009999.<ext>
    <layer>/dt=2026-11-23/<topic>-c-....<ext>          (a whole day: directly under dt=)

**The containment rule.** An object is live unless a compacted object of the same topic and
extension in its scope covers its every (partition, offset range). The scope of an object in an
hour folder is that folder plus its day's day-level objects; the scope of a day-level object is
the day-level objects of its day. Compaction writes the compacted object first, then deletes the
objects it covers, so whatever a listing catches (before the write, between write and deletes,
after), the live objects hold each row exactly once. `live` is a pure function of the listing.

Objects whose names do not follow this grammar (but end in ``.parquet`` or ``.jsonl.gz``) are
always live and never compacted; hidden names (``.tmp-...``, ``_SUCCESS``) are never listed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pyarrow.fs as pafs

from cryptosent.sinks.lake import LakeLocation, lake_failure

EXTENSIONS = (".parquet", ".jsonl.gz")
"""The extensions of lake objects (processed/prices Parquet, raw gzip JSON Lines)."""

Range = tuple[int, int, int]
"""(partition, first offset, last offset), inclusive."""

_SMALL = re.compile(r"^(?P<topic>.+)-p(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)$")
_COMPACTED = re.compile(r"^(?P<topic>.+)-c-(?P<segments>p\d+\.\d+-\d+(?:_p\d+\.\d+-\d+)*)$")
_SEGMENT = re.compile(r"p(?P<partition>\d+)\.(?P<first>\d+)-(?P<last>\d+)")
_DT = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
_HOUR = re.compile(r"^hour=(\d{2})$")


@dataclass(frozen=True)
class LakeObject:
    """One lake object: its key (relative to the lake's base) and what the key says about it."""

    key: str
    size: int = 0
    layer: str = ""
    day: date | None = None
    hour: int | None = None  # None: a day-level object (or one outside dt=/hour= folders)
    topic: str = ""
    ext: str = ""
    ranges: tuple[Range, ...] = ()  # sorted by partition; empty: a name outside the grammar
    compacted: bool = False
    _by_partition: dict[int, tuple[int, int]] = field(
        init=False, compare=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        spans = {p: (first, last) for p, first, last in self.ranges}
        object.__setattr__(self, "_by_partition", spans)

    @property
    def folder(self) -> str:
        """The key's folder (`<layer>/dt=.../hour=..` or `<layer>/dt=...`)."""
        return self.key.rsplit("/", 1)[0] if "/" in self.key else ""

    @property
    def parsed(self) -> bool:
        """The name follows the grammar (small or compacted), so it says which offsets it holds."""
        return bool(self.ranges)

    @property
    def rows_from(self) -> datetime | None:
        """Start of the time its rows were created in (its hour, or its day), UTC."""
        if self.day is None:
            return None
        return datetime.combine(self.day, time(self.hour or 0), tzinfo=UTC)

    @property
    def rows_until(self) -> datetime | None:
        """End (exclusive) of the time its rows were created in, UTC."""
        start = self.rows_from
        if start is None:
            return None
        return start + (timedelta(hours=1) if self.hour is not None else timedelta(days=1))

    def offsets(self, partition: int) -> tuple[int, int] | None:
        """The (first, last) offsets the key names for partition, if any."""
        return self._by_partition.get(partition)

    def covers(self, other: LakeObject) -> bool:
        """This compacted object holds every row of other (containment rule, scope included)."""
        if not (self.compacted and other.parsed) or self.key == other.key:
            return False
        if (self.layer, self.day, self.topic, self.ext) != (
            other.layer, other.day, other.topic, other.ext,
        ):  # fmt: skip
            return False
        if self.hour is not None and (other.hour != self.hour or other.folder != self.folder):
            return False
        if self.hour is None and self.day is None:
            return False
        for partition, first, last in other.ranges:
            mine = self._by_partition.get(partition)
            if mine is None or not (mine[0] <= first and last <= mine[1]):
                return False
        return True


def compacted_name(topic: str, ranges: Iterable[Range], ext: str) -> str:
    """The file name of a compacted object holding ranges (deterministic: a re-run after a
    crash writes the same name)."""
    merged = _merge(ranges)
    segments = "_".join(f"p{p:03d}.{first:012d}-{last:012d}" for p, first, last in merged)
    return f"{topic}-c-{segments}{ext}"


def small_name(topic: str, partition: int, first: int, last: int, ext: str) -> str:
    """The file name the lake sink gives an object (`sinks.lake.render`)."""
    return f"{topic}-p{partition:03d}-{first:012d}-{last:012d}{ext}"


def _merge(ranges: Iterable[Range]) -> tuple[Range, ...]:
    spans: dict[int, tuple[int, int]] = {}
    for partition, first, last in ranges:
        if partition in spans:
            lo, hi = spans[partition]
            spans[partition] = (min(lo, first), max(hi, last))
        else:
            spans[partition] = (first, last)
    return tuple((p, lo, hi) for p, (lo, hi) in sorted(spans.items()))


def parse_key(key: str, size: int = 0) -> LakeObject | None:
    """What a key says (None for names that are not lake objects: hidden or temporary files,
    other extensions)."""
    parts = key.split("/")
    name = parts[-1]
    ext = next((e for e in EXTENSIONS if name.endswith(e)), None)
    if ext is None or name.startswith((".", "_")):
        return None
    layer = parts[0] if len(parts) > 1 else ""
    day: date | None = None
    hour: int | None = None
    folders = parts[1:-1]
    if folders and (m := _DT.match(folders[0])):
        try:
            day = date.fromisoformat(m.group(1))
        except ValueError:
            day = None
        if day is not None and len(folders) == 2 and (h := _HOUR.match(folders[1])):
            hour = int(h.group(1))
        elif len(folders) != 1:
            day = None  # unknown layout: always live, never compacted
    stem = name[: -len(ext)]
    ranges: tuple[Range, ...] = ()
    topic = ""
    compacted = False
    layout_ok = day is not None and (hour is not None or len(folders) == 1)
    if layout_ok and (m := _COMPACTED.match(stem)):
        topic, compacted = m.group("topic"), True
        found = [
            (int(s.group("partition")), int(s.group("first")), int(s.group("last")))
            for s in _SEGMENT.finditer(m.group("segments"))
        ]
        if all(first <= last for _, first, last in found):
            ranges = _merge(found)
    elif layout_ok and hour is not None and (m := _SMALL.match(stem)):
        first, last = int(m.group("first")), int(m.group("last"))
        if first <= last:
            topic = m.group("topic")
            ranges = ((int(m.group("partition")), first, last),)
    if not ranges:
        topic, compacted = "", False
    return LakeObject(
        key=key, size=size, layer=layer, day=day, hour=hour, topic=topic, ext=ext,
        ranges=ranges, compacted=compacted,
    )  # fmt: skip


def live(objects: Iterable[LakeObject]) -> list[LakeObject]:
    """The live objects of a listing (containment rule), sorted by key."""
    everything = sorted(objects, key=lambda o: o.key)
    # coverers per (layer, day): compacted objects only (a small object covers nothing)
    coverers: dict[tuple[str, date | None], list[LakeObject]] = defaultdict(list)
    for obj in everything:
        if obj.compacted:
            coverers[(obj.layer, obj.day)].append(obj)
    return [
        obj
        for obj in everything
        if not any(c.covers(obj) for c in coverers.get((obj.layer, obj.day), ()))
    ]


def dead(objects: Iterable[LakeObject]) -> list[LakeObject]:
    """The objects of a listing that a live compacted object covers (safe to delete)."""
    everything = list(objects)
    alive = {o.key for o in live(everything)}
    return sorted((o for o in everything if o.key not in alive), key=lambda o: o.key)


def overlaps(obj: LakeObject, since: datetime | None, until: datetime | None) -> bool:
    """The object may hold rows created in [since, until) (always, for undated objects)."""
    start, end = obj.rows_from, obj.rows_until
    if start is None or end is None:
        return True
    return (since is None or end > since) and (until is None or start < until)


def list_layer(
    location: LakeLocation,
    layer: str,
    *,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
) -> list[LakeObject]:
    """Every object of a layer (live or not) that may hold rows created in [since, until),
    listing only the days in range; sorted by key."""
    lo, hi = _instant(since), _instant(until)
    root = f"{location.base}/{layer}"
    if lo is None and hi is None:
        found = _list(location, root, recursive=True)
    else:
        found = []
        for info in _list(location, root, recursive=False):
            name = info.path.rsplit("/", 1)[-1]
            m = _DT.match(name)
            if info.type == pafs.FileType.Directory and m:
                try:
                    day = date.fromisoformat(m.group(1))
                except ValueError:
                    day = None
                if day is not None:
                    start = datetime.combine(day, time(0), tzinfo=UTC)
                    if (lo is not None and start + timedelta(days=1) <= lo) or (
                        hi is not None and start >= hi
                    ):
                        continue
            found.extend(
                _list(location, info.path, recursive=True)
                if info.type == pafs.FileType.Directory
                else [info]
            )
    out = []
    for info in found:
        if info.type != pafs.FileType.File:
            continue
        obj = parse_key(info.path[len(location.base) + 1 :], info.size or 0)
        if obj is not None and overlaps(obj, lo, hi):
            out.append(obj)
    return sorted(out, key=lambda o: o.key)


def live_objects(
    location: LakeLocation,
    layer: str,
    *,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
) -> list[str]:
    """Keys (relative to the lake's base) of a layer's live objects that may hold rows created
    in [since, until) (dates mean their midnight, UTC), sorted. Rows of an object still need
    filtering by time: pruning is by hour (or day, for day-level objects)."""
    return [o.key for o in live(list_layer(location, layer, since=since, until=until))]


def _instant(value: datetime | date | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def _list(location: LakeLocation, path: str, *, recursive: bool) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(path, recursive=recursive, allow_not_found=True)
    try:
        return list(location.fs.get_file_info(selector))
    except FileNotFoundError:
        return []
    except OSError as err:
        raise lake_failure(err, f"lake listing failed for {location.url}/{path}") from err
