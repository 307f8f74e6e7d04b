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
The expressions are written in the SQL that PostgreSQL and DuckDB share.

Adding a measure: one `Measure` below, plus a versioned migration that adds the column to
`coin_minute` and `coin_hour` (``... not null default 0``); everything else follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

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

    @property
    def sql_type(self) -> str:
        """The column's PostgreSQL type."""
        return "bigint" if self.kind == "count" else "double precision"


ORGANIC: Final = "spam is not true"
"""The posts the organic measures count (`spam` is null only in lake files older than it)."""
WEIGHT: Final = "least(1 + log10(1 + greatest(coalesce(author_followers, 0), 0)::float8), 5)"
"""A post's influence weight: 1 + log10(1 + followers), capped at 5 (docs/campaigns.md)."""


def _analyzer_measures(prefix: str, organic: bool = False) -> tuple[Measure, ...]:
    label, compound = f"{prefix}label", f"{prefix}compound"
    name_prefix, only, inputs = (
        ("organic_", f"{ORGANIC} and ", ("spam",)) if organic else ("", "", ())
    )
    counts = tuple(
        Measure(f"{name_prefix}{prefix}{name}", "count",
                f"count(*) filter (where {only}{label} = '{name}')", (*inputs, label))
        for name in LABELS
    )  # fmt: skip
    total = (
        f"coalesce(sum({compound}) filter (where {ORGANIC}), 0.0)"
        if organic
        else f"sum({compound})"
    )
    return (
        *counts,
        Measure(f"{name_prefix}{prefix}compound_sum", "sum", total, (*inputs, compound)),
    )


def _weighted_measures(organic: bool) -> tuple[Measure, ...]:
    prefix, only = ("organic_", f"{ORGANIC} and ") if organic else ("", "")
    scored = f"{only}label <> 'unscored'"
    inputs = ("spam", "label", "author_followers")
    return (
        Measure(f"{prefix}weight_sum", "sum",
                f"coalesce(sum({WEIGHT}) filter (where {scored}), 0.0)", inputs),
        Measure(f"{prefix}weighted_compound_sum", "sum",
                f"coalesce(sum({WEIGHT} * compound) filter (where {scored}), 0.0)",
                (*inputs, "compound")),
    )  # fmt: skip


# Column order of coin_minute and coin_hour: the crypto analyzer's label counts and compound
# sum, then VADER's (the dashboard switches between the two without a query); then the same for
# organic posts only (not spam), then the influence weights and weighted compound sums (all
# posts, organic posts) of the default analyzer.
MEASURES: Final[tuple[Measure, ...]] = (
    Measure("tweets", "count", "count(*)", ()),
    *_analyzer_measures(""),
    *_analyzer_measures("vader_"),
    Measure("organic_tweets", "count", f"count(*) filter (where {ORGANIC})", ("spam",)),
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
