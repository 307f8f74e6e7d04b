"""`cryptosent backfill --from-lake [--since DATE]`: PostgreSQL's tables rebuilt from the lake
(raw rows within retention, every day's aggregates), day by day, with a progress bar."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from cryptosent.cli.common import err, fail, out, user_errors
from cryptosent.config import get_settings


def backfill(
    from_lake: Annotated[
        bool, typer.Option("--from-lake", help="Rebuild from the lake's processed Parquet.")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="First UTC day to rebuild (YYYY-MM-DD; default: all).")
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Days of raw rows to restore, 0 = all (default: CRYPTOSENT_RETENTION_DAYS); "
            "older days get their aggregates only.",
        ),
    ] = None,
    lake_url: Annotated[
        str | None, typer.Option(help="Lake to read (default: CRYPTOSENT_LAKE_URL).")
    ] = None,
) -> None:
    """Rebuild PostgreSQL's tweets, tweet_coins, coin_minute and coin_hour from the lake
    (idempotent: a re-run gives the same tables)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cryptosent.sinks.database import Database
    from cryptosent.sinks.lake import lake_location
    from cryptosent.sinks.migrations import migrate
    from cryptosent.storage.backfill import Backfill, BackfillStats

    if not from_lake:
        fail("say where from: --from-lake (the only source for now)")
    try:
        first = date.fromisoformat(since) if since else None
    except ValueError:
        fail(f"--since {since!r}: use a date like 2026-01-31")
    settings = get_settings()
    keep = settings.retention_days if retention_days is None else retention_days
    with user_errors():
        migrate(settings.database_dsn())
        location = lake_location(settings, lake_url)
        job = Backfill(
            location, Database(settings.database_dsn(), application_name="cryptosent-backfill"),
            retention_days=keep,
        )  # fmt: skip
        columns = [
            TextColumn("[bold]backfill[/]"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
        ]
        try:
            with Progress(*columns, console=err, transient=False) as progress:
                task = progress.add_task("backfill", total=None, line="listing the lake")

                def show(stats: BackfillStats) -> None:
                    day = stats.rebuilt[-1].isoformat() if stats.rebuilt else ""
                    line = (
                        f"day {stats.days}/{stats.days_total} {day} · "
                        f"{stats.bytes_read / 1e6:,.0f}/{stats.bytes_total / 1e6:,.0f} MB · "
                        f"{stats.lake_rows:,} rows"
                    )
                    progress.update(
                        task, total=stats.bytes_total, completed=stats.bytes_read, line=line
                    )

                stats = job.run(first, on_progress=show)
        finally:
            job.close()
    out.print(
        f"backfill: {stats.days:,} day(s) from {location.url}: {stats.lake_rows:,} lake rows, "
        f"{stats.tweets:,} tweets and {stats.mentions:,} coin mentions restored (raw rows of "
        f"{f'the last {keep} day(s)' if keep else 'every day'}), "
        f"{stats.minute_rows:,} coin_minute rows, "
        f"{stats.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(backfill)
