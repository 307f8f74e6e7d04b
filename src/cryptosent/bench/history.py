"""History at scale: synthetic history loaded by the replay-to-lake path, then the dashboard's
90-day and 1-year per-coin views from the lake.

1. An archive of `tweets` mock posts spread evenly over the `days` days before today (JSON
   Lines, written by `MockGenerator`; its writing is not timed).
2. `storage.to_lake.load_archive` into a fresh local lake: wall and CPU seconds, CPU seconds per
   million tweets, objects per day and layer.
3. `dashboard.history.DayAggregates`: the first build (every day read once: CPU seconds per
   million rows), then each view *cold* (a new process's view: empty memory, the per-day disk
   cache filled by the first build, as a dashboard restarted after the days were seen) and
   *warm* (the same view again), median of `runs` milliseconds.

Run: ``python -m cryptosent.bench.history [--tweets 1000000] [--days 365] [--keep DIR
[--no-load]]``
(`cryptosent bench --only history` runs `measure` with the bench sizes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptosent.config import Settings


def write_archive(path: Path, tweets: int, days: int) -> None:
    """`tweets` mock posts spread evenly over the `days` days before today (UTC), JSON Lines."""
    from cryptosent.model import encode_tweet
    from cryptosent.sources.mock import MockGenerator

    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=days)
    step = timedelta(days=days) / tweets
    generator = MockGenerator(seed=16)
    written = 0
    with path.open("wb") as out:
        while written < tweets:
            batch = generator.read(min(10_000, tweets - written))
            lines = []
            for tweet in batch:
                tweet.created_at = start + written * step
                lines.append(encode_tweet(tweet))
                written += 1
            out.write(b"\n".join(lines) + b"\n")


def _timed_ms(action: Any, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def measure(
    settings: Settings,
    tweets: int = 1_000_000,
    days: int = 365,
    runs: int = 5,
    keep: Path | None = None,
    load: bool = True,
) -> dict[str, Any]:
    """``history_*`` figures (see the module docstring)."""
    from cryptosent.dashboard.history import DayAggregates
    from cryptosent.sinks.lake import Lake, open_lake
    from cryptosent.storage.lake_files import list_layer
    from cryptosent.storage.to_lake import load_archive

    with tempfile.TemporaryDirectory(prefix="cryptosent-history-") as temp:
        folder = keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / "history.jsonl"
        if not archive.is_file():
            write_archive(archive, tweets, days)
        location = open_lake(f"file://{folder / 'lake'}")
        result: dict[str, Any] = {"history_days": days}
        if load:  # else: the lake `keep` holds from an earlier run
            loaded = load_archive(archive, Lake(location), settings)
            result |= {
                "history_tweets": loaded.tweets,
                "history_load_s": round(loaded.seconds, 1),
                "history_load_cpu_s_per_million": round(
                    loaded.cpu_seconds / loaded.tweets * 1e6, 1
                ),
                "history_load_tweets_per_cpu_s": round(loaded.tweets / loaded.cpu_seconds),
                "history_lake_mb": round(loaded.bytes / 1e6, 1),
            }
        per_day = Counter(o.day for o in list_layer(location, "processed"))
        result["history_objects_per_day_max"] = max(per_day.values())
        cache = folder / "cache"
        shutil.rmtree(cache, ignore_errors=True)  # the first build starts from nothing
        first = DayAggregates(location, cache)
        started, cpu = time.perf_counter(), time.process_time()
        first.frame(days + 1)
        build_cpu = time.process_time() - cpu
        result["history_first_build_s"] = round(time.perf_counter() - started, 2)
        result["history_first_build_rows"] = first.last.rows_read
        result["history_first_build_cpu_s_per_million"] = round(
            build_cpu / max(first.last.rows_read, 1) * 1e6, 2
        )
        for label, span in (("90d", 90), ("1y", 365)):
            cold_samples = []
            for _ in range(runs):
                view = DayAggregates(location, cache)
                started = time.perf_counter()
                view.frame(span)
                cold_samples.append((time.perf_counter() - started) * 1000)
                assert view.last.computed == 0
            result[f"history_view_{label}_cold_ms"] = round(statistics.median(cold_samples), 1)
            warm = view
            result[f"history_view_{label}_warm_ms"] = _timed_ms(
                lambda w=warm, s=span: w.frame(s), runs
            )
            result[f"history_view_{label}_objects"] = view.last.objects
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Work here and keep the archive and lake.")
    parser.add_argument(
        "--no-load", action="store_true", help="Measure the views of the lake --keep holds."
    )
    args = parser.parse_args(argv)
    if args.no_load and args.keep is None:
        parser.error("--no-load needs --keep")
    figures = measure(Settings(), args.tweets, args.days, args.runs, args.keep, not args.no_load)
    json.dump(figures, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
