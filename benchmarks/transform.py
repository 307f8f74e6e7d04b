"""CPU cost of the processor's transform alone, per 1,000 tweets: decode (validate, dead letters)
and score (`transform.Scorer`: both analyzers, coins, the Arrow table), no servers.

    .venv/bin/python -m benchmarks.transform [--count 100000] [--batch 5000]

Mock tweets with campaigns (5 %), encoded as the producer sends them, go through
`transform.decode` and `transform.Scorer` in batches as the processor consumes them; the
first batch warms the caches and is not counted. CPU seconds of this process
(`resource.getrusage`), so another process's load changes the figures little.
"""

from __future__ import annotations

import argparse
import resource
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptosent.ingest import to_message
from cryptosent.processor.transform import Scorer, decode, warm_up
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import CampaignMock

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@dataclass
class Consumed:
    """A consumed message (what `transform.Message` reads)."""

    _offset: int
    _value: bytes

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, int(START.timestamp() * 1000))  # CREATE_TIME, as the producer stamps


def cpu() -> float:
    """CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(count: int, batch: int) -> dict[str, float]:
    """CPU milliseconds per 1,000 tweets of decode and score, and tweets per CPU second."""
    feed = CampaignMock(MockGenerator(seed=42, clock=lambda: START), 0.05, clock=lambda: START)
    values = [to_message(t)[1] for t in feed.read(count + batch)]
    batches = [
        [Consumed(i, v) for i, v in enumerate(values[first : first + batch], first)]
        for first in range(0, len(values), batch)
    ]
    warm_up()
    scorer = Scorer()
    scorer(decode(batches[0]))
    decoding = scoring = 0.0
    for messages in batches[1:]:
        started = cpu()
        decoded = decode(messages)
        decoded_at = cpu()
        scorer(decoded)
        decoding += decoded_at - started
        scoring += cpu() - decoded_at
    return {
        "decode_cpu_ms_per_1000": decoding / count * 1e6,
        "score_cpu_ms_per_1000": scoring / count * 1e6,
        "transform_cpu_ms_per_1000": (decoding + scoring) / count * 1e6,
        "transform_tweets_per_cpu_s": count / (decoding + scoring),
    }


def main() -> None:
    """Measure and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    for name, value in measure(args.count, args.batch).items():
        print(f"{name:28} {value:10,.2f}")


if __name__ == "__main__":
    main()
