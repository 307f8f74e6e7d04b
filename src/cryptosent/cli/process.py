"""`cryptosent process`: one member of the processor consumer group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cryptosent.cli.common import err, out, setup_logging, user_errors
from cryptosent.config import get_settings

if TYPE_CHECKING:
    from cryptosent.processor import ProcessStats


def process(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit 0 once caught up with the topic.")
    ] = False,
    lake: Annotated[bool, typer.Option(help="Write the lake (raw + Parquet).")] = True,
    prices: Annotated[
        bool, typer.Option(help="Consume the prices topic too (price_minute, lake prices/).")
    ] = True,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus /metrics port (0 = off).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="Stop after S seconds (flush and commit).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log INFO too.")] = False,
) -> None:
    """Consume tweets and prices, score the tweets, store both in the lake and PostgreSQL
    (Ctrl-C stops cleanly)."""
    from cryptosent.kafka import MissingTopic, probe_topic
    from cryptosent.processor import build_processor
    from cryptosent.processor.prices import build_price_processor, run_beside
    from cryptosent.runtime import StopSignal, keep_freed_memory, settle_gc, until_stopped
    from cryptosent.sinks.database import DatabaseUnavailable
    from cryptosent.sinks.migrations import migrate
    from cryptosent.sinks.registry import SINKS

    setup_logging(verbose)
    keep_freed_memory()  # a batch's large buffers are reused, not faulted in again
    # Python's GIL switch interval (5 ms) is left as it is: the compiled core lets the GIL go
    # through its long calls (scoring, coins, signing), so the writer threads get it then; the
    # 0.5 ms set before that cost 7 % more CPU and 5 % fewer tweets/s once the core let it go
    # (docs/benchmarks.md, "Hot path: round seven").
    settings = get_settings()
    sinks = [name for name in SINKS if lake or name != "lake"]
    dsn = settings.database_dsn()
    # one stop for every state: connecting, waiting on a server, consuming, flushing
    with StopSignal(duration) as stop, user_errors():
        until_stopped(
            stop, lambda: migrate(dsn), what="migrate",
            stopped=lambda: DatabaseUnavailable(dsn, f"no answer before the stop ({stop.reason})"),
        )  # fmt: skip
        probe_topic(settings, stop=stop)
        if prices:
            try:
                probe_topic(settings, settings.prices_topic, stop=stop)
            except MissingTopic as missing:
                err.print(f"[yellow]warning:[/] {missing}; processing tweets only")
                prices = False
        with err.status("joining the consumer group ...") as status:

            def show(stats: ProcessStats) -> None:
                lag = "?" if stats.lag is None else f"{stats.lag:,}"
                status.update(
                    f"processed {stats.consumed:,} · {stats.rate_per_s:,.0f}/s · "
                    f"stored {stats.stored:,} · dlq {stats.dlq:,} · lag {lag} · "
                    f"lake objects {stats.lake_objects:,}"
                )

            processor = build_processor(
                settings, until_idle=until_idle, sinks=sinks, metrics_port=metrics_port,
                stop=stop, on_progress=show,
            )  # fmt: skip
            price_processor = (
                build_price_processor(settings, until_idle=until_idle, sinks=sinks, stop=stop)
                if prices
                else None
            )
            settle_gc()  # what is built now lives as long as the process
            stats, price_rate = run_beside(processor, price_processor)
    out.print(
        f"process: {stats.consumed:,} consumed, {stats.stored:,} stored, "
        f"{stats.duplicates:,} duplicate ids skipped, {stats.dlq:,} dead-lettered, "
        f"{stats.lake_objects:,} lake objects; peak memory {peak_rss_mib():,} MiB"
    )
    if price_processor is not None:
        price_stats = price_processor.stats
        out.print(
            f"prices: {price_stats.consumed:,} consumed, {price_stats.rows.get('postgres', 0):,} "
            f"trades into price_minute ({price_stats.new.get('postgres', 0):,} minute upserts), "
            f"{price_stats.dlq:,} dead-lettered, {price_stats.lake_objects:,} lake objects, "
            f"{price_rate:,.0f} messages/s while busy"
        )


def peak_rss_mib() -> int:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(process)
