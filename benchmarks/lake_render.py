"""CPU cost of the lake sink's `render` (Parquet + gzip JSON Lines per partition and hour), per
1,000 tweets, no servers.

    .venv/bin/python -m benchmarks.lake_render [--count 100000] [--batch 20000] [--run 5000]
                                               [--rounds 5]

Mock tweets, encoded as the producer sends them and spread over 6 Kafka partitions, are decoded
and scored as the processor does (`transform.decode`, `transform.Scorer`), buffered as the lake
sink buffers them, and rendered ``--rounds`` times; the best round counts (CPU seconds of this
process, so another process's load changes the figure little).

``--run``: consecutive messages of one partition. A consumer gets them in long runs (2-4 runs
in a 20,000-message batch of a 6-partition topic, measured with confluent-kafka on a filled
bench topic); ``--run 1`` interleaves the partitions message by message, the worst case.
"""

from __future__ import annotations

import argparse
import resource

from benchmarks.transform import START, Consumed
from cryptosent.ingest import to_message
from cryptosent.processor.transform import Scorer, decode, warm_up
from cryptosent.sinks.lake import LakeBuffer, render
from cryptosent.sources.mock import MockGenerator

PARTITIONS = 6


class Spread(Consumed):
    """A consumed message of one of `PARTITIONS` partitions, in runs of `run` messages."""

    run = 1

    def partition(self) -> int:
        return self._offset // self.run % PARTITIONS


def cpu() -> float:
    """CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(count: int, batch: int, run: int, rounds: int) -> dict[str, float]:
    """CPU ms per 1,000 tweets of the best render, the objects and their bytes."""
    Spread.run = run
    feed = MockGenerator(seed=42, clock=lambda: START)
    values = [to_message(tweet)[1] for tweet in feed.read(count)]
    warm_up()
    scorer = Scorer()
    batches = [
        scorer(decode([Spread(i, v) for i, v in enumerate(values[first : first + batch], first)]))
        for first in range(0, count, batch)
    ]
    best = float("inf")
    for _ in range(rounds):
        buffer = LakeBuffer()
        for scored in batches:
            buffer.add(scored)
        started = cpu()
        pending = render(buffer, "tweets")
        best = min(best, cpu() - started)
    return {
        "render_cpu_ms_per_1000": best / count * 1e6,
        "objects": len(pending.blobs),
        "bytes": sum(map(len, pending.blobs.values())),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--run", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name, value in measure(args.count, args.batch, args.run, args.rounds).items():
        print(f"{name:<28} {value:>14,.2f}")
