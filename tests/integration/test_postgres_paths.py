"""The PostgreSQL sink's two paths store exactly the same: the fast path (COPY straight into
`tweets` in a savepoint) and the guarded one (staging table, stored keys skipped), over new
batches, a batch with a repeated id, a batch replayed after it was stored, and revisions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from cryptosent.analysis.campaigns import CampaignDetector
from cryptosent.batch import ScoredBatch
from cryptosent.config import Settings
from cryptosent.processor.campaigns import CampaignStage
from cryptosent.processor.transform import Decoded, Scorer
from cryptosent.runtime import Backoff, Retry
from cryptosent.sinks import postgres
from cryptosent.sinks.database import Database
from cryptosent.sinks.migrations import migrate
from cryptosent.sinks.offsets import OffsetStore
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
    name = f"test_{uuid.uuid4().hex[:10]}"
    admin = stack.postgres.admin_conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} owner cryptosent").format(sql.Identifier(name)))
    url = settings.database_dsn().rsplit("/", 1)[0] + "/" + name
    migrate(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def _store(url: str, batches: list[ScoredBatch]) -> tuple[list[int], dict[str, list[object]]]:
    """Write the batches with the sink; the new-tweet counts and every table's rows."""
    sink = postgres.PostgresSink(
        Database(url, setup=[postgres._STAGING, postgres._REVISED]),
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
    monkeypatch.setattr(postgres, "copy_new", lambda cur, rows: False)
    guarded_counts, guarded_rows = _store(second_database, batches)

    assert fast_counts == guarded_counts == [600, 600, 600, 599, 1, 0]
    assert fast_rows == guarded_rows
    assert len(fast_rows["tweets"]) == 2400
