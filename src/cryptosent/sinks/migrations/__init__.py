"""Schema migrations: numbered SQL files applied once each, in order, then repeatable steps.

A versioned migration (`NNNN_name.sql`) is applied once and never edited afterwards. A
repeatable step is SQL rendered from the code (the hourly rollup's trigger functions, from
`cryptosent.aggregates`); like Flyway's ``R__`` scripts it is applied again whenever its text
changes, after every versioned migration, so the functions always match the one definition.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import psycopg

from cryptosent import aggregates

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# any fixed 64-bit number works: it only has to be the same for every `migrate` caller
_LOCK_KEY = 0x63727970746F

# name -> SQL rendered from code; each must be safe to run again (create or replace)
REPEATABLE: dict[str, Callable[[], str]] = {
    "coin_hour_rollup": aggregates.rollup_functions,
}


@dataclass(frozen=True)
class Migration:
    """One schema step: its version (None for a repeatable step), name and SQL."""

    version: int | None
    name: str
    sql: str

    @property
    def label(self) -> str:
        """How `cryptosent db migrate` names it: '0003 dashboard' or 'R coin_hour_rollup'."""
        return f"{self.version:04d} {self.name}" if self.version is not None else f"R {self.name}"

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL (a repeatable step runs again when it changes)."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """All versioned migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version or 0)


def repeatable() -> list[Migration]:
    """The repeatable steps, rendered now."""
    return [Migration(None, name, render()) for name, render in REPEATABLE.items()]


def migrate(dsn: str) -> list[Migration]:
    """Apply the migrations not yet applied and the repeatable steps whose SQL changed, each
    in its own transaction; return what was applied."""
    applied_now: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        # concurrent callers (several processors starting at once) take turns
        conn.execute("select pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            conn.execute(
                "create table if not exists schema_migrations ("
                " version integer primary key, name text not null,"
                " applied_at timestamptz not null default now())"
            )
            conn.execute(
                "create table if not exists schema_repeatables ("
                " name text primary key, checksum text not null,"
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
            checksums: dict[str, str] = {
                str(name): str(checksum)
                for name, checksum in conn.execute("select name, checksum from schema_repeatables")
            }
            for step in repeatable():
                if checksums.get(step.name) == step.checksum:
                    continue
                with conn.transaction():
                    conn.execute(step.sql.encode())
                    conn.execute(
                        "insert into schema_repeatables (name, checksum) values (%s, %s)"
                        " on conflict (name) do update set checksum = excluded.checksum,"
                        " applied_at = now()",
                        [step.name, step.checksum],
                    )
                applied_now.append(step)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied_now
