"""`cryptosent config`: the effective settings, secrets masked."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from cryptosent.cli.common import out
from cryptosent.config import get_settings


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


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(config)
