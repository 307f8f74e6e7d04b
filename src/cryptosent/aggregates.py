"""The per-coin-minute aggregate, defined once: its measures and how each is computed from the
rows of `tweets`. Every statement that builds, rolls up or reads the aggregate is rendered here
from `MEASURES`:

- PostgreSQL: the processor's upsert into `coin_minute` (`sinks.postgres`), the hourly rollup
  into `coin_hour` (trigger functions installed by the repeatable migration `coin_hour_rollup`),
- DuckDB: the dashboard's lake mode (`coin_minute` and `coin_hour` over the Parquet lake),
- the dashboard's sums over a time range, the benchmarks' bulk load and the tests' recomputation.

Keys: `coin` (a canonical ticker, or ``'*'`` for the all-tweets row of each minute) and `minute`
(`hour` in the rollup). Every measure is additive (a count or a sum), so rows of the same key
add up: a batch's upsert, the hourly rollup and the dashboard's range sums are all plain sums.
The expressions are written in the SQL that PostgreSQL and DuckDB share. Each measure also has
its per-row value in Arrow (`minute_rows`): the processor's fast path adds a batch's minutes
with those instead of having PostgreSQL compute them again from the rows it just stored (a
quarter of the server's CPU per tweet); a test holds both to the same bits.

Adding a measure: one `Measure` below (SQL and Arrow), plus a versioned migration that adds the
column to `coin_minute` and `coin_hour` (``... not null default 0``); everything else follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ALL_COINS: Final = "*"
"""The coin of each minute's all-tweets row."""
LABELS: Final = ("positive", "neutral", "negative")
"""What `analysis.sentiment.label` returns, in column order."""


@dataclass(frozen=True)
class Measure:
    """One additive column of the aggregate."""

    name: str
    kind: Literal["count", "sum"]
    expression: str
    """The aggregate over `tweets` rows (PostgreSQL and DuckDB)."""
    inputs: tuple[str, ...]
    """The `tweets` columns it reads."""
    values: Callable[[Rows], pa.Array]
    """Arrow: each row's part of the measure: for a count, whether the row counts (booleans);
    for a sum, the value it adds, null where the expression's filter leaves the row out."""

    @property
    def sql_type(self) -> str:
        """The column's PostgreSQL type."""
        return "bigint" if self.kind == "count" else "double precision"


ORGANIC: Final = "spam is not true"
"""The posts the organic measures count (`spam` is null only in lake files older than it)."""
WEIGHT: Final = "least(1 + log10(1 + greatest(coalesce(author_followers, 0), 0)::float8), 5)"
"""A post's influence weight: 1 + log10(1 + followers), capped at 5 (docs/campaigns.md)."""


class Rows:
    """The Arrow columns the measures read (`INPUTS`), one row per (tweet, coin) as the SQL's
    `unnest` gives them, and the filters and weights several measures share (computed once)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def column(self, name: str) -> pa.ChunkedArray:
        """One input column."""
        return self.table.column(name)

    @cached_property
    def organic(self) -> pa.ChunkedArray:
        """`ORGANIC`: spam is not true."""
        return pc.invert(pc.fill_null(self.column("spam"), False))

    def labelled(self, column: str, name: str, organic: bool) -> pa.ChunkedArray:
        """``[organic and] column = 'name'``."""
        equal = pc.equal(self.column(column), name)
        return pc.and_(self.organic, equal) if organic else equal

    @cached_property
    def scored(self) -> pa.ChunkedArray:
        """label <> 'unscored'."""
        return pc.not_equal(self.column("label"), "unscored")

    @cached_property
    def organic_scored(self) -> pa.ChunkedArray:
        """organic and label <> 'unscored'."""
        return pc.and_(self.organic, self.scored)

    @cached_property
    def weight(self) -> pa.ChunkedArray:
        """`WEIGHT`, step by step as PostgreSQL evaluates it (the same libm log10)."""
        followers = pc.max_element_wise(pc.fill_null(self.column("author_followers"), 0), 0)
        # bigint::float8 rounds to the nearest double past 2**53, as an unchecked cast does
        inner = pc.add(pc.cast(followers, pa.float64(), safe=False), 1.0)
        return pc.min_element_wise(pc.add(pc.log10(inner), 1.0), 5.0)

    @cached_property
    def weighted_compound(self) -> pa.ChunkedArray:
        """`WEIGHT` * compound."""
        return pc.multiply(self.weight, self.column("compound"))

    def where(self, values: pa.ChunkedArray, keep: pa.ChunkedArray) -> pa.ChunkedArray:
        """values, null where keep is false (a `filter (where ...)`)."""
        return pc.if_else(keep, values, pa.scalar(None, pa.float64()))


def _labelled(column: str, name: str, organic: bool) -> Callable[[Rows], pa.Array]:
    """Arrow: `Rows.labelled` of these arguments."""
    return lambda r: r.labelled(column, name, organic)


def _analyzer_measures(prefix: str, organic: bool = False) -> tuple[Measure, ...]:
    label, compound = f"{prefix}label", f"{prefix}compound"
    name_prefix, only, inputs = (
        ("organic_", f"{ORGANIC} and ", ("spam",)) if organic else ("", "", ())
    )
    counts = tuple(
        Measure(f"{name_prefix}{prefix}{name}", "count",
                f"count(*) filter (where {only}{label} = '{name}')", (*inputs, label),
                _labelled(label, name, organic))
        for name in LABELS
    )  # fmt: skip
    total = (
        f"coalesce(sum({compound}) filter (where {ORGANIC}), 0.0)"
        if organic
        else f"sum({compound})"
    )
    values: Callable[[Rows], pa.Array] = (
        (lambda r: r.where(r.column(compound), r.organic))
        if organic
        else (lambda r: r.column(compound))
    )
    return (
        *counts,
        Measure(f"{name_prefix}{prefix}compound_sum", "sum", total, (*inputs, compound), values),
    )


def _weighted_measures(organic: bool) -> tuple[Measure, ...]:
    prefix, only = ("organic_", f"{ORGANIC} and ") if organic else ("", "")
    scored = f"{only}label <> 'unscored'"
    inputs = ("spam", "label", "author_followers")

    def keep(r: Rows) -> pa.ChunkedArray:
        return r.organic_scored if organic else r.scored

    return (
        Measure(f"{prefix}weight_sum", "sum",
                f"coalesce(sum({WEIGHT}) filter (where {scored}), 0.0)", inputs,
                lambda r: r.where(r.weight, keep(r))),
        Measure(f"{prefix}weighted_compound_sum", "sum",
                f"coalesce(sum({WEIGHT} * compound) filter (where {scored}), 0.0)",
                (*inputs, "compound"), lambda r: r.where(r.weighted_compound, keep(r))),
    )  # fmt: skip


# Column order of coin_minute and coin_hour: the crypto analyzer's label counts and compound
# sum, then VADER's (the dashboard switches between the two without a query); then the same for
# organic posts only (not spam), then the influence weights and weighted compound sums (all
# posts, organic posts) of the default analyzer.
MEASURES: Final[tuple[Measure, ...]] = (
    Measure("tweets", "count", "count(*)", (), lambda r: pc.is_valid(r.column("coin"))),
    *_analyzer_measures(""),
    *_analyzer_measures("vader_"),
    Measure(
        "organic_tweets",
        "count",
        f"count(*) filter (where {ORGANIC})",
        ("spam",),
        lambda r: r.organic,
    ),
    *_analyzer_measures("", organic=True),
    *_analyzer_measures("vader_", organic=True),
    *_weighted_measures(organic=False),
    *_weighted_measures(organic=True),
)
NAMES: Final[tuple[str, ...]] = tuple(m.name for m in MEASURES)
COUNTS: Final[tuple[str, ...]] = tuple(m.name for m in MEASURES if m.kind == "count")
INPUTS: Final[tuple[str, ...]] = tuple(dict.fromkeys(c for m in MEASURES for c in m.inputs))
"""The `tweets` columns the measures read, each once."""

COLUMNS: Final = ", ".join(NAMES)


def computed() -> str:
    """The measures computed from `tweets` rows: ``count(*) as tweets, ...``."""
    return ", ".join(f"{m.expression} as {m.name}" for m in MEASURES)


def summed(cast: bool = False, named: bool = True) -> str:
    """The measures summed over aggregate rows: ``sum(tweets) as tweets, ...``; with cast, counts
    as bigint and sums as float8 (PostgreSQL's sum of bigint is numeric)."""
    kinds = {"count": "::bigint", "sum": "::float8"}
    return ", ".join(
        f"sum({m.name}){kinds[m.kind] if cast else ''}{f' as {m.name}' if named else ''}"
        for m in MEASURES
    )


def added(table_alias: str) -> str:
    """An upsert's update list: ``tweets = m.tweets + excluded.tweets, ...``."""
    return ", ".join(f"{n} = {table_alias}.{n} + excluded.{n}" for n in NAMES)


def minute_upsert(rows: str) -> str:
    """PostgreSQL: add the tweets of CTE `rows` (columns id, created_at, coins and `INPUTS`) to
    `coin_minute`; one row per coin and minute plus the ``'*'`` row; returns 1 per row touched."""
    return f"""insert into coin_minute as m (coin, minute, {COLUMNS})
    select coin, date_trunc('minute', created_at), {computed()}
    from {rows}, unnest(coins || '{{{ALL_COINS}}}'::text[]) as coin
    group by 1, 2
    on conflict (coin, minute) do update set {added("m")}
    returning 1"""  # noqa: S608 - names and expressions are this module's constants


MINUTE_SCHEMA: Final = pa.schema(
    [
        ("coin", pa.string()),
        ("minute", pa.timestamp("us", tz="UTC")),
        *((m.name, pa.int64() if m.kind == "count" else pa.float64()) for m in MEASURES),
    ]
)
"""`minute_rows`' columns: the key, then the measures in `coin_minute`'s order."""


def _minute(created_at: pa.ChunkedArray) -> pa.Array:
    """date_trunc('minute', created_at) of UTC microseconds (floored, also before 1970), a
    tenth of `floor_temporal`'s CPU."""
    micros = created_at.combine_chunks().view(pa.int64()).to_numpy()
    return pa.array(micros - np.mod(micros, 60_000_000)).view(created_at.type)


def minute_rows(tweets: pa.Table) -> pa.Table:
    """Arrow: the rows `minute_upsert` adds for these tweets (each once; columns id, created_at,
    coins and `INPUTS`), in `MINUTE_SCHEMA`. The same bits as PostgreSQL's: one row per coin and
    minute plus the ``'*'`` row, every sum added in id order (as the fast path's statement
    read the rows, and the guarded path's `distinct on (id)` gives them), with the same
    operations in the same order."""
    table = tweets.select(["id", "created_at", "coins", *INPUTS])
    table = table.take(pc.sort_indices(table.column("id")))
    n = len(table)
    coins = table.column("coins").combine_chunks()
    # each coin's row after the tweet's, then every tweet's '*' row: the order within each
    # (coin, minute) group, the only order a sum sees, is id order either way
    parents = pc.list_parent_indices(coins)
    everyone = pa.array(np.arange(n, dtype=np.int64))
    star = pa.StringArray.from_buffers(
        n, pa.py_buffer(np.arange(n + 1, dtype=np.int32)), pa.py_buffer(ALL_COINS.encode() * n)
    )
    rows = table.select(["created_at", *INPUTS]).take(pa.chunked_array([parents, everyone]))
    rows = rows.append_column("coin", pa.chunked_array([pc.list_flatten(coins), star]))
    source = Rows(rows)
    measured = {
        m.name: pc.cast(m.values(source), pa.int64()) if m.kind == "count" else m.values(source)
        for m in MEASURES
    }
    measured |= {
        "coin": rows.column("coin"),
        "minute": _minute(rows.column("created_at")),
    }
    keep_zero = pc.ScalarAggregateOptions(min_count=0)
    grouped = (
        pa.table(measured)
        .group_by(["coin", "minute"], use_threads=False)
        .aggregate([(m.name, "sum", keep_zero) for m in MEASURES])
    )
    return pa.table(
        [grouped.column(f"{name}_sum" if name in NAMES else name) for name in MINUTE_SCHEMA.names],
        schema=MINUTE_SCHEMA,
    )


def revision_upsert(new_rows: str, old_rows: str) -> str:
    """PostgreSQL: add to `coin_minute` the change that revised flags make: the measures of CTE
    `new_rows` (the revised tweets as they are now) minus those of `old_rows` (as they were),
    both with columns created_at, coins and `INPUTS`; returns 1 per row touched."""
    negated = ", ".join(f"-({m.expression})" for m in MEASURES)
    return f"""insert into coin_minute as m (coin, minute, {COLUMNS})
    select coin, minute, {summed(named=False)}
    from (select coin, date_trunc('minute', created_at) as minute, {computed()}
          from {new_rows}, unnest(coins || '{{{ALL_COINS}}}'::text[]) as coin group by 1, 2
          union all
          select coin, date_trunc('minute', created_at), {negated}
          from {old_rows}, unnest(coins || '{{{ALL_COINS}}}'::text[]) as coin group by 1, 2
         ) as delta (coin, minute, {COLUMNS})
    group by 1, 2 order by 1, 2
    on conflict (coin, minute) do update set {added("m")}
    returning 1"""  # noqa: S608 - names and expressions are this module's constants


def minute_rebuild() -> str:
    """PostgreSQL: `coin_minute` computed from the whole `tweets` table (bulk loads, checks)."""
    return f"""select coin, date_trunc('minute', created_at) as minute, {computed()}
    from tweets, unnest(coins || '{{{ALL_COINS}}}'::text[]) as coin
    group by 1, 2"""  # noqa: S608 - names and expressions are this module's constants


def mismatches(recomputed: str, stored: str = "select * from coin_minute") -> str:
    """PostgreSQL: how many (coin, minute) rows differ between two queries of the aggregate,
    a recomputation and what is stored (counts exactly, sums within 1e-6); 0 means equal."""
    differs = " or ".join(
        f"r.{m.name} is distinct from s.{m.name}"
        if m.kind == "count"
        else f"abs(r.{m.name} - s.{m.name}) > 1e-6"
        for m in MEASURES
    )
    return f"""select count(*) from ({recomputed}) r full join ({stored}) s using (coin, minute)
    where r.tweets is null or s.tweets is null or {differs}"""  # noqa: S608 - constants


# ---- the hourly rollup (PostgreSQL triggers) ---------------------------------------------------
_ROLLUP_CHANGES: Final = {
    "insert": ("new_rows",),
    "update": ("new_rows", "-old_rows"),
    "delete": ("-old_rows",),
}


def _delta(source: str) -> str:
    sign = "-" if source.startswith("-") else ""
    table = source.lstrip("-")
    return f"select coin, minute, {', '.join(sign + n for n in NAMES)} from {table}"  # noqa: S608


def rollup_functions() -> str:
    """The three trigger functions that add each statement's change of `coin_minute` (new rows
    minus old rows) to `coin_hour`, in key order so concurrent writers cannot deadlock.
    `create or replace`: the repeatable migration re-installs them when this text changes."""
    functions = []
    for operation, sources in _ROLLUP_CHANGES.items():
        delta = "\n              union all\n              ".join(_delta(s) for s in sources)
        functions.append(
            f"""create or replace function coin_hour_after_{operation}() returns trigger
language plpgsql as $$
begin
    insert into coin_hour as h (coin, hour, {COLUMNS})
        select coin, date_trunc('hour', minute, 'UTC'), {summed(named=False)}
        from ({delta}) as delta (coin, minute, {COLUMNS})
        group by 1, 2 order by 1, 2
        on conflict (coin, hour) do update set {added("h")};
    return null;
end
$$;"""  # noqa: S608 - names and expressions are this module's constants
        )
    return "\n\n".join(functions) + "\n"


# ---- DuckDB (the dashboard's lake mode) ----------------------------------------------------------
def duckdb_minutes(tweets: str = "tweets") -> str:
    """DuckDB: `coin_minute` from a `tweets` table (coins a list, '*' appended)."""
    return f"""select coin, date_trunc('minute', created_at) as minute, {computed()}
       from (select *, unnest(list_append(coins, '{ALL_COINS}')) as coin from {tweets})
       group by all"""  # noqa: S608 - names and expressions are this module's constants


def duckdb_hours(minutes: str = "coin_minute") -> str:
    """DuckDB: `coin_hour` rolled up from `coin_minute`."""
    return f"""select coin, date_trunc('hour', minute) as hour, {summed()}
       from {minutes} group by all"""  # noqa: S608 - names are this module's constants
