"""The compiled binary COPY encoder writes, byte for byte, what pgpq's encoder writes (the
PostgreSQL round trip of both is in tests/integration/test_postgres_paths.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from cryptosent.batch import SCHEMA
from cryptosent.sinks import postgres

pytestmark = pytest.mark.skipif(postgres._CORE is None, reason="the compiled core is not built")


def _rows(seed: int, n: int) -> pa.Table:
    """Tweets-shaped rows with nulls, empty and Unicode strings, edge numbers and times."""
    rand = random.Random(seed)
    words = ["", "gm", "🚀 $BTC ↑", "مرحبا", "ü" * 40, "a\nb\\c", "NULL", "{x,y}"]
    coins = [[], ["BTC"], ["BTC", "ETH"], ["SOL", "DOGE", "XRP"], None]

    def maybe(value: object) -> object:
        return None if rand.random() < 0.2 else value

    rows = []
    for i in range(n):
        row: dict[str, object] = {}
        for field in SCHEMA:
            if pa.types.is_string(field.type):
                row[field.name] = maybe(rand.choice(words) + str(i) * rand.randint(0, 3))
            elif pa.types.is_timestamp(field.type):
                seconds = rand.choice([-62135596800, -1, 0, 946684800, 1796000000, 253402300799])
                row[field.name] = maybe(datetime.fromtimestamp(seconds, UTC))
            elif pa.types.is_floating(field.type):
                row[field.name] = maybe(rand.choice([0.0, -0.0, 1e-300, -1.0, 0.1 + 0.2]))
            elif pa.types.is_boolean(field.type):
                row[field.name] = maybe(rand.random() < 0.5)
            elif pa.types.is_list(field.type):
                row[field.name] = rand.choice(coins)
            else:
                row[field.name] = maybe(rand.choice([0, 1, -1, 2**31 - 1, -(2**31)]))
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _both(table: pa.Table) -> tuple[bytes, bytes]:
    return postgres.to_copy_binary(table), postgres.to_copy_binary(table, compiled=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_rows_are_pgpqs_bytes(seed: int) -> None:
    table = _rows(seed, 500)
    compiled, pgpq = _both(table)
    assert compiled == pgpq and len(compiled) > 500 * 27 * 4


def test_slices_and_chunks_are_read_from_their_offsets() -> None:
    table = _rows(4, 300)
    # arrays that start inside their buffers (validity bits, offsets, a list's strings)
    chunks = pa.concat_tables([table.slice(150, 33), table.slice(3, 5), table.slice(0, 0)])
    for part in (table.slice(7, 100), table.slice(1), table.slice(299), chunks):
        compiled, pgpq = _both(part)
        assert compiled == pgpq, part.num_rows
    # a list with a null item (its value's null flag set), a null list, an empty one
    lists = pa.array([["Z"], ["A", None, "B"], None, [], ["C"]], pa.list_(pa.string()))
    for part in (lists, lists.slice(1, 3), lists.slice(2)):
        compiled, pgpq = _both(pa.table({"coins": part}))
        assert compiled == pgpq, part


def test_all_null_and_empty_columns() -> None:
    n = 5
    table = pa.table(
        {
            "a": pa.nulls(n, pa.string()), "b": pa.array([""] * n), "c": pa.nulls(n, pa.float64()),
            "d": pa.nulls(n, pa.bool_()), "e": pa.array([[]] * n, pa.list_(pa.string())),
            "f": pa.nulls(n, pa.list_(pa.string())), "g": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        }
    )  # fmt: skip
    assert _both(table)[0] == _both(table)[1]
    empty = _rows(5, 10).slice(0, 0)
    assert _both(empty)[0] == _both(empty)[1] == b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\xff\xff"


def test_a_type_the_core_does_not_write_goes_to_pgpq() -> None:
    table = pa.table(
        {"n": pa.array([1, None], pa.int16()), "s": pa.array(["x", "y"], pa.large_string())}
    )
    assert postgres._copy_kinds(table.schema) is None
    assert _both(table)[0] == _both(table)[1]


def _strings(offsets: list[int], chars: bytes) -> pa.Array:
    """A string array straight from its buffers (pyarrow checks their sizes and the first and
    last offsets, not the ones between)."""
    raw = b"".join(o.to_bytes(4, "little", signed=True) for o in offsets)
    return pa.Array.from_buffers(
        pa.string(), len(offsets) - 1, [None, pa.py_buffer(raw), pa.py_buffer(chars)]
    )


@pytest.mark.parametrize(
    "offsets", [[0, 9, 3], [0, 2, 1, 3]], ids=["inside, past the end", "inside, descending"]
)
def test_offsets_out_of_range_are_a_clear_error_not_a_crash(offsets: list[int]) -> None:
    with pytest.raises(ValueError, match="buffers are shorter than its length says"):
        postgres.to_copy_binary(pa.table({"x": _strings(offsets, b"abc")}))
    assert postgres.to_copy_binary(pa.table({"x": _strings([0, 3], b"abc")}))  # a good one
