"""The per-coin-minute aggregate defined once: DuckDB computes it as the definition says, and every
rendered statement carries every measure."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from cryptosent import aggregates
from cryptosent.dashboard.queries import LAKE_VIEWS
from cryptosent.sinks.migrations import REPEATABLE, repeatable


def test_measures_in_column_order() -> None:
    assert aggregates.NAMES == (
        "tweets", "positive", "neutral", "negative", "compound_sum",
        "vader_positive", "vader_neutral", "vader_negative", "vader_compound_sum",
        "organic_tweets", "organic_positive", "organic_neutral", "organic_negative",
        "organic_compound_sum", "organic_vader_positive", "organic_vader_neutral",
        "organic_vader_negative", "organic_vader_compound_sum",
        "weight_sum", "weighted_compound_sum", "organic_weight_sum",
        "organic_weighted_compound_sum",
    )  # fmt: skip
    assert aggregates.INPUTS == (
        "label", "compound", "vader_label", "vader_compound", "spam", "author_followers",
    )  # fmt: skip
    assert tuple(n for n in aggregates.NAMES if not n.endswith("_sum")) == aggregates.COUNTS


def test_every_statement_carries_every_measure() -> None:
    statements = [
        aggregates.minute_upsert("ins"),
        aggregates.minute_rebuild(),
        aggregates.mismatches(aggregates.minute_rebuild()),
        aggregates.rollup_functions(),
        aggregates.duckdb_minutes(),
        aggregates.duckdb_hours(),
        aggregates.summed(cast=True),
    ]
    for statement in statements:
        assert all(name in statement for name in aggregates.NAMES), statement
    # three trigger functions, each adding every measure to coin_hour
    rollup = aggregates.rollup_functions()
    assert rollup.count("create or replace function") == 3
    assert rollup.count("vader_compound_sum = h.vader_compound_sum + excluded.") == 3


def test_the_rollup_is_a_repeatable_migration() -> None:
    assert REPEATABLE["coin_hour_rollup"] is aggregates.rollup_functions
    (step,) = repeatable()
    assert step.version is None and step.label == "R coin_hour_rollup"
    assert step.checksum == repeatable()[0].checksum  # rendered the same every time


def test_duckdb_lake_mode_computes_the_definition() -> None:
    minute = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    rows = [
        # coins, label, compound, vader_label, vader_compound, spam, followers (weight)
        (["BTC"], "positive", 0.5, "positive", 0.4, False, 0),  # 1
        (["BTC", "ETH"], "negative", -0.5, "neutral", 0.0, True, 99),  # 3
        ([], "neutral", 0.0, "negative", -0.2, False, None),  # 1
        (["ETH"], "positive", 0.8, "positive", 0.6, False, 10**9),  # capped at 5
    ]
    weights = [1.0, 3.0, 1.0, 5.0]
    lake = pa.table({
        "id": [f"t{i}" for i in range(len(rows))],
        "created_at": pa.array([minute] * len(rows), pa.timestamp("us", tz="UTC")),
        "text": ["x"] * len(rows),
        "author_id": ["a"] * len(rows),
        "author_username": ["u"] * len(rows),
        "campaign_id": pa.array([None] * len(rows), pa.string()),
        "coins": [r[0] for r in rows],
        "label": [r[1] for r in rows],
        "compound": [r[2] for r in rows],
        "confidence": [0.9] * len(rows),
        "vader_label": [r[3] for r in rows],
        "vader_compound": [r[4] for r in rows],
        "spam": [r[5] for r in rows],
        "author_followers": pa.array([r[6] for r in rows], pa.int64()),
    })  # fmt: skip
    db = duckdb.connect()
    db.execute("set TimeZone = 'UTC'")
    db.register("lake", lake)
    for statement in LAKE_VIEWS:
        db.execute(statement)
    got = {
        row[0]: dict(zip(aggregates.NAMES, row[1:], strict=True))
        for row in db.execute(f"select coin, {aggregates.COLUMNS} from coin_minute").fetchall()
    }
    for coin in ("*", "BTC", "ETH"):
        mine = [r for r in rows if coin == "*" or coin in r[0]]
        labels = Counter(r[1] for r in mine)
        vader = Counter(r[3] for r in mine)
        assert got[coin]["tweets"] == len(mine)
        assert [got[coin][n] for n in ("positive", "neutral", "negative")] == [
            labels[n] for n in ("positive", "neutral", "negative")
        ]
        assert [got[coin][f"vader_{n}"] for n in ("positive", "neutral", "negative")] == [
            vader[n] for n in ("positive", "neutral", "negative")
        ]
        assert abs(got[coin]["compound_sum"] - sum(r[2] for r in mine)) < 1e-9
        assert abs(got[coin]["vader_compound_sum"] - sum(r[4] for r in mine)) < 1e-9
        organic = [r for r in mine if not r[5]]
        assert got[coin]["organic_tweets"] == len(organic)
        assert [got[coin][f"organic_{n}"] for n in ("positive", "neutral", "negative")] == [
            sum(r[1] == n for r in organic) for n in ("positive", "neutral", "negative")
        ]
        assert abs(got[coin]["organic_compound_sum"] - sum(r[2] for r in organic)) < 1e-9
        assert abs(got[coin]["organic_vader_compound_sum"] - sum(r[4] for r in organic)) < 1e-9
        weight = {id(r): w for r, w in zip(rows, weights, strict=True)}
        assert abs(got[coin]["weight_sum"] - sum(weight[id(r)] for r in mine)) < 1e-9
        assert (
            abs(got[coin]["weighted_compound_sum"] - sum(weight[id(r)] * r[2] for r in mine)) < 1e-9
        )
        assert abs(got[coin]["organic_weight_sum"] - sum(weight[id(r)] for r in organic)) < 1e-9
        assert (
            abs(
                got[coin]["organic_weighted_compound_sum"]
                - sum(weight[id(r)] * r[2] for r in organic)
            )
            < 1e-9
        )
    hours = db.execute(f"select {aggregates.COLUMNS} from coin_hour where coin = '*'").fetchall()
    assert list(hours[0]) == [got["*"][n] for n in aggregates.NAMES]
