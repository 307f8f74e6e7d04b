"""The `cryptosent` command: one module per command group, each thin (parse, call, print).

`--settings FILE` (before the command) reads settings from an env file on top of the
environment; the demo and the benchmarks hand their children their settings this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryptosent.cli import (
    backfill,
    bench,
    config,
    dashboard,
    db,
    demo,
    ingest,
    lake,
    leadlag,
    prices,
    process,
    score,
    stack,
)
from cryptosent.cli.common import user_errors
from cryptosent.config import configure

app = typer.Typer(
    name="cryptosent",
    help="Real-time crypto sentiment pipeline: sources -> Kafka -> processor -> lake + PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main_options(
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            help="Env file of settings (CRYPTOSENT_...=value lines) that win over the "
            "environment and .env.",
        ),
    ] = None,
) -> None:
    """Real-time crypto sentiment pipeline: sources -> Kafka -> processor -> lake + PostgreSQL."""
    with user_errors():
        configure(settings_file=settings)


for group in (
    stack, config, db, ingest, prices, process, score, leadlag, dashboard, demo, bench, backfill,
    lake,
):  # fmt: skip
    group.register(app)


def main() -> None:
    """Entry point for `python -m cryptosent`."""
    app()
