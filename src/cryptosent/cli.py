"""The `cryptosent` command: parses arguments, calls the modules, prints results. Nothing more."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cryptosent.config import Settings, get_settings, mask_url_password

app = typer.Typer(
    name="cryptosent",
    help="Real-time crypto sentiment pipeline: sources -> Kafka -> processor -> lake + PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stack_app = typer.Typer(help="Local real servers: Kafka, PostgreSQL, S3 (versitygw).")
db_app = typer.Typer(help="PostgreSQL schema.")
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True)

SERVICES = ("kafka", "postgres", "s3")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one red line on stderr and exit non-zero (no traceback)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors(settings: Settings | None = None) -> Iterator[None]:
    """Turn the failures a user can act on into one line and a non-zero exit."""
    from cryptosent.stack.process import StackError

    try:
        yield
    except StackError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    except Exception as exc:
        message = describe_connection_error(exc, settings or get_settings())
        if message is None:
            raise
        fail(message)


def describe_connection_error(exc: Exception, settings: Settings) -> str | None:
    """One line for an unreachable service, naming it, its address and the fix; else None."""
    import psycopg

    if isinstance(exc, psycopg.OperationalError):
        where = mask_url_password(settings.database_dsn())
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"PostgreSQL unreachable at {where}: {reason} "
            "(start the local stack with `cryptosent stack up`, or set CRYPTOSENT_DATABASE_URL)"
        )
    return None


def _only(service: str | None) -> str | None:
    if service is not None and service not in SERVICES:
        fail(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}")
    return service


# ---------------------------------------------------------------------------------- config ---
@app.command()
def config(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print the effective settings (secrets masked)."""
    view = get_settings().public_view()
    if as_json:
        sys.stdout.write(json.dumps(view, indent=2, sort_keys=True) + "\n")
        return
    table = Table("setting", "value", title="cryptosent settings (env prefix CRYPTOSENT_)")
    for key, value in view.items():
        table.add_row(key, "" if value is None else str(value))
    out.print(table)


# ----------------------------------------------------------------------------------- stack ---
@stack_app.command("up")
def stack_up(
    service: Annotated[str | None, typer.Argument(help="Only this service.")] = None,
) -> None:
    """Start the local servers (idempotent), create topics, bucket, database and schema."""
    from cryptosent.sinks.migrations import migrate
    from cryptosent.stack.manager import Stack

    settings = get_settings()
    stack = Stack(settings)
    with user_errors(settings), out.status("starting the local stack ...") as status:
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

    settings = get_settings()
    with user_errors(settings):
        for name, outcome in Stack(settings).down(only=_only(service)).items():
            out.print(f"{name:<9} {outcome}")


@stack_app.command("status")
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show each service up or down with its address; exit 1 if any is down."""
    from cryptosent.stack.manager import Stack

    settings = get_settings()
    with user_errors(settings):
        rows = Stack(settings).status()
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

    settings = get_settings()
    with user_errors(settings):
        path = Stack(settings).log_file(_only(service) or service)
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


# -------------------------------------------------------------------------------------- db ---
@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the schema migrations not yet applied (safe to run any time)."""
    from cryptosent.sinks.migrations import migrate

    settings = get_settings()
    with user_errors(settings):
        applied = migrate(settings.database_dsn())
    if applied:
        for migration in applied:
            out.print(f"[green]✓[/] {migration.version:04d} {migration.name}")
    else:
        out.print("schema up to date")


# ------------------------------------------------------------------------------------ demo ---
@app.command()
def demo() -> None:
    """The main job: start the local stack and run the pipeline on it."""
    stack_up(service=None)
    out.print(
        "[bold]local stack ready.[/] Kafka, PostgreSQL and S3 run on 127.0.0.1; "
        "the generator, processor and dashboard join `make demo` as they land."
    )


def main() -> None:
    """Entry point for `python -m cryptosent`."""
    app()
