"""Speed of the learned analyzers on 50,000 mock posts (docs/sentiment.md, "Speed").

Run on one core: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1
.venv/bin/python benchmarks/learned_speed.py``.
"""

from __future__ import annotations

import time

from cryptosent.analysis.sentiment import get_analyzer
from cryptosent.sources.mock import MockGenerator


def main() -> None:
    """Print texts/s of the student (alone and end to end) and of the teacher."""
    texts = [t.text for t in MockGenerator(seed=1).tweets(50_000)]
    learned = get_analyzer("learned")
    learned.judge_many(texts[:1000])  # type: ignore[attr-defined]
    start = time.perf_counter()
    learned.judge_many(texts)  # type: ignore[attr-defined]
    print(f"learned judge_many: {len(texts) / (time.perf_counter() - start):,.0f} texts/s")
    items = [(t, t.lower(), [0.0] * 12) for t in texts]
    start = time.perf_counter()
    learned.native.judge_many(items)  # type: ignore[attr-defined]
    rate = len(texts) / (time.perf_counter() - start)
    print(f"student in the compiled core: {rate:,.0f} texts/s")
    teacher = get_analyzer("teacher")
    teacher.judge_many(texts[:50])  # type: ignore[attr-defined]
    start = time.perf_counter()
    teacher.judge_many(texts[:1000])  # type: ignore[attr-defined]
    print(f"teacher: {1000 / (time.perf_counter() - start):,.0f} texts/s")


if __name__ == "__main__":
    main()
