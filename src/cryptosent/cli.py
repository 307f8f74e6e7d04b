"""The `cryptosent` command: parses arguments, calls the modules, prints results. Nothing more."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cryptosent.config import Settings, get_settings, mask_url_password

if TYPE_CHECKING:
    from cryptosent.ingest import BatchSupplier, IngestStats
    from cryptosent.process import ProcessStats

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

out = Console(soft_wrap=True)  # summary lines stay one line, whatever the width
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


# ---------------------------------------------------------------------------------- ingest ---
def parse_rate(text: str) -> float | None:
    """'2000/min', '50/s', '2000' (per minute) or 'max' -> messages per second (None = max)."""
    value = text.strip().lower()
    if value == "max":
        return None
    number, _, unit = value.partition("/")
    per = {"": 60.0, "min": 60.0, "m": 60.0, "s": 1.0, "sec": 1.0, "h": 3600.0}.get(unit.strip())
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if per is None or amount <= 0:
        raise typer.BadParameter(f"{text!r}: use N/min, N/s or max (e.g. 2000/min)")
    return amount / per


def run_ingest(
    supply: BatchSupplier,
    *,
    what: str,
    rate_per_s: float | None,
    count: int | None = None,
    duration_s: float | None = None,
) -> IngestStats:
    """Produce from supply to the tweets topic with a live progress line; exit 1 on losses."""
    from confluent_kafka import Producer
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cryptosent.ingest import (
        KafkaUnavailable,
        StopSignal,
        check_topic,
        produce,
        producer_config,
    )

    settings = get_settings()
    # librdkafka reports every failed connection attempt; the progress line and the summary
    # already say what matters (delivered, failed, why), so its chatter stays out of the way
    quiet = logging.getLogger("cryptosent.kafka.producer")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    producer = Producer(producer_config(settings.kafka_config()), logger=quiet)
    try:
        check_topic(producer, settings.topic, settings.kafka_bootstrap)
    except KafkaUnavailable as exc:
        fail(str(exc))
    columns = [
        TextColumn(f"[bold]{what}[/]"),
        BarColumn(bar_width=None if count else 0),
        TextColumn("{task.fields[line]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as progress, StopSignal() as stop:
        task = progress.add_task(what, total=count, line="connecting")

        def show(stats: IngestStats) -> None:
            line = (
                f"sent {stats.delivered:,} · {stats.rate_per_s:,.0f}/s "
                f"({stats.rate_per_s * 60:,.0f}/min) · failed {stats.failed:,} · "
                f"in flight {stats.in_flight:,}"
            )
            progress.update(task, completed=stats.delivered, line=line)

        stats = produce(
            supply,
            producer=producer,
            topic=settings.topic,
            rate_per_s=rate_per_s,
            count=count,
            duration_s=duration_s,
            on_progress=show,
            stop=stop,
        )
    out.print(
        f"{what}: {stats.delivered:,} delivered to {settings.topic!r}, {stats.failed:,} failed, "
        f"{stats.elapsed:.1f} s, {stats.rate_per_s:,.0f} tweets/s"
        + (" (interrupted, flushed)" if stats.interrupted else "")
    )
    if stats.failed:
        fail(f"{stats.failed:,} tweets were not delivered: {stats.last_error}")
    return stats


@app.command()
def generate(
    rate: Annotated[
        str, typer.Option(help="Tweets per minute ('2000/min'), per second ('50/s') or 'max'.")
    ] = "2000/min",
    count: Annotated[int | None, typer.Option(min=1, help="Stop after N tweets.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Stop after S seconds.")] = None,
    seed: Annotated[int | None, typer.Option(help="Deterministic output for a given seed.")] = None,
) -> None:
    """Produce realistic mock crypto tweets to Kafka (Ctrl-C flushes and stops)."""
    from cryptosent.sources.mock import MockGenerator

    rate_per_s = parse_rate(rate)
    generator = MockGenerator(seed=seed)
    run_ingest(
        generator.encoded,
        what="generate",
        rate_per_s=rate_per_s,
        count=count,
        duration_s=duration,
    )


@app.command()
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
) -> None:
    """Replay tweets from a file into Kafka; bad lines are reported with their number, skipped."""
    from cryptosent.ingest import encoded, iterator_supplier
    from cryptosent.sources.replay import ReplayError, paced, read_replay

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
            err.print(f"{path}:{line_number}: skipped: {reason}", highlight=False, markup=False)
        elif bad_lines == 21:
            err.print("(more bad lines: only the count is shown from here on)")

    try:
        tweets = read_replay(path, fmt=fmt, columns=mapping, on_bad_line=report)  # type: ignore[arg-type]
    except ReplayError as exc:
        fail(str(exc))
    rate_per_s = parse_rate(rate) if rate else None
    stream = paced(tweets, speed=speed, rate_per_s=rate_per_s, restamp=restamp)
    try:
        live = speed is not None or rate_per_s is not None
        supply = iterator_supplier(encoded(stream), max_batch=1 if live else None)
        run_ingest(supply, what="replay", rate_per_s=None, count=count)
    finally:
        if bad_lines:
            err.print(f"{bad_lines:,} bad line(s) skipped in {path}")


@app.command()
def stream(
    source: Annotated[str, typer.Argument(help="x (X API v2 filtered stream) or bluesky.")],
    count: Annotated[int | None, typer.Option(min=1, help="Stop after N tweets.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Stop after S seconds.")] = None,
) -> None:
    """Stream live posts about crypto into Kafka (reconnects by itself; Ctrl-C stops)."""
    from cryptosent.ingest import encoded, iterator_supplier

    settings = get_settings()
    if source == "x":
        from cryptosent.sources.x_api import XFilteredStream, XStreamError

        if settings.x_bearer_token is None:
            fail("no X bearer token: set CRYPTOSENT_X_BEARER_TOKEN (X API v2, filtered stream)")
        try:
            x = XFilteredStream(settings.x_bearer_token.get_secret_value())
            tweets = x.iter_tweets()
            run_ingest(
                iterator_supplier(encoded(tweets), max_batch=1), what="stream x", rate_per_s=None,
                count=count, duration_s=duration,
            )  # fmt: skip
        except XStreamError as exc:
            fail(str(exc))
    elif source == "bluesky":
        from cryptosent.sources.bluesky import JetstreamError, JetstreamSource

        try:
            jetstream = JetstreamSource(
                settings.jetstream_url, cursor_path=settings.stack_dir / "jetstream.cursor"
            )
            run_ingest(
                iterator_supplier(encoded(jetstream.iter_tweets()), max_batch=1),
                what="stream bluesky",
                rate_per_s=None, count=count, duration_s=duration,
            )  # fmt: skip
        except JetstreamError as exc:
            fail(str(exc))
    else:
        fail(f"unknown source {source!r}: choose x or bluesky")


# --------------------------------------------------------------------------------- process ---
def setup_logging(verbose: bool = False) -> None:
    """Structured (key=value) logs on stderr; INFO with --verbose, else WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)


@app.command()
def process(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit 0 once caught up with the topic.")
    ] = False,
    lake: Annotated[bool, typer.Option(help="Write the lake (raw + Parquet).")] = True,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus /metrics port (0 = off).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log INFO too.")] = False,
) -> None:
    """Consume tweets, score them, store them in the lake and PostgreSQL (Ctrl-C stops cleanly)."""
    from cryptosent.ingest import KafkaUnavailable, StopSignal, check_topic
    from cryptosent.process import build_processor
    from cryptosent.sinks.lake import LakeError
    from cryptosent.sinks.migrations import migrate

    setup_logging(verbose)
    settings = get_settings()
    with user_errors(settings):
        migrate(settings.database_dsn())
        from confluent_kafka import Producer

        quiet = logging.getLogger("cryptosent.kafka.probe")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        probe = Producer(settings.kafka_config(), logger=quiet)
        try:
            check_topic(probe, settings.topic, settings.kafka_bootstrap)
        except KafkaUnavailable as exc:
            fail(str(exc))
        with StopSignal() as stop, err.status("joining the consumer group ...") as status:

            def show(stats: ProcessStats) -> None:
                lag = "?" if stats.lag is None else f"{stats.lag:,}"
                status.update(
                    f"processed {stats.consumed:,} · {stats.rate_per_s:,.0f}/s · "
                    f"stored {stats.stored:,} · dlq {stats.dlq:,} · lag {lag} · "
                    f"lake objects {stats.lake_objects:,}"
                )

            try:
                processor = build_processor(
                    settings, until_idle=until_idle, with_lake=lake, metrics_port=metrics_port,
                    stop=stop, on_progress=show,
                )  # fmt: skip
                stats = processor.run()
            except LakeError as exc:
                fail(str(exc))
    out.print(
        f"process: {stats.consumed:,} consumed, {stats.stored:,} stored, "
        f"{stats.duplicates:,} duplicate ids skipped, {stats.dlq:,} dead-lettered, "
        f"{stats.lake_objects:,} lake objects"
    )


# ----------------------------------------------------------------------------------- score ---
@app.command()
def score(
    analyzer: Annotated[str, typer.Option(help="crypto (default) or vader (exactly VADER).")] = (
        "crypto"
    ),
) -> None:
    """Score text from stdin, one per line; print one JSON object per line on stdout."""
    import orjson

    from cryptosent.analysis.sentiment import ANALYZERS, get_analyzer, label

    if analyzer not in ANALYZERS:
        fail(f"--analyzer {analyzer!r}: choose one of {', '.join(ANALYZERS)}")
    scorer = get_analyzer(analyzer)
    stdin = sys.stdin.buffer
    write = sys.stdout.buffer.write
    for number, raw in enumerate(stdin, start=1):
        try:
            text = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError as exc:
            fail(f"stdin line {number} is not UTF-8: {exc.reason} at byte {exc.start}")
        c = scorer.scores(text)
        record = {"compound": c.compound, "pos": c.pos, "neu": c.neu, "neg": c.neg,
                  "label": label(c.compound)}  # fmt: skip
        write(orjson.dumps(record) + b"\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------- bench ---
@app.command()
def bench(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file.")
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="Tiny sizes: checks the harness, the numbers mean nothing.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Only these stages: sentiment, produce, process, freshness, dashboard."),
    ] = None,
) -> None:
    """Measure every stage on the local stack, side by side, and print a table."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    repo = Path.cwd()
    if not (repo / "benchmarks" / "run.py").exists():
        fail("run `cryptosent bench` from the repository root (it needs benchmarks/)")
    sys.path.insert(0, str(repo))
    from benchmarks.run import TARGETS, run, verdicts, write_json

    settings = get_settings()
    with user_errors(settings):
        from cryptosent.stack.manager import Stack

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

            result = run(settings, quick=quick, only=set(only) if only else None, on_stage=on_stage)
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


# ------------------------------------------------------------------------------- dashboard ---
@app.command()
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
    import os
    from importlib import resources

    settings = get_settings()
    if source not in (None, "postgres", "lake"):
        fail(f"--source {source!r}: use postgres or lake")
    app_path = resources.files("cryptosent.dashboard").joinpath("app.py")
    env = dict(os.environ)
    if source:
        env["CRYPTOSENT_DASHBOARD_SOURCE"] = source
    if refresh:
        env["CRYPTOSENT_DASHBOARD_REFRESH_SECONDS"] = str(refresh)
    chosen_port = port or settings.dashboard_port
    out.print(f"dashboard on http://{address}:{chosen_port} (Ctrl-C stops it)")
    argv = [
        sys.executable, "-m", "streamlit", "run", str(app_path),
        "--server.port", str(chosen_port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.runOnSave", "false", "--global.developmentMode", "false",
    ]  # fmt: skip
    sys.stdout.flush()
    # become Streamlit: signals (Ctrl-C, SIGTERM from `make demo`) reach the server itself
    os.execve(sys.executable, argv, env)  # noqa: S606 - argv is ours, no shell involved


# ------------------------------------------------------------------------------------ demo ---
@app.command()
def demo(
    rate: Annotated[str, typer.Option(help="Generator rate.")] = "2000/min",
    port: Annotated[int | None, typer.Option(help="Dashboard port (default 8501).")] = None,
    duration: Annotated[
        float | None, typer.Option(min=1, help="Stop by itself after S seconds.")
    ] = None,
) -> None:
    """The main job: local stack, generator, processor and live dashboard; Ctrl-C stops all."""
    from rich.live import Live

    from cryptosent.demo import DemoStatus, Part, run_demo
    from cryptosent.ingest import StopSignal

    parse_rate(rate)
    stack_up(service=None)
    get_settings.cache_clear()
    settings = get_settings()
    chosen_port = port or settings.dashboard_port
    url = f"http://localhost:{chosen_port}"
    out.print(
        f"[bold]cryptosent demo[/]: generator at {rate} -> Kafka -> processor -> PostgreSQL + "
        f"S3 lake -> dashboard on [bold cyan]{url}[/]  (Ctrl-C stops everything)"
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

    with StopSignal() as stop, Live(console=out, refresh_per_second=2, transient=False) as live:
        running = run_demo(
            settings, rate=rate, port=chosen_port, duration_s=duration,
            show=lambda parts, status: live.update(table(parts, status)),
            should_stop=lambda: stop.is_set,
        )  # fmt: skip
    failed = [p for p in running if p.proc is not None and p.proc.returncode not in (0, None)]
    for part in failed:
        err.print(f"{part.name} exited with {part.proc.returncode if part.proc else '?'}; "
                  f"see {part.log}")  # fmt: skip
    out.print("demo stopped; the stack keeps running (`cryptosent stack down` stops it)")
    if failed and not stop.is_set and duration is None:
        raise typer.Exit(1)


def main() -> None:
    """Entry point for `python -m cryptosent`."""
    app()
