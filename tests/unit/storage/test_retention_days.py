"""Retention without a server: which days expire, partition names and bounds, and the
processor's job (hourly, skipped when PostgreSQL is away)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cryptosent.config import Settings
from cryptosent.sinks.database import DatabaseUnavailable
from cryptosent.storage import retention
from cryptosent.storage.retention import (
    RetentionJob,
    RetentionReport,
    day_bounds,
    expired_days,
    partition_name,
)

NOW = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
DAYS = [date(2026, 10, 28) + timedelta(days=k) for k in range(36)]  # 10-28 .. 12-02


def test_partition_names_and_bounds() -> None:
    assert partition_name("tweets", date(2026, 1, 2)) == "tweets_p20260102"
    assert partition_name("tweet_coins", date(1, 1, 1)) == "tweet_coins_p00010101"
    assert day_bounds(date(2026, 11, 29)) == (
        datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC),
    )  # fmt: skip


def test_a_day_expires_once_wholly_older_than_the_retention() -> None:
    # cutoff 2026-10-30 12:30: 10-29 ended before it, 10-30 holds rows after it
    assert expired_days(DAYS, 30, NOW) == [date(2026, 10, 28), date(2026, 10, 29)]
    assert expired_days(DAYS, 1, NOW) == [d for d in DAYS if d < date(2026, 11, 28)]
    assert expired_days(DAYS, 0, NOW) == []  # 0 keeps everything
    # exactly at midnight the day before the cutoff has just expired
    assert expired_days(DAYS, 30, datetime(2026, 11, 29, tzinfo=UTC))[-1] == date(2026, 10, 29)


def test_retention_days_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().retention_days == 30
    monkeypatch.setenv("CRYPTOSENT_RETENTION_DAYS", "0")
    assert Settings().retention_days == 0
    monkeypatch.setenv("CRYPTOSENT_RETENTION_DAYS", "-1")
    with pytest.raises(ValueError, match="retention_days"):
        Settings()


class FakeDatabase:
    """Counts transactions; fails them with `error` when set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.transactions = 0
        self.closed = False

    def transaction(self) -> FakeDatabase:
        self.transactions += 1
        return self

    def __enter__(self) -> object:
        if self.error is not None:
            raise self.error
        return object()

    def __exit__(self, *_: object) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def test_the_job_runs_hourly_and_counts_what_it_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, datetime]] = []

    def fake_retain(_conn: object, days: int, *, now: datetime) -> RetentionReport:
        calls.append((days, now))
        report = RetentionReport(days, now - timedelta(days=days))
        part = retention.Partition("tweets", date(2026, 10, 1), "tweets_p20261001", 8192)
        report.dropped = [part, part]
        return report

    monkeypatch.setattr(retention, "retain", fake_retain)
    database = FakeDatabase()
    job = RetentionJob(database, 30, now=lambda: NOW)  # type: ignore[arg-type]
    assert job.due(0.0)
    assert job.run() == 2
    assert calls == [(30, NOW)]
    # the processor's end-of-run call within the hour does nothing
    assert job.run() == 0 and len(calls) == 1
    job.close()
    assert database.closed


def test_the_job_skips_a_run_when_postgresql_is_away(caplog: pytest.LogCaptureFixture) -> None:
    database = FakeDatabase(DatabaseUnavailable("postgresql://x", "connection refused"))
    job = RetentionJob(database, 30, interval_s=0.0)  # type: ignore[arg-type]
    assert job.run() == 0
    assert job.run() == 0
    assert database.transactions == 2
    assert "retention skipped until the next run" in caplog.text
