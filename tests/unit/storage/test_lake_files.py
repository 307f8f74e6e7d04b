"""The lake's containment rule: key parsing, which objects are live, pruning by day and hour, and
the property that any prefix of a compaction's steps leaves every offset live exactly once."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime

import pyarrow.fs as pafs
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosent.sinks.lake import LakeLocation
from cryptosent.storage.lake_files import (
    LakeObject,
    compacted_name,
    dead,
    live,
    live_objects,
    parse_key,
    small_name,
)

HOUR = "processed/dt=2026-11-23/hour=14"


def obj(key: str) -> LakeObject:
    parsed = parse_key(key)
    assert parsed is not None, key
    return parsed


def test_small_key_says_topic_partition_and_offsets() -> None:
    o = obj(f"{HOUR}/test-ab-prices-p003-000000001000-000000001999.parquet")
    assert (o.layer, o.day, o.hour, o.topic, o.ext) == (
        "processed", date(2026, 11, 23), 14, "test-ab-prices", ".parquet",
    )  # fmt: skip
    assert o.ranges == ((3, 1000, 1999),) and not o.compacted
    assert o.rows_from == datetime(2026, 11, 23, 14, tzinfo=UTC)


def test_compacted_key_round_trips() -> None:
    name = compacted_name("tweets", [(3, 10, 20), (0, 5, 9), (3, 21, 40)], ".jsonl.gz")
    assert name == "tweets-c-p000.000000000005-000000000009_p003.000000000010-000000000040.jsonl.gz"
    o = obj(f"raw/dt=2026-11-23/hour=14/{name}")
    assert o.compacted and o.topic == "tweets" and o.ranges == ((0, 5, 9), (3, 10, 40))
    day = obj(f"raw/dt=2026-11-23/{name}")
    assert day.hour is None and day.rows_until == datetime(2026, 11, 24, tzinfo=UTC)


def test_hidden_and_foreign_names() -> None:
    assert parse_key(f"{HOUR}/.tmp-abc") is None
    assert parse_key(f"{HOUR}/_SUCCESS") is None
    assert parse_key(f"{HOUR}/notes.txt") is None
    odd = obj(f"{HOUR}/someone-elses.parquet")
    assert not odd.parsed and not odd.compacted
    # an unparsed object is never covered, whatever covers "everything"
    big = obj(f"{HOUR}/{compacted_name('someone', [(0, 0, 10**12)], '.parquet')}")
    assert [o.key for o in live([odd, big])] == sorted([odd.key, big.key])


def test_containment_rule() -> None:
    a = obj(f"{HOUR}/{small_name('tweets', 0, 0, 99, '.parquet')}")
    b = obj(f"{HOUR}/{small_name('tweets', 0, 100, 199, '.parquet')}")
    c = obj(f"{HOUR}/{small_name('tweets', 1, 0, 49, '.parquet')}")
    late = obj(f"{HOUR}/{small_name('tweets', 0, 500, 599, '.parquet')}")
    big = obj(f"{HOUR}/{compacted_name('tweets', [(0, 0, 199), (1, 0, 49)], '.parquet')}")
    assert big.covers(a) and big.covers(b) and big.covers(c) and not big.covers(late)
    assert [o.key for o in live([a, b, c, late, big])] == sorted([late.key, big.key])
    assert {o.key for o in dead([a, b, c, late, big])} == {a.key, b.key, c.key}
    # scope: another hour, another layer, another topic or extension is never covered
    other_hour = obj(
        f"processed/dt=2026-11-23/hour=15/{small_name('tweets', 0, 0, 99, '.parquet')}"
    )
    raw = obj(f"raw/dt=2026-11-23/hour=14/{small_name('tweets', 0, 0, 99, '.jsonl.gz')}")
    other_topic = obj(f"{HOUR}/{small_name('prices', 0, 0, 99, '.parquet')}")
    for o in (other_hour, raw, other_topic):
        assert not big.covers(o)
    # a partial cover (one partition of two) keeps the object live
    part = obj(f"{HOUR}/{compacted_name('tweets', [(0, 0, 199)], '.parquet')}")
    assert not part.covers(big) and big.covers(part)


def test_day_level_object_covers_its_days_hours_only() -> None:
    day = obj(f"processed/dt=2026-11-23/{compacted_name('tweets', [(0, 0, 999)], '.parquet')}")
    h1 = obj(f"processed/dt=2026-11-23/hour=01/{small_name('tweets', 0, 0, 99, '.parquet')}")
    h2 = obj(
        f"processed/dt=2026-11-23/hour=23/{compacted_name('tweets', [(0, 100, 300)], '.parquet')}"
    )
    next_day = obj(
        f"processed/dt=2026-11-24/hour=00/{small_name('tweets', 0, 900, 999, '.parquet')}"
    )
    assert day.covers(h1) and day.covers(h2) and not day.covers(next_day)
    assert not h2.covers(day)
    assert [o.key for o in live([day, h1, h2, next_day])] == [day.key, next_day.key]


def test_live_objects_lists_and_prunes_by_day_and_hour(tmp_path: object) -> None:
    base = str(tmp_path)
    fs = pafs.LocalFileSystem()
    keys = [
        f"processed/dt=2026-11-22/hour=23/{small_name('t', 0, 0, 9, '.parquet')}",
        f"processed/dt=2026-11-23/hour=00/{small_name('t', 0, 10, 19, '.parquet')}",
        f"processed/dt=2026-11-23/hour=00/{small_name('t', 0, 20, 29, '.parquet')}",
        f"processed/dt=2026-11-23/hour=00/{compacted_name('t', [(0, 10, 29)], '.parquet')}",
        f"processed/dt=2026-11-23/hour=05/{small_name('t', 1, 0, 9, '.parquet')}",
        "processed/dt=2026-11-23/hour=05/.tmp-0123",
        f"processed/dt=2026-11-24/{compacted_name('t', [(0, 30, 99)], '.parquet')}",
        f"raw/dt=2026-11-23/hour=00/{small_name('t', 0, 10, 19, '.jsonl.gz')}",
    ]
    for key in keys:
        fs.create_dir(f"{base}/{key.rsplit('/', 1)[0]}")
        with fs.open_output_stream(f"{base}/{key}") as out:
            out.write(b"x")
    location = LakeLocation(fs, base, f"file://{base}", local=True)
    assert live_objects(location, "processed") == [keys[0], keys[3], keys[4], keys[6]]
    one_day = live_objects(
        location, "processed", since=date(2026, 11, 23), until=date(2026, 11, 24)
    )
    assert one_day == [keys[3], keys[4]]
    since = datetime(2026, 11, 23, 1, tzinfo=UTC)
    assert live_objects(location, "processed", since=since) == [keys[4], keys[6]]
    assert live_objects(location, "processed", until=since) == [keys[0], keys[3]]
    assert live_objects(location, "raw") == [keys[7]]
    assert live_objects(location, "prices") == []


# ---- the property: any prefix of a compaction's steps ------------------------------------------


def _smalls(topic: str, runs: list[list[tuple[int, int]]], hour: str) -> list[LakeObject]:
    """Small objects: per partition, consecutive (offset count, gap before) runs."""
    out = []
    for partition, run in enumerate(runs):
        offset = 0
        for count, gap in run:
            offset += gap
            out.append(
                obj(
                    f"{hour}/{small_name(topic, partition, offset, offset + count - 1, '.parquet')}"
                )
            )
            offset += count
    return out


def _rows(
    objects: list[LakeObject], content: dict[str, frozenset[tuple[int, int]]]
) -> Counter[tuple[int, int]]:
    rows: Counter[tuple[int, int]] = Counter()
    for o in live(objects):
        rows.update(content[o.key])
    return rows


def _compaction_steps(
    listing: list[LakeObject],
    cuts: list[int],
    content: dict[str, frozenset[tuple[int, int]]],
    folder: str,
) -> list[tuple[str, LakeObject]]:
    """A compaction of a folder's live objects into consecutive groups (sorted by partition and
    offset, cut at the given points): every put first, then one delete per covered object."""
    units = sorted(live(listing), key=lambda o: o.ranges[0])
    bounds = sorted({c % (len(units) + 1) for c in cuts} | {0, len(units)})
    steps: list[tuple[str, LakeObject]] = []
    covered: list[LakeObject] = []
    for lo, hi in itertools.pairwise(bounds):
        group = units[lo:hi]
        if len(group) < 2:
            continue
        ranges = [r for u in group for r in u.ranges]
        big = obj(f"{folder}/{compacted_name('tweets', ranges, '.parquet')}")
        content[big.key] = frozenset().union(*(content[u.key] for u in group))
        steps.append(("put", big))
        covered.extend(group)
    steps.extend(("delete", o) for o in covered)
    return steps


def _apply(listing: list[LakeObject], steps: list[tuple[str, LakeObject]]) -> list[LakeObject]:
    state = {o.key: o for o in listing}
    for kind, o in steps:
        if kind == "put":
            state[o.key] = o
        else:
            state.pop(o.key, None)
    return list(state.values())


runs = st.lists(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 3)), min_size=0, max_size=6),
    min_size=1, max_size=3,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    first=runs, late=runs, cuts1=st.lists(st.integers(0, 40), max_size=4),
    cuts2=st.lists(st.integers(0, 40), max_size=4), data=st.data(), day_level=st.booleans(),
)  # fmt: skip
def test_any_prefix_of_compaction_steps_keeps_each_offset_exactly_once(
    first: list[list[tuple[int, int]]],
    late: list[list[tuple[int, int]]],
    cuts1: list[int],
    cuts2: list[int],
    data: st.DataObject,
    day_level: bool,
) -> None:
    listing = _smalls("tweets", first, HOUR)
    # each small object holds some of its offsets (an hour's rows; the rest went elsewhere)
    content: dict[str, frozenset[tuple[int, int]]] = {}
    for o in listing:
        ((p, lo, hi),) = o.ranges
        content[o.key] = frozenset((p, x) for x in range(lo, hi + 1) if x % 3 != 1)
    expected = Counter(row for o in listing for row in content[o.key])
    # round 1 runs to the end (any prefix checked), then late objects arrive above every offset
    steps = _compaction_steps(listing, cuts1, content, HOUR)
    for n in range(len(steps) + 1):
        assert _rows(_apply(listing, steps[:n]), content) == expected
    listing = _apply(listing, steps)
    top = max((last for o in listing for _p, _f, last in o.ranges), default=0) + 1
    late_objects = [
        obj(f"{HOUR}/{small_name('tweets', p, lo + top, hi + top, '.parquet')}")
        for o in _smalls("tweets", late, HOUR) for p, lo, hi in o.ranges
    ]  # fmt: skip
    for o in late_objects:
        ((p, lo, hi),) = o.ranges
        content[o.key] = frozenset((p, x) for x in range(lo, hi + 1))
        expected.update(content[o.key])
    listing += late_objects
    # round 2 (hour level again, or the whole day) is cut short anywhere
    folder = "processed/dt=2026-11-23" if day_level else HOUR
    steps = _compaction_steps(listing, cuts2, content, folder)
    n = data.draw(st.integers(0, len(steps)))
    assert _rows(_apply(listing, steps[:n]), content) == expected
