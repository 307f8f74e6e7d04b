"""Speed of the learned analyzers on 50,000 mock posts (docs/sentiment.md, "Speed").

The same figures as the ``sentiment`` stage of ``cryptosent bench`` (texts per CPU second of
one thread, so that other jobs on a shared machine do not count), then CPU microseconds a
text of the compiled student alone and of the processor's one compiled call per batch
(``score_columns``: VADER, the crypto lexicon and the student), on the mock posts and on the
labelled texts of ``datasets/``: ``.venv/bin/python benchmarks/learned_speed.py``.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from pathlib import Path

from cryptosent.bench.sentiment import generated_tweets, measure_learned

DATASETS = Path(__file__).resolve().parents[1] / "datasets"


def labelled_texts() -> list[str]:
    """The texts of every labelled set in ``datasets/``."""
    texts: list[str] = []
    for path in sorted(DATASETS.glob("*/*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        texts += [json.loads(line)["text"] for line in lines]
    return texts


def cpu_us_per_text(call: Callable[[], object], count: int, rounds: int = 15) -> float:
    """CPU microseconds a text of ``call`` (which handles ``count`` texts): its best round,
    with the garbage collector held off so that a collection does not land in one path only."""
    gc.collect()
    gc.disable()
    try:
        best = float("inf")
        for _ in range(rounds):
            start = time.process_time()
            call()
            best = min(best, time.process_time() - start)
    finally:
        gc.enable()
    return best / count * 1e6


def compiled_costs(texts: list[str]) -> dict[str, float]:
    """CPU us a text of the compiled student alone (``Student.judge_many`` without explanation,
    on texts whose lexicon features are ready) and of ``score_columns``; empty when the
    compiled core is not installed."""
    from cryptosent.analysis._native import CORE
    from cryptosent.analysis.learned.analyzers import LearnedAnalyzer
    from cryptosent.analysis.learned.languages import scorable
    from cryptosent.analysis.sentiment import get_analyzer, score_batch

    learned = LearnedAnalyzer()
    vader, crypto = get_analyzer("vader"), get_analyzer("crypto")
    student = learned.native
    engines = (getattr(vader, "native", None), getattr(crypto, "native", None), student)
    if CORE is None or student is None or None in engines:
        return {}
    lexicons = zip(score_batch(vader, texts), score_batch(crypto, texts), strict=True)
    items = [
        (t, t.lower(), learned.model.dense_features(v, c, t))
        for t, (v, c) in zip(texts, lexicons, strict=True)
    ]
    mask = bytes(scorable(t) for t in texts)
    return {
        "student core": cpu_us_per_text(lambda: student.judge_many(items, False), len(texts)),
        "score_columns": cpu_us_per_text(
            lambda: CORE.score_columns(*engines, texts, mask), len(texts)
        ),
    }


def main() -> None:
    """Print texts per CPU second of the student core, of ``learned`` and of ``teacher``, then
    CPU us a text of the compiled student and of ``score_columns``."""
    mock = generated_tweets(50_000, seed=42)
    figures = measure_learned(mock, rounds=3, teacher_texts=1000)
    for name, value in figures.items():
        print(f"{name}: {value:,.0f} texts/s")
    for label, texts in (("mock posts", mock), ("labelled texts", labelled_texts())):
        for name, value in compiled_costs(texts).items():
            print(f"{name}, {len(texts):,} {label}: {value:.2f} CPU us a text")


if __name__ == "__main__":
    main()
