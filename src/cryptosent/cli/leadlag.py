"""`cryptosent leadlag`: does the coin's sentiment move before its price? (docs/market.md)"""

from __future__ import annotations

from typing import Annotated

import typer

from cryptosent.cli.common import fail, out, user_errors

NOT_ENOUGH_DATA = 2
"""Exit status when there is too little data to answer (the JSON still says why)."""


def leadlag(
    coin: Annotated[str, typer.Option(help="Canonical ticker, e.g. BTC.")],
    hours: Annotated[
        float, typer.Option(min=1, max=24 * 90, help="How far back to look, in hours.")
    ] = 24,
    max_lag: Annotated[
        int, typer.Option("--max-lag", min=1, max=720, help="Largest lag tried, in minutes.")
    ] = 60,
    analyzer: Annotated[
        str, typer.Option(help="learned (the stored default) or vader.")
    ] = "learned",
    organic: Annotated[
        bool, typer.Option("--organic", help="Count only organic posts (not flagged as spam).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Correlate the coin's per-minute sentiment (and mention volume) with its price returns at
    every lag from -max to +max minutes; report the best lag and whether it is significant.

    A positive lag means sentiment moved first. Exits 2 when there is too little data.
    """
    import orjson
    import psycopg

    from cryptosent.analysis.leadlag import lead_lag, verdict
    from cryptosent.config import get_settings
    from cryptosent.dashboard.market import coin_window

    if analyzer not in ("learned", "vader"):
        fail(f"--analyzer {analyzer!r}: choose learned or vader")
    ticker = coin.strip().upper()
    with user_errors(), psycopg.connect(get_settings().database_dsn(), connect_timeout=5) as conn:
        window = coin_window(conn, ticker, hours, analyzer, organic=organic)  # type: ignore[arg-type]
    result = lead_lag(window.series, max_lag)
    s = result.sentiment
    if as_json:
        body: dict[str, object] = {
            "coin": ticker,
            "hours": hours,
            "since": window.since.isoformat(),
            "until": window.until.isoformat(),
            "n_minutes": result.n_minutes,
            "max_lag_minutes": max_lag,
            "organic": organic,
            **s.as_dict(),
            "reason": result.reason,
            "verdict": verdict(s, hours),
            "volume": result.volume.as_dict(),
        }
        out.file.write(orjson.dumps(body).decode() + "\n")
    elif result.reason is not None:
        out.print(f"[yellow]{ticker}: {result.reason}[/]", highlight=False)
    else:
        out.print(f"{ticker}: {verdict(s, hours)}", highlight=False)
        out.print(
            f"  sentiment: best lag {s.best_lag_minutes:+d} min, r = {s.correlation:.3f}, "
            f"95 % CI [{s.ci_low:.3f}, {s.ci_high:.3f}] "
            f"(corrected for {2 * max_lag + 1} lags), |r| > {s.threshold:.3f} is significant, "
            f"{result.n_minutes} minutes, effective n {s.n_effective:.0f}",
            highlight=False,
        )
        v = result.volume
        if v.best_lag_minutes is not None and v.correlation is not None:
            out.print(
                f"  mention volume vs size of the move: best lag {v.best_lag_minutes:+d} min, "
                f"r = {v.correlation:.3f}, {'significant' if v.significant else 'not significant'}",
                highlight=False,
            )
    if result.reason is not None:
        raise typer.Exit(NOT_ENOUGH_DATA)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(leadlag)
