"""`cryptosent db migrate|retain`: the PostgreSQL schema and how long raw rows stay."""

from __future__ import annotations

from typing import Annotated

import typer

from cryptosent.cli.common import fail, out, user_errors
from cryptosent.config import get_settings

db_app = typer.Typer(help="PostgreSQL schema and retention.")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the schema migrations not yet applied (safe to run any time)."""
    from cryptosent.sinks.migrations import migrate

    with user_errors():
        applied = migrate(get_settings().database_dsn())
    if applied:
        for migration in applied:
            out.print(f"[green]✓[/] {migration.label}")
    else:
        out.print("schema up to date")


@db_app.command("retain")
def db_retain(
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            min=0,
            help="Days of raw rows to keep (default: CRYPTOSENT_RETENTION_DAYS; 0 keeps all).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be dropped; change nothing.")
    ] = False,
) -> None:
    """Prepare the coming days' partitions and drop the days of raw rows (tweets, tweet_coins)
    older than the retention, whole partitions at a time; aggregates, alerts and prices stay."""
    import psycopg

    from cryptosent.storage.retention import AHEAD_DAYS, LOCK_TIMEOUT, retain

    settings = get_settings()
    keep = settings.retention_days if days is None else days
    with user_errors(), psycopg.connect(settings.database_dsn(), connect_timeout=10) as conn:
        try:
            report = retain(conn, keep, dry_run=dry_run)
        except psycopg.errors.UndefinedTable as err:
            fail(f"retention: {str(err).splitlines()[0]} (run `cryptosent db migrate` first)")
        except psycopg.errors.LockNotAvailable:
            fail(f"retention: the tables stayed locked for {LOCK_TIMEOUT} (busy writers or long"
                 " queries); nothing was dropped, run it again")  # fmt: skip
    verb = "would drop" if dry_run else "dropped"
    for name in report.created:
        out.print(f"[green]+[/] {name}")
    for part in report.dropped:
        out.print(f"[red]-[/] {part.name} ({part.bytes / 1e6:.1f} MB)")
    kept_days = len({p.day for p in report.kept})
    policy = f"keep {keep} days" if keep else "keep everything (retention 0)"
    cutoff = f", cutoff {report.cutoff:%Y-%m-%d %H:%M} UTC" if report.cutoff else ""
    out.print(
        f"retention: {policy}{cutoff}; {verb} {len(report.dropped)} partitions"
        f" ({report.dropped_bytes / 1e6:.1f} MB); {kept_days} days kept"
        f" ({report.kept_bytes / 1e6:.1f} MB, {AHEAD_DAYS} of them prepared ahead)"
    )
    strays = sum(report.default_rows.values())
    if strays:
        out.print(
            f"default partitions hold {strays} rows dated outside the prepared days"
            " (kept; see docs/storage.md)"
        )


def register(app: typer.Typer) -> None:
    """Add the command group to the app."""
    app.add_typer(db_app, name="db")
