"""`cryptosent demo`: the main job (what `make demo` runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cryptosent.cli.common import err, out, parse_rate, user_errors
from cryptosent.cli.stack import stack_up
from cryptosent.config import get_settings

if TYPE_CHECKING:
    from cryptosent.runtime import StopSignal


def demo(
    rate: Annotated[str, typer.Option(help="Generator rate.")] = "2000/min",
    port: Annotated[int | None, typer.Option(help="Dashboard port (default 8501).")] = None,
    duration: Annotated[
        float | None, typer.Option(min=1, help="Stop by itself after S seconds.")
    ] = None,
) -> None:
    """The main job: local stack, generator, processor and live dashboard; Ctrl-C, SIGTERM or
    the end of --duration stop all within a few seconds."""
    from cryptosent.runtime import StopSignal, until_stopped
    from cryptosent.stack.process import StackError

    parse_rate(rate)
    with StopSignal(duration) as stop:
        with user_errors():
            # starting servers waits on them; a stop leaves those started running, as `stack up`
            until_stopped(
                stop, lambda: stack_up(service=None), what="stack up",
                stopped=lambda: StackError(
                    f"demo stopped ({stop.reason}) while the local stack was starting; servers "
                    "already started keep running (`cryptosent stack down` stops them)"
                ),
            )  # fmt: skip
        _run(rate, port, stop)


def _run(rate: str, port: int | None, stop: StopSignal) -> None:
    """The parts and the live status table until the stop."""
    from rich.live import Live

    from cryptosent.demo import DemoStatus, Part, run_demo

    get_settings.cache_clear()
    settings = get_settings()
    chosen_port = port or settings.dashboard_port
    url = f"http://localhost:{chosen_port}"
    out.print(
        f"[bold]cryptosent demo[/]: generator at {rate} + mock prices -> Kafka -> processor -> "
        f"PostgreSQL + S3 lake -> dashboard on [bold cyan]{url}[/]  (Ctrl-C stops everything)"
    )

    def table(running: list[Part], status: DemoStatus) -> Table:
        grid = Table("part", "state", "detail", title=f"dashboard: {url}", title_justify="left")
        for part in running:
            state = "[green]running[/]" if part.running else "[red]stopped[/]"
            grid.add_row(part.name, state, str(part.log))
        stored = "-" if status.stored is None else f"{status.stored:,}"
        rate_now = "-" if status.per_minute is None else f"{status.per_minute / 2:,.0f}/min"
        grid.add_row("tweets", "", f"stored {stored} · last 2 min {rate_now} · alerts "
                     f"{status.alerts if status.alerts is not None else '-'}")  # fmt: skip
        grid.add_row("dashboard", "[green]up[/]" if status.dashboard_up else "starting", url)
        return grid

    with Live(console=out, refresh_per_second=2, transient=False) as live:
        running = run_demo(
            settings, rate=rate, port=chosen_port, stop=stop,
            show=lambda parts, status: live.update(table(parts, status)),
        )  # fmt: skip
    failed = [p for p in running if p.proc is not None and p.proc.returncode not in (0, None)]
    for part in failed:
        err.print(f"{part.name} exited with {part.proc.returncode if part.proc else '?'}; "
                  f"see {part.log}")  # fmt: skip
    why = f" ({stop.reason})" if stop.is_set else ""
    out.print(f"demo stopped{why}; the stack keeps running (`cryptosent stack down` stops it)")
    if failed and not stop.is_set:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(demo)
