"""The compaction planner against random lakes laid out as the lake sink writes them (one object
per partition and hour a flush touched, the flush's offset range in every one of them): at every
step of an hour-level then a day-level compaction, cut anywhere, the live objects hold each row
exactly once and objects not yet committed are never merged."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosent.storage.compaction import plan_scope
from cryptosent.storage.lake_files import LakeObject, dead, live, parse_key, small_name

DAY = "processed/dt=2026-11-23"
Row = tuple[int, int, int]  # hour, partition, offset


def obj(key: str, size: int = 100) -> LakeObject:
    parsed = parse_key(key, size)
    assert parsed is not None
    return parsed


def rows_of(state: dict[str, LakeObject], content: dict[str, frozenset[Row]]) -> Counter[Row]:
    out: Counter[Row] = Counter()
    for o in live(state.values()):
        out.update(content[o.key])
    return out


flushes = st.lists(
    st.lists(  # per partition: (offsets in the flush, hours it touched, object size)
        st.tuples(st.integers(1, 4), st.sets(st.integers(0, 2), min_size=1), st.integers(1, 300)),
        min_size=1, max_size=3,
    ),
    min_size=1, max_size=8,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    layout=flushes, committed_flushes=st.integers(0, 8), target=st.integers(50, 1500),
    hour_steps=st.integers(0, 200), day_steps=st.integers(0, 200), data=st.data(),
)  # fmt: skip
def test_planned_compaction_keeps_each_row_once_at_every_step(
    layout: list[list[tuple[int, set[int], int]]],
    committed_flushes: int,
    target: int,
    hour_steps: int,
    day_steps: int,
    data: st.DataObject,
) -> None:
    state: dict[str, LakeObject] = {}
    content: dict[str, frozenset[Row]] = {}
    next_offset: dict[int, int] = {}
    committed: dict[tuple[str, int], int] = {}
    for n, flush in enumerate(layout):
        for partition, (count, hours, size) in enumerate(flush):
            first = next_offset.get(partition, 0)
            last = first + count - 1
            next_offset[partition] = last + 1
            if n < committed_flushes:
                committed[("tweets", partition)] = last + 1
            for hour in hours:
                name = small_name("tweets", partition, first, last, ".parquet")
                key = f"{DAY}/hour={hour:02d}/{name}"
                state[key] = obj(key, size)
                content[key] = frozenset((hour, partition, o) for o in range(first, last + 1))
    expected = rows_of(state, content)
    assert set(expected.values()) == {1}
    uncommitted = {
        k
        for k, o in state.items()
        if not o.ranges[0][2] < committed.get(("tweets", o.ranges[0][0]), 0)
    }

    def compaction(folders: list[tuple[str, list[LakeObject]]], cut: int) -> None:
        steps: list[tuple[str, LakeObject]] = []
        for folder, scope in folders:
            merges, _skipped = plan_scope(scope, folder, committed, target)
            for merge in merges:
                assert not {i.key for i in merge.inputs} & uncommitted
                big = obj(merge.key, sum(i.size for i in merge.inputs))
                content[big.key] = frozenset().union(*(content[i.key] for i in merge.inputs))
                steps.append(("put", big))
        for _put, o in steps[:cut]:
            state[o.key] = o
            assert rows_of(state, content) == expected
        if cut > len(steps):
            garbage = dead(state.values())
            assert not {o.key for o in garbage} & uncommitted
            order = data.draw(st.permutations(garbage))
            for o in order[: cut - len(steps)]:
                del state[o.key]
                assert rows_of(state, content) == expected

    touched = sorted({o.hour for o in state.values() if o.hour is not None})
    compaction(
        [
            (
                f"{DAY}/hour={h:02d}",
                [o for o in state.values() if o.folder == f"{DAY}/hour={h:02d}" or o.hour is None],
            )
            for h in touched
        ],
        hour_steps,
    )
    compaction([(DAY, list(state.values()))], day_steps)
    assert rows_of(state, content) == expected
