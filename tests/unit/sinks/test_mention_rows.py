"""`postgres.mention_rows`: the `tweet_coins` rows the fast path copies are exactly what the
guarded path's ``unnest(coins)`` inserts, over chunked and sliced tables (the PostgreSQL round
trip of both paths is in tests/integration/test_postgres_paths.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from cryptosent.batch import SCHEMA
from cryptosent.sinks import postgres

_COINS = [["BTC"], [], ["BTC", "ETH"], ["SOL", "DOGE", "XRP"], None, ["ETH"]]


def _tweets(first: int, n: int) -> pa.Table:
    """Tweets-shaped rows (only id, created_at and coins set) numbered from ``first``."""
    start = datetime(2026, 11, 29, tzinfo=UTC)
    rows = [
        {"id": f"t{i}", "created_at": start + timedelta(microseconds=i), "text": "",
         "coins": _COINS[i % len(_COINS)], "kafka_partition": 0, "kafka_offset": i}
        for i in range(first, first + n)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _unnested(table: pa.Table) -> list[tuple[str, str, datetime]]:
    """(coin, tweet_id, created_at) for each coin of each row, as ``unnest(coins)`` yields them."""
    return [
        (coin, row["id"], row["created_at"])
        for row in table.to_pylist()
        for coin in row["coins"] or []
    ]


def _rows(mentions: pa.Table) -> list[tuple[str, str, datetime]]:
    return [(r["coin"], r["tweet_id"], r["created_at"]) for r in mentions.to_pylist()]


def test_mentions_of_a_chunked_sliced_table_are_its_unnested_coins() -> None:
    table = pa.concat_tables([_tweets(0, 7), _tweets(7, 12).slice(3, 8), _tweets(100, 5)])
    table = table.slice(2, 18)
    assert table.column("coins").num_chunks == 3

    mentions = postgres.mention_rows(table)

    assert mentions.schema.names == ["coin", "tweet_id", "created_at"]
    assert mentions.schema.field("created_at").type == SCHEMA.field("created_at").type
    expected = _unnested(table)
    assert len(expected) == 19  # the coins of rows 2-6, 10-17 and 100-104, nulls and [] none
    assert _rows(mentions) == expected


def test_a_batch_with_no_coins_has_no_mentions() -> None:
    table = _tweets(1, 1)  # _COINS[1] is []
    assert postgres.mention_rows(table).num_rows == 0
    assert postgres.mention_rows(table.slice(0, 0)).num_rows == 0
