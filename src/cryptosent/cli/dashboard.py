"""`cryptosent dashboard`: becomes `streamlit run` of the dashboard app."""

from __future__ import annotations

import os
import sys
from importlib import resources
from typing import Annotated

import typer

from cryptosent.cli.common import fail, out
from cryptosent.config import get_settings, settings_file


def dashboard(
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8501).")] = None,
    source: Annotated[
        str | None,
        typer.Option(help="postgres (aggregates, default) or lake (Parquet via DuckDB)."),
    ] = None,
    refresh: Annotated[
        int | None, typer.Option(min=2, max=60, help="Seconds between live updates (default 10).")
    ] = None,
    address: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
) -> None:
    """Serve the live Streamlit dashboard."""
    settings = get_settings()
    if source not in (None, "postgres", "lake"):
        fail(f"--source {source!r}: use postgres or lake")
    app_path = resources.files("cryptosent.dashboard").joinpath("app.py")
    chosen_port = port or settings.dashboard_port
    out.print(f"dashboard on http://{address}:{chosen_port} (Ctrl-C stops it)")
    # the app's own options, after `--`: Streamlit hands them to the script (see
    # dashboard.data.use_command_line); the environment is inherited unchanged
    app_args: list[str] = []
    if settings_file() is not None:
        app_args += ["--settings", str(settings_file())]
    if source:
        app_args += ["--source", source]
    if refresh:
        app_args += ["--refresh", str(refresh)]
    argv = [
        sys.executable, "-m", "streamlit", "run", str(app_path),
        "--server.port", str(chosen_port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.runOnSave", "false", "--global.developmentMode", "false",
        *(["--", *app_args] if app_args else []),
    ]  # fmt: skip
    sys.stdout.flush()
    # become Streamlit: signals (Ctrl-C, SIGTERM from `make demo`) reach the server itself
    os.execv(sys.executable, argv)  # noqa: S606 - argv is ours, no shell involved


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(dashboard)
