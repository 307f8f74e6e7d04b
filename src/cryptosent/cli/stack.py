"""`cryptosent stack up|down|status|logs`: the local real servers."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cryptosent.cli.common import fail, out, user_errors
from cryptosent.config import get_settings

SERVICES = ("kafka", "postgres", "s3")

stack_app = typer.Typer(help="Local real servers: Kafka, PostgreSQL, S3 (versitygw).")


def _only(service: str | None) -> str | None:
    if service is not None and service not in SERVICES:
        fail(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}")
    return service


@stack_app.command("up")
def stack_up(
    service: Annotated[str | None, typer.Argument(help="Only this service.")] = None,
) -> None:
    """Start the local servers (idempotent), create topics, bucket, database and schema."""
    from cryptosent.sinks.migrations import migrate
    from cryptosent.stack.manager import Stack

    stack = Stack(get_settings())
    with user_errors(), out.status("starting the local stack ...") as status:
        started = time.monotonic()
        names = [_only(service) or service] if service else ["postgres", "s3", "kafka"]
        for name in names:
            status.update(f"starting {name} ...")
            outcome = stack.up(only=name)[name]
            out.print(f"[green]✓[/] {name:<9} {outcome}")
        if service in (None, "postgres"):
            get_settings.cache_clear()  # pick up the credentials file written by `up`
            applied = migrate(get_settings().database_dsn())
            out.print(f"[green]✓[/] schema    {len(applied)} migration(s) applied")
    out.print(f"stack up in {time.monotonic() - started:.1f} s; `cryptosent stack status` for more")


@stack_app.command("down")
def stack_down(
    service: Annotated[str | None, typer.Argument(help="Only this service.")] = None,
) -> None:
    """Stop the servers that `stack up` started (nothing else)."""
    from cryptosent.stack.manager import Stack

    with user_errors():
        for name, outcome in Stack(get_settings()).down(only=_only(service)).items():
            out.print(f"{name:<9} {outcome}")


@stack_app.command("status")
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show each service up or down with its address; exit 1 if any is down."""
    from cryptosent.stack.manager import Stack

    with user_errors():
        rows = Stack(get_settings()).status()
    if as_json:
        payload = [row.__dict__ for row in rows]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        table = Table("service", "state", "address", "pid", "detail")
        for row in rows:
            state = "[green]up[/]" if row.up else "[red]down[/]"
            table.add_row(row.name, state, row.address, str(row.pid or "-"), row.detail)
        out.print(table)
    if not all(row.up for row in rows):
        raise typer.Exit(1)


@stack_app.command("logs")
def stack_logs(
    service: Annotated[str, typer.Argument(help="kafka, postgres or s3.")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many last lines.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Print the end of a service's log."""
    from cryptosent.stack.manager import Stack

    with user_errors():
        path = Stack(get_settings()).log_file(_only(service) or service)
        if not path.exists():
            fail(f"no log yet at {path}: has `cryptosent stack up` run?")
        _print_tail(path, lines, follow)


def _print_tail(path: Path, lines: int, follow: bool) -> None:
    with path.open("r", errors="replace") as handle:
        for line in handle.readlines()[-lines:]:
            sys.stdout.write(line)
        while follow:
            line = handle.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.5)


def register(app: typer.Typer) -> None:
    """Add the command group to the app."""
    app.add_typer(stack_app, name="stack")
