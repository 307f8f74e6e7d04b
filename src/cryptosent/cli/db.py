"""`cryptosent db migrate`: the PostgreSQL schema."""

from __future__ import annotations

import typer

from cryptosent.cli.common import out, user_errors
from cryptosent.config import get_settings

db_app = typer.Typer(help="PostgreSQL schema.")


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


def register(app: typer.Typer) -> None:
    """Add the command group to the app."""
    app.add_typer(db_app, name="db")
