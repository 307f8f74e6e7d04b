"""Versioned, idempotent schema migrations: numbered SQL files applied once each, in order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# any fixed 64-bit number works: it only has to be the same for every `migrate` caller
_LOCK_KEY = 0x63727970746F


@dataclass(frozen=True)
class Migration:
    """One schema step: its version, name and SQL."""

    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """All migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def migrate(dsn: str) -> list[Migration]:
    """Apply the migrations not yet applied, each in its own transaction; return them."""
    applied_now: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        # concurrent callers (several processors starting at once) take turns
        conn.execute("select pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            conn.execute(
                "create table if not exists schema_migrations ("
                " version integer primary key, name text not null,"
                " applied_at timestamptz not null default now())"
            )
            done = {row[0] for row in conn.execute("select version from schema_migrations")}
            for migration in available():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "insert into schema_migrations (version, name) values (%s, %s)",
                        [migration.version, migration.name],
                    )
                applied_now.append(migration)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied_now
