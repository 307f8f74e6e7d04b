"""The PostgreSQL sink's two paths store exactly the same: the fast path (COPY straight into
`tweets` in a savepoint) and the guarded one (staging table, stored keys skipped), over new
batches, a batch with a repeated id, a batch replayed after it was stored, and revisions."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from conftest import fresh_database

from cryptosent import aggregates
from cryptosent.analysis.campaigns import CampaignDetector
from cryptosent.batch import SCHEMA, ScoredBatch
from cryptosent.config import Settings
from cryptosent.processor.campaigns import CampaignStage, campaign_stage
from cryptosent.processor.transform import Decoded, Scorer
from cryptosent.runtime import Backoff, Retry
from cryptosent.sinks import postgres
from cryptosent.sinks.database import Database
from cryptosent.sinks.offsets import OffsetStore
from cryptosent.sinks.prices import PriceMinuteSink, open_price_sinks
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import CampaignMock
from cryptosent.stack.manager import Stack

pytestmark = pytest.mark.integration

_TABLES = {
    # all but stored_at and stored_xid, which name the moment and the transaction
    "tweets": f"select {postgres._COLUMNS} from tweets order by id",
    "tweet_coins": "select * from tweet_coins order by coin, tweet_id",
    "coin_minute": "select * from coin_minute order by coin, minute",
    "coin_hour": "select * from coin_hour order by coin, hour",
}


def _batches() -> list[ScoredBatch]:
    """Scored and flagged mock batches: three of 600 tweets, one of 599, one holding the 600th
    twice (a repeated id), and one that replays the second batch at later offsets."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    step = [0]

    def clock() -> datetime:
        return start + timedelta(seconds=20 * step[0])

    feed = CampaignMock(MockGenerator(seed=11, clock=clock), 0.2, clock=clock)
    stage = CampaignStage(Scorer(), CampaignDetector())
    out = []
    for first in range(0, 2400, 600):
        tweets = feed.read(600)
        offsets = list(range(first, first + 600))
        decoded = Decoded(tweets=tweets, raw=[b"{}"] * 600, partitions=[0] * 600,
                          offsets=offsets, ranges={0: (first, first + 599)})  # fmt: skip
        out.append(stage(decoded))
        step[0] += 1
    last = out[-1]
    out[-1] = ScoredBatch(last.table.slice(0, 599), last.raw[:599], last.ranges, last.revisions)
    repeated = pa.concat_tables([last.table.slice(599, 1), last.table.slice(599, 1)])
    out.append(ScoredBatch(repeated, [b"{}"] * 2, {0: (2400, 2401)}))
    out.append(ScoredBatch(out[1].table, out[1].raw, {0: (2402, 3001)}))
    return out


@pytest.fixture
def second_database(settings: Settings, stack: Stack) -> Iterator[str]:
    """Another fresh, migrated database; its URL."""
    with fresh_database(settings, stack) as url:
        yield url


def _store(url: str, batches: list[ScoredBatch]) -> tuple[list[int], dict[str, list[object]]]:
    """Write the batches with the sink; the new-tweet counts and every table's rows."""
    sink = postgres.PostgresSink(
        Database(url, setup=list(postgres.SESSION_SETUP)),
        OffsetStore("paths", "paths"),
        Retry(Backoff.exponential(initial=0.1, maximum=0.2)),
    )
    try:
        counts = [sink.write(batch) for batch in batches]
    finally:
        sink.close()
    with psycopg.connect(url) as conn:
        rows: dict[str, list[object]] = {
            name: conn.execute(query.encode()).fetchall() for name, query in _TABLES.items()
        }
    return counts, rows


def test_fast_and_guarded_paths_store_the_same(
    database_url: str, second_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = _batches()
    assert sum(len(b.revisions) for b in batches) > 0
    fast_counts, fast_rows = _store(database_url, batches)
    monkeypatch.setattr(postgres, "copy_new", lambda *args: False)
    guarded_counts, guarded_rows = _store(second_database, batches)

    assert fast_counts == guarded_counts == [600, 600, 600, 599, 1, 0]
    assert fast_rows == guarded_rows
    assert len(fast_rows["tweets"]) == 2400


def _hard_rows(coins_5: list[str]) -> pa.Table:
    """Rows whose values a text format must escape or that sit at a type's edge."""
    texts = [
        'say "hi", \\ back\\slash',
        "line\nbreak\ttab\r",
        "\\.",
        "",
        "🚀 $BTC ↑ مرحبا",
        "{a,b}",
    ]
    rows = [
        {
            "id": f"hard-{i}", "text": text, "label": "neutral", "vader_label": "neutral",
            "created_at": when, "coins": coins, "kafka_partition": i, "kafka_offset": 2**62 + i,
            "compound": -0.0 if i == 0 else (-1) ** i * 0.1 * i, "pos": 1e-300, "neu": 0.5,
            "neg": 0.1 + 0.2, "vader_compound": -1.0, "vader_pos": 0.0, "vader_neu": 1.0,
            "vader_neg": 0.0, "confidence": None if i % 2 else 0.3333333333333333,
            "author_id": None if i == 1 else f"a{i}", "author_username": "ü" * i,
            "author_followers": [None, 0, 2**63 - 1][i % 3],
            "author_verified": [None, True, False][i % 3],
            "lang": None, "source": "mock", "retweet_of": None, "reply_to": "r,1",
            "spam": None if i < 3 else True, "campaign_id": None if i < 3 else "c-1",
        }
        for i, (text, when, coins) in enumerate(zip(
            texts,
            [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
             datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC),
             datetime(2026, 11, 29, 6, 0, tzinfo=UTC), datetime(2026, 11, 29, 6, 0, 1, tzinfo=UTC)],
            [[], ["BTC"], ["BTC", "ETH"], [], ["SOL", "DOGE", "XRP"], coins_5],
            strict=True,
        ))
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _order_sensitive_rows(count: int) -> pa.Table:
    """Tweets whose sums depend on the order they are added in (compounds of wildly different
    sizes), with every input at its edges: no or negative or huge follower counts, unscored
    labels, spam true, false and null, repeated and missing coins, four minutes; ids in no
    particular order."""
    rng = random.Random(7)
    start = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    rows = [
        {
            "id": f"{rng.randrange(10**9):09d}-{i}",
            "created_at": start + timedelta(seconds=rng.randrange(240), microseconds=i),
            "text": "t", "source": "mock", "kafka_partition": 0, "kafka_offset": i,
            "label": rng.choice(["positive", "neutral", "negative", "unscored"]),
            "compound": rng.uniform(-1, 1) * 10.0 ** rng.randrange(-12, 3),
            "vader_label": rng.choice(["positive", "neutral", "negative"]),
            "vader_compound": rng.uniform(-1, 1) * 10.0 ** rng.randrange(-12, 3),
            "pos": 0.0, "neu": 1.0, "neg": 0.0, "vader_pos": 0.0, "vader_neu": 1.0,
            "vader_neg": 0.0,
            "author_followers": rng.choice([None, -5, 0, 1, 9, 10**rng.randrange(12), 2**63 - 1]),
            "spam": rng.choice([None, False, False, True]),
            "coins": rng.choice([[], ["BTC"], ["BTC", "ETH"], ["ETH", "ETH"], ["SOL", "BTC"]]),
        }
        for i in range(count)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _postgres_minutes(conn: psycopg.Connection[tuple[Any, ...]], table: pa.Table) -> list[Any]:
    """The minute rows PostgreSQL computes for the table's tweets, read in id order as both of the
    sink's paths read them, by key."""
    conn.execute("truncate tweets")
    with conn.cursor() as cur:
        copy = f"copy tweets ({postgres._COLUMNS}) from stdin with (format binary)"
        with cur.copy(copy.encode()) as writer:
            writer.write(postgres.to_copy_binary(table))
    query = f"""with ins as (select * from tweets order by id)
        select coin, date_trunc('minute', created_at), {aggregates.computed()}
        from ins, unnest(coins || '{{*}}'::text[]) as coin group by 1, 2 order by 1, 2"""
    return conn.execute(query.encode()).fetchall()


def test_minute_rows_are_the_sums_postgres_computes_bit_for_bit(database_url: str) -> None:
    # the fast path adds the batch's minute rows computed in Arrow (`aggregates.minute_rows`),
    # the guarded path has PostgreSQL compute them (`aggregates.minute_upsert`): both in id order
    table = _order_sensitive_rows(4000)
    hard = _hard_rows(["DOT", "DOT"])  # year 1 to 9999, before 1970, the largest bigint
    with psycopg.connect(database_url) as conn:
        conn.execute("set time zone 'UTC'")
        expected = _postgres_minutes(conn, table)
        expected_hard = _postgres_minutes(conn, hard)
    got = sorted(tuple(row.values()) for row in aggregates.minute_rows(table).to_pylist())
    assert len(got) == len(expected) == 4 * 4  # BTC, ETH, SOL and '*' in four minutes
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == theirs  # floats to the last bit
    got_hard = sorted(tuple(row.values()) for row in aggregates.minute_rows(hard).to_pylist())
    assert got_hard == expected_hard and len(got_hard) == 5 + 7  # 5 minutes, 7 coin rows
    # the sums do depend on the order: the first minute's '*' row is its compounds added in id
    # order, and added the other way round, or exactly, they give other bits
    star = next(row for row in expected if row[0] == "*")
    rows = zip(table["id"].to_pylist(), table["created_at"].to_pylist(),
               table["compound"].to_pylist(), strict=True)  # fmt: skip
    compounds = [c for _, at, c in sorted(rows) if at.replace(second=0, microsecond=0) == star[1]]
    assert sum(compounds) == star[2 + aggregates.NAMES.index("compound_sum")]
    assert sum(reversed(compounds)) != sum(compounds)
    assert math.fsum(compounds) != sum(compounds)


def test_binary_copy_stores_what_the_csv_copy_stores(database_url: str) -> None:
    tables = [_hard_rows(["DOT"]), *(batch.table for batch in _batches()[:2])]
    with psycopg.connect(database_url) as conn:
        found = []
        encoders: list[tuple[str, Callable[[pa.Table], bytes], str]] = [
            ("by_binary", postgres.to_copy_binary, "binary"),
            ("by_pgpq", partial(postgres.to_copy_binary, compiled=False), "binary"),
            ("by_csv", postgres.to_copy_csv, "csv"),
        ]
        for name, encode, form in encoders:
            conn.execute(f"create temp table {name} (like tweets including defaults)".encode())
            with conn.cursor() as cur:
                for table in tables:
                    copy = f"copy {name} ({postgres._COLUMNS}) from stdin with (format {form})"
                    with cur.copy(copy.encode()) as writer:
                        writer.write(encode(table))
            query = f"select {postgres._COLUMNS} from {name} order by id, kafka_offset"
            found.append(conn.execute(query.encode()).fetchall())
    assert found[0] == found[1] == found[2]  # the compiled encoder, pgpq's, the CSV
    assert len(found[0]) == 6 + 1200
    hard = {row[0]: row for row in found[0] if row[0].startswith("hard-")}
    columns = postgres._COLUMNS.split(", ")
    assert hard["hard-1"][columns.index("text")] == "line\nbreak\ttab\r"
    assert hard["hard-0"][columns.index("created_at")] == datetime(1, 1, 1, tzinfo=UTC)
    assert hard["hard-2"][columns.index("coins")] == ["BTC", "ETH"]
    assert hard["hard-0"][columns.index("spam")] is False


def test_binary_copy_keeps_array_elements_a_csv_literal_would_split(database_url: str) -> None:
    odd = ["A,B", "{x}", 'q"', "back\\slash", "NULL"]
    with psycopg.connect(database_url) as conn:
        conn.execute(b"create temp table odd (like tweets including defaults)")
        with conn.cursor() as cur:
            copy = f"copy odd ({postgres._COLUMNS}) from stdin with (format binary)"
            with cur.copy(copy.encode()) as writer:
                writer.write(postgres.to_copy_binary(_hard_rows(odd)))
        row = conn.execute(b"select coins from odd where id = 'hard-5'").fetchone()
    assert row is not None and row[0] == odd


def test_revisions_analyze_a_day_partition_no_one_analyzed(database_url: str) -> None:
    # a new day's partition has no statistics until autovacuum gets to it: the planner then
    # takes an id for 0.5 % of the partition and hash-joins the revisions against a scan of it
    # (66 ms for 12 revisions at 300,000 tweets). The first write with revisions analyzes it.
    batches = _batches()
    with_revisions = next(i for i, b in enumerate(batches) if b.revisions)
    stats = "select count(*) from pg_stats where tablename like 'tweets_%' and attname = 'id'"
    partitions = (
        "select inhrelid::regclass::text from pg_inherits where inhparent = 'tweets'::regclass"
    )

    def rows_per_id(conn: psycopg.Connection[tuple[object, ...]]) -> int:
        """The planner's estimate of the rows of one id in the partition holding most tweets."""
        name = conn.execute(
            "select tableoid::regclass::text from tweets group by 1 order by count(*) desc limit 1"
        ).fetchone()
        assert name is not None
        plan = conn.execute(f"explain select 1 from {name[0]} where id = 'x'").fetchone()
        assert plan is not None
        return int(str(plan[0]).split("rows=")[1].split()[0])

    with psycopg.connect(database_url, autocommit=True) as conn:
        for (partition,) in conn.execute(partitions).fetchall():  # autovacuum must not race us
            conn.execute(f"alter table {partition} set (autovacuum_enabled = off)")
    _store(database_url, batches[:with_revisions])
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute(stats).fetchone() == (0,)
        assert rows_per_id(conn) > 1
    _store(database_url, [batches[with_revisions]])
    with psycopg.connect(database_url, autocommit=True) as conn:
        # every partition holding tweets, and only those, has statistics now
        days = conn.execute("select count(distinct tableoid) from tweets").fetchone()
        assert days is not None and days[0] >= 1
        assert conn.execute(stats).fetchone() == days
        assert rows_per_id(conn) == 1


def test_the_processors_write_connections_never_jit(settings: Settings) -> None:
    # JIT compiled each revision statement anew once tables grew (1.4 s of the server's CPU for
    # a statement that runs in 12 ms): the sinks' and the campaign stage's connections turn it
    # off, whatever the server's default
    retry = Retry(Backoff.exponential(initial=0.1, maximum=0.2))
    stage = campaign_stage(settings, Scorer(), retry, retry.stop)
    assert isinstance(stage, CampaignStage) and stage.peers is not None
    databases = [postgres.open_sink(settings, retry).database, stage.peers.database]
    (prices,) = open_price_sinks(settings, "jit", lambda: retry, ["postgres"])
    assert isinstance(prices, PriceMinuteSink)
    databases.append(prices.database)
    for database in databases:
        try:
            with database.transaction() as conn:
                assert conn.execute("show jit").fetchone() == ("off",)
        finally:
            database.close()
    with psycopg.connect(settings.database_dsn()) as conn:  # the server's default is on
        assert conn.execute("show jit").fetchone() == ("on",)
