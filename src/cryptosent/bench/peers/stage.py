"""The `peers` stage: cryptosent, a seed-style script and Quix Streams on one pre-filled topic.

One topic is filled with N generated tweets; then, one after the other, each job drains it with
its own consumer group, into its own table (one database) and S3 prefix:
1. `cryptosent process --until-idle --no-prices` (every tweet sink: PostgreSQL with coins,
   aggregates and offsets; the lake's raw and Parquet layers);
2. the seed-style script (`seed_style.py`);
3. the Quix Streams job (`quix_job.py`, in its own venv).
Rates are sustained: rows committed after a job's first commit over the time from its first
commit to its last (from `stored_at`), so start-up is left out of all three alike. cryptosent's
CPU per 1,000 tweets has its fixed start-up taken off: the CPU of the same command on the empty
topic (run before the fill) is subtracted. Each job's stored rows are counted in its table and in
its Parquet objects; a job that did not store exactly N tweets fails the stage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cryptosent.bench import pipeline
from cryptosent.bench.peers import jobs
from cryptosent.bench.peers.quix_venv import ensure_quix_python, pinned
from cryptosent.config import Settings


@dataclass(frozen=True)
class Stored:
    """Where one job stored its tweets: a table and the Parquet objects under an S3 prefix."""

    name: str
    database_url: str
    table: str
    bucket: str
    prefix: str


def _check(settings: Settings, stored: Stored, count: int) -> int:
    """Raise unless the job stored exactly `count` tweets in its table (distinct ids) and in its
    Parquet objects; return how many Parquet objects it wrote."""
    rows, ids = jobs.table_rows(stored.database_url, stored.table)
    objects, lake_rows = jobs.parquet_rows(settings, stored.bucket, stored.prefix)
    for what, got in (("table", rows), ("table (distinct ids)", ids), ("Parquet", lake_rows)):
        if got != count:
            raise RuntimeError(f"{stored.name} stored {got:,} of {count:,} tweets in its {what}")
    return objects


def measure_peers(
    settings: Settings, count: int, inspect: Callable[[list[Stored]], None] | None = None
) -> dict[str, Any]:
    """Run the three jobs on one topic of `count` tweets; their rates, ratios and costs.
    `inspect` (tests) sees what the jobs stored before the sandbox is removed."""
    quix_python = ensure_quix_python(settings)  # built before anything is timed
    load_start = jobs.load_average()
    bucket = settings.stack_s3_bucket
    prefix = f"bench/peers_{uuid.uuid4().hex[:8]}"  # Quix's S3 sink refuses '-' in a prefix
    result: dict[str, Any] = {"peers_count": count}
    with pipeline.sandbox(settings, "peers") as sandbox:
        box = replace(sandbox, lake_url=f"s3://{bucket}/{prefix}/cryptosent")
        try:
            process = ["process", "--until-idle", "--no-prices"]
            empty_cli = box.cli(*process, consumer_group=f"{box.topic}-empty")
            empty = jobs.run_child("cryptosent process (empty topic)", empty_cli)
            pipeline.fill(box, count)
            result["peers_cryptosent_loadavg_1m"] = jobs.load_average()
            ours = jobs.run_child("cryptosent process", box.cli(*process))
            lake = f"{prefix}/cryptosent/processed"
            stored = [Stored("cryptosent", box.database_url, "tweets", bucket, lake)]
            _check(settings, stored[0], count)
            ours_rate = jobs.sustained_rate(box.database_url, "tweets")
            # on a few thousand tweets start-up noise can exceed the work: no figure then
            cpu_net = ours.cpu_s - empty.cpu_s if ours.cpu_s > empty.cpu_s else float("nan")
            result |= {
                "peers_cryptosent_tweets_per_s": ours_rate,
                "peers_cryptosent_wall_s": ours.wall_s,
                "peers_cryptosent_cpu_s_per_1000": cpu_net / count * 1000,
                "peers_cryptosent_cpu_s_per_1000_raw": ours.cpu_s / count * 1000,
                "peers_cryptosent_startup_cpu_s": empty.cpu_s,
                "peers_cryptosent_startup_wall_s": empty.wall_s,
            }
            for name in (jobs.SEED, jobs.QUIX):
                job = jobs.PeerJob(
                    name=name,
                    topic=box.topic,
                    group=f"{box.topic}-{name}",
                    database_url=box.database_url,
                    table=f"peer_{name}",
                    bucket=bucket,
                    prefix=f"{prefix}/{name}",
                    count=count,
                )
                job_file = job.write(settings, box.folder)
                if name == jobs.QUIX:
                    jobs.create_quix_table(job.database_url, job.table)
                    command = jobs.quix_command(quix_python, job_file)
                else:
                    command = jobs.seed_command(job_file)
                result[f"peers_{name}_loadavg_1m"] = jobs.load_average()
                run = jobs.run_child(f"{name} peer", command, cwd=box.folder)
                stored.append(Stored(name, job.database_url, job.table, bucket, job.prefix))
                objects = _check(settings, stored[-1], count)
                rate = jobs.sustained_rate(job.database_url, job.table)
                result |= {
                    f"peers_{name}_tweets_per_s": rate,
                    f"peers_{name}_wall_s": run.wall_s,
                    f"peers_{name}_cpu_s_per_1000_raw": run.cpu_s / count * 1000,
                    f"peers_{name}_parquet_objects": objects,
                    f"peers_ratio_vs_{name}": ours_rate / rate,
                    # the jobs' own CPU per tweet, start-up included on both sides (servers not)
                    f"peers_cpu_ratio_vs_{name}": run.cpu_s / ours.cpu_s,
                }
            if inspect is not None:
                inspect(stored)
        finally:
            jobs.delete_prefix(settings, bucket, prefix)
    result["peers_loadavg_1m_start"] = load_start
    result["peers_loadavg_1m_end"] = jobs.load_average()
    result["peers_versions"] = {p: pinned(p) for p in ("quixstreams", "vaderSentiment")}
    return result
