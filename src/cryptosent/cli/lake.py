"""`cryptosent lake compact`: merge the lake's small objects of closed hours and days
(docs/storage.md, "Lake: layout and compaction")."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Annotated

import typer

from cryptosent.cli.common import out, setup_logging, user_errors

lake_app = typer.Typer(help="Lake maintenance (compaction).")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '2h', '1d' -> timedelta."""
    m = _DURATION.match(text.lower())
    if not m:
        raise typer.BadParameter(f"{text!r}: use a number and s, m, h or d (e.g. 2h)")
    return timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])


@lake_app.command("compact")
def compact(
    older_than: Annotated[
        str, typer.Option(help="Compact hours (and days) that ended at least this long ago.")
    ] = "2h",
    target_mb: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Size of a compacted object in MiB (CRYPTOSENT_LAKE_COMPACT_TARGET_MB)."
        ),
    ] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option(help="Layer to compact (processed, raw, prices); default all."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be merged.")] = False,
    every: Annotated[
        str | None, typer.Option(help="Run again at this interval (e.g. 1h) until Ctrl-C.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each merge.")] = False,
) -> None:
    """Merge the lake's small objects of closed hours into objects of about --target-mb, and a
    closed day's into a handful per layer; readers never see a row twice or miss one."""
    from cryptosent.config import get_settings
    from cryptosent.sinks.lake import lake_location
    from cryptosent.storage.compaction import LAYERS, Compactor, committed_offsets, per_day

    setup_logging(verbose)
    age = parse_duration(older_than)
    interval = parse_duration(every) if every else None
    layers = tuple(layer or LAYERS)
    unknown = [name for name in layers if name not in LAYERS]
    if unknown:
        raise typer.BadParameter(f"unknown layer {unknown[0]!r}: use {', '.join(LAYERS)}")
    settings = get_settings()
    groups = [settings.consumer_group, f"{settings.consumer_group}.prices"]
    mib = target_mb if target_mb is not None else settings.lake_compact_target_mb
    with user_errors():
        compactor = Compactor(
            lake_location(settings),
            lambda: committed_offsets(settings.database_dsn(), groups),
            target_bytes=int(mib * 2**20),
            grace_seconds=settings.lake_compact_grace_seconds,
            layers=layers,
        )
        while True:
            report = compactor.run(age, dry_run=dry_run)
            verb = "would merge" if dry_run else "merged"
            inputs = sum(len(m.inputs) for m in report.merges)
            out.print(
                f"{verb} {inputs} objects into {len(report.merges)} "
                f"({report.bytes_in / 2**20:.1f} MiB in"
                + ("" if dry_run else f", {report.bytes_out / 2**20:.1f} MiB out")
                + f"), deleted {report.deleted} replaced objects in {report.seconds:.1f} s "
                f"({report.cpu_seconds:.1f} CPU s)",
                highlight=False,
            )
            changed = [row for row in per_day(report) if row[2] != row[3]]
            for name, day, before, after in changed:
                out.print(f"  {name}/dt={day}: {before} -> {after} live objects", highlight=False)
            for reason in report.skipped:
                out.print(f"  [yellow]left alone:[/] {reason}", highlight=False)
            if interval is None:
                return
            time.sleep(interval.total_seconds())


def register(app: typer.Typer) -> None:
    """Add the command group to the app."""
    app.add_typer(lake_app, name="lake")
