"""`cryptosent generate | replay | stream`: a source into the `tweets` topic, with a live
progress line and a summary; tweets Kafka did not acknowledge make the exit status 1.
`run_ingest` serves the price commands too (`cli/prices.py`: the `prices` topic).

Each command makes one `StopSignal` first (Ctrl-C, SIGTERM, ``--duration``) and hands it to
everything that waits: the Kafka check, the source, pacing and the final flush. Whatever it is
doing, a command ends within about a second of the stop, with what it had flushed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosent.cli.common import err, fail, out, parse_rate, user_errors
from cryptosent.config import get_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptosent.ingest import IngestStats
    from cryptosent.model import PriceTick, Tweet
    from cryptosent.runtime import StopSignal
    from cryptosent.sources.base import Source
    from cryptosent.sources.replay import ReplayFormat


def run_ingest(
    source: Source[Tweet] | Source[PriceTick],
    *,
    what: str,
    rate_per_s: float | None,
    stop: StopSignal,
    count: int | None = None,
    topic: str | None = None,
    unit: str = "tweets",
) -> IngestStats:
    """Produce from source to topic (default: the tweets topic) with a live progress line until
    the source ends, count is reached or stop is set (its deadline is ``--duration``); exit 1 on
    losses, or when a live feed stayed unreachable and nothing was sent. ``unit`` names the
    records in the summary ("tweets", "prices")."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cryptosent.ingest import open_producer, produce
    from cryptosent.sources.base import StreamSource
    from cryptosent.sources.exchanges.base import ExchangeSource

    settings = get_settings()
    topic = topic or settings.topic
    try:
        with user_errors():
            producer = open_producer(settings, topic, stop=stop)
    except BaseException:
        source.close()
        raise
    columns = [
        TextColumn(f"[bold]{what}[/]"),
        BarColumn(bar_width=None if count else 0),
        TextColumn("{task.fields[line]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(what, total=count, line="connecting")

        def show(stats: IngestStats) -> None:
            line = (
                f"sent {stats.delivered:,} · {stats.rate_per_s:,.0f}/s "
                f"({stats.rate_per_s * 60:,.0f}/min) · failed {stats.failed:,} · "
                f"in flight {stats.in_flight:,}"
            )
            progress.update(task, completed=stats.delivered, line=line)

        try:
            with user_errors():
                stats = produce(
                    source, producer=producer, topic=topic, rate_per_s=rate_per_s,
                    count=count, on_progress=show, stop=stop,
                    flush_timeout_s=settings.producer_flush_seconds,
                )  # fmt: skip
        finally:
            source.close()
    out.print(
        f"{what}: {stats.delivered:,} delivered to {topic!r}, {stats.failed:,} failed, "
        f"{stats.elapsed:.1f} s, {stats.rate_per_s:,.0f} {unit}/s"
        + (f" (interrupted by {stop.reason}, flushed)" if stats.interrupted else "")
    )
    if stats.failed:
        fail(f"{stats.failed:,} {unit} were not delivered: {stats.last_error}")
    problem = source.problem if isinstance(source, StreamSource | ExchangeSource) else None
    if problem is not None and stats.delivered == 0:
        fail(f"{what}: nothing received in {stats.elapsed:.1f} s: {problem}")
    return stats


def generate(
    rate: Annotated[
        str, typer.Option(help="Tweets per minute ('2000/min'), per second ('50/s') or 'max'.")
    ] = "2000/min",
    count: Annotated[int | None, typer.Option(min=1, help="Stop after N tweets.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Stop after S seconds.")] = None,
    seed: Annotated[int | None, typer.Option(help="Deterministic output for a given seed.")] = None,
    campaigns: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=0.5,
            help="Share of posts from coordinated shill campaigns (default: the setting, 0.05).",
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Write which posts are campaign or spam-bot posts (JSON Lines) here."),
    ] = None,
) -> None:
    """Produce realistic mock crypto tweets to Kafka (Ctrl-C flushes and stops)."""
    from cryptosent.cli.prices import market_from
    from cryptosent.runtime import StopSignal
    from cryptosent.sources.mock_campaigns import mock_feed

    settings = get_settings()
    share = settings.mock_campaign_share if campaigns is None else campaigns
    rate_per_s = parse_rate(rate)
    # the mock market of the settings: `prices mock` moves its prices by the same events
    feed = mock_feed(seed, share, truth, market=market_from(settings))
    with StopSignal(duration) as stop:
        run_ingest(feed, what="generate", rate_per_s=rate_per_s, stop=stop, count=count)


def replay(
    path: Annotated[Path, typer.Argument(help="JSON Lines or CSV file (.gz allowed).")],
    speed: Annotated[
        float | None, typer.Option(min=0.0001, help="Original rhythm sped up X times.")
    ] = None,
    rate: Annotated[
        str | None, typer.Option(help="Fixed rate instead ('500/min', '50/s', 'max').")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl or csv (default: from the suffix).")
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(help="CSV column mapping FIELD=COLUMN, e.g. --column text=tweet_text."),
    ] = None,
    restamp: Annotated[
        bool, typer.Option(help="Set created_at to now (live demos) instead of the original.")
    ] = False,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after N tweets.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Stop after S seconds.")] = None,
    to_lake: Annotated[
        bool,
        typer.Option(
            "--to-lake",
            help="Score the file as the processor does and write it straight into the lake "
            "(no Kafka; idempotent: a re-run writes the same objects).",
        ),
    ] = False,
) -> None:
    """Replay tweets from a file into Kafka (or, with --to-lake, into the lake); bad lines are
    reported with their number, skipped."""
    from cryptosent.runtime import StopSignal
    from cryptosent.sources.replay import replay_source

    if speed is not None and rate is not None:
        fail("use --speed or --rate, not both")
    if fmt not in (None, "jsonl", "csv"):
        fail(f"--format {fmt!r}: use jsonl or csv")
    mapping: dict[str, str | None] = {}
    for item in column or []:
        field, sep, name = item.partition("=")
        if not sep or not field:
            fail(f"--column {item!r}: use FIELD=COLUMN")
        mapping[field.strip()] = name.strip() or None
    bad_lines = 0

    def report(line_number: int, reason: str) -> None:
        nonlocal bad_lines
        bad_lines += 1
        if bad_lines <= 20:
            # one line, however long the path: PATH:LINE stays whole for editors and grep
            line = f"{path}:{line_number}: skipped: {reason}"
            err.print(line, highlight=False, markup=False, soft_wrap=True)
        elif bad_lines == 21:
            err.print("(more bad lines: only the count is shown from here on)")

    if to_lake:
        if speed is not None or rate is not None or restamp or count is not None:
            fail("--to-lake loads the whole file as it is: no --speed, --rate, --restamp, --count")
        with StopSignal(duration) as stop:
            try:
                replay_to_lake(path, fmt, mapping, report, stop)  # type: ignore[arg-type]
            finally:
                if bad_lines:
                    err.print(f"{bad_lines:,} bad line(s) skipped in {path}")
        return
    with StopSignal(duration) as stop:
        with user_errors():
            source = replay_source(
                path, fmt=fmt, columns=mapping, on_bad_line=report,  # type: ignore[arg-type]
                speed=speed, rate_per_s=parse_rate(rate) if rate else None, restamp=restamp,
                stop=stop,
            )  # fmt: skip
        try:
            run_ingest(source, what="replay", rate_per_s=None, stop=stop, count=count)
        finally:
            if bad_lines:
                err.print(f"{bad_lines:,} bad line(s) skipped in {path}")


def replay_to_lake(
    path: Path,
    fmt: ReplayFormat | None,
    columns: dict[str, str | None],
    report: Callable[[int, str], None],
    stop: StopSignal,
) -> None:
    """`replay --to-lake`: the file into the lake (`storage.to_lake`) with a progress bar."""
    import psycopg
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cryptosent.sinks.lake import Lake, lake_location
    from cryptosent.storage.to_lake import (
        ToLakeStats,
        count_records,
        load_archive,
        record_complete,
    )

    settings = get_settings()
    refused = 0

    def report_refused(ordinal: int, reason: str) -> None:
        nonlocal refused
        refused += 1
        if refused <= 20:
            line = f"{path}: record {ordinal}: refused: {reason}"
            err.print(line, highlight=False, markup=False, soft_wrap=True)

    with user_errors():
        lake = Lake(lake_location(settings))
        total = count_records(path) if path.is_file() else None
        columns_shown = [
            TextColumn("[bold]replay → lake[/]"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns_shown, console=err, transient=False) as progress:
            task = progress.add_task("replay", total=total, line="scoring the first window")

            def show(stats: ToLakeStats) -> None:
                line = (
                    f"{stats.tweets:,} tweets · {stats.rate_per_s:,.0f}/s · "
                    f"{stats.objects:,} objects"
                )
                progress.update(task, completed=stats.tweets + stats.refused, line=line)

            stats = load_archive(
                path, lake, settings, fmt=fmt, columns=columns, on_bad_line=report,
                on_refused=report_refused, on_progress=show, stop=stop,
            )  # fmt: skip
            if not stop.is_set:  # the total counted lines: headers and bad lines too
                progress.update(task, completed=total)
    try:
        record_complete(settings.database_dsn(), settings.consumer_group, stats)
    except psycopg.Error as exc:
        err.print(
            f"[yellow]warning:[/] {stats.topic}: the lake's objects are written, but PostgreSQL "
            f"was not told they are final, so `lake compact` leaves them alone: {exc}".strip(),
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    out.print(
        f"replay --to-lake: {stats.tweets:,} tweets into {lake.location.url} as topic "
        f"{stats.topic!r} ({stats.objects:,} objects, {stats.bytes / 1e6:,.1f} MB), "
        f"{stats.refused:,} refused, {stats.seconds:.1f} s, {stats.rate_per_s:,.0f} tweets/s"
        + (f" (interrupted by {stop.reason})" if stop.is_set else "")
    )


def stream(
    source: Annotated[str, typer.Argument(help="x (X API v2 filtered stream) or bluesky.")],
    count: Annotated[int | None, typer.Option(min=1, help="Stop after N tweets.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Stop after S seconds.")] = None,
) -> None:
    """Stream live posts about crypto into Kafka (reconnects by itself; Ctrl-C stops)."""
    from cryptosent import relevance
    from cryptosent.runtime import StopSignal

    settings = get_settings()
    live: Source
    with StopSignal(duration) as stop, user_errors():
        if source == "x":
            from cryptosent.sources.x_api import XFilteredStream, build_rules

            if settings.x_bearer_token is None:
                fail("no X bearer token: set CRYPTOSENT_X_BEARER_TOKEN (X API v2, filtered stream)")
            live = XFilteredStream(
                settings.x_bearer_token.get_secret_value(),
                rules=build_rules(relevance.x_track_terms()),
                base_url=settings.x_api_url,
                stop=stop,
            )
        elif source == "bluesky":
            from cryptosent.sources.bluesky import JetstreamSource

            live = JetstreamSource(
                settings.jetstream_url, accept=relevance.crypto_filter(),
                cursor_path=settings.stack_dir / "jetstream.cursor", stop=stop,
            )  # fmt: skip
        else:
            fail(f"unknown source {source!r}: choose x or bluesky")
        run_ingest(live, what=f"stream {source}", rate_per_s=None, stop=stop, count=count)


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command()(generate)
    app.command()(replay)
    app.command()(stream)
