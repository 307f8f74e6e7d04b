"""`cryptosent bench`: every stage measured on the local stack, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cryptosent.cli.common import err, fail, out, user_errors
from cryptosent.config import get_settings


def bench(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file.")
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="Tiny sizes: checks the harness, the numbers mean nothing.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these stages: sentiment, voices, produce, process, instructions,"
            " freshness, dashboard, peers, history (--quick leaves peers, history and"
            " instructions out unless named here)."
        ),
    ] = None,
    peers_count: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Tweets on the peers stage's topic (default 300,000; 3,000 with --quick).",
        ),
    ] = None,
) -> None:
    """Measure every stage on the local stack, side by side, and print a table."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cryptosent.bench.run import TARGETS, run, verdicts, write_json
    from cryptosent.stack.manager import Stack

    settings = get_settings()
    with user_errors():
        down = [row.name for row in Stack(settings).status() if not row.up]
        if down:
            fail(f"{', '.join(down)} down: start the local stack with `cryptosent stack up`")
        columns = [
            TextColumn("[bold]bench[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} stages"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("starting", total=1)

            def on_stage(name: str, index: int, total: int) -> None:
                progress.update(task, description=name, completed=index, total=total)

            result = run(
                settings,
                quick=quick,
                only=set(only) if only else None,
                on_stage=on_stage,
                peers_count=peers_count,
            )
            progress.update(task, description="done", completed=progress.tasks[0].total)
    met = verdicts(result)
    table = Table("figure", "value", "target", title=f"cryptosent bench ({result['date']})")
    for key in sorted(k for k, v in result.items() if isinstance(v, int | float) and k != "quick"):
        value = result[key]
        target = TARGETS.get(key)
        mark = "" if key not in met else (" [green]✓[/]" if met[key] else " [red]✗[/]")
        shown = (
            ("yes" if value else "no") if isinstance(value, bool)
            else f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
        )  # fmt: skip
        table.add_row(
            key, shown,
            f"{target[0]} {target[1]:,}{mark}" if target else "",
        )  # fmt: skip
    out.print(table)
    for stage, message in result["errors"].items():
        err.print(f"[red]{stage} failed:[/] {message}", highlight=False)
    if json_path is not None:
        write_json(result, json_path)
        out.print(f"figures written to {json_path}")
    if result["errors"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(bench)
