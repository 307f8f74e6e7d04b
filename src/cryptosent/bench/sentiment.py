"""Sentiment speed: our analyzers against vaderSentiment on the same texts, and exactness.

`measure(texts)` is the `sentiment` stage of `cryptosent bench`; the quality evaluation on
labelled data sets, which needs the repository's data files, is `benchmarks/sentiment.py`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from cryptosent.analysis.sentiment import CryptoAnalyzer, Scores, VaderAnalyzer


def _run_rounds(
    scorers: dict[str, Callable[[list[str]], list[Any]]], texts: list[str], rounds: int
) -> tuple[dict[str, float], dict[str, float], dict[str, list[Any]]]:
    # The machine is shared: the scorers take turns, round after round, and each keeps its
    # fastest round, so a burst of load elsewhere cannot favour one of them. The first round
    # is also kept apart (fresh analyzers: every token is new to their caches) with its output.
    best = dict.fromkeys(scorers, math.inf)
    first: dict[str, float] = {}
    outputs: dict[str, list[Any]] = {}
    for round_ in range(rounds):
        for name, score in scorers.items():
            start = time.perf_counter()
            result = score(texts)
            seconds = time.perf_counter() - start
            best[name] = min(best[name], seconds)
            if round_ == 0:
                first[name] = seconds
                outputs[name] = result
    per_s = {name: len(texts) / seconds for name, seconds in best.items()}
    cold = {name: len(texts) / seconds for name, seconds in first.items()}
    return per_s, cold, outputs


def _one_by_one(score: Callable[[str], Any]) -> Callable[[list[str]], list[Any]]:
    return lambda texts: [score(text) for text in texts]


def measure(texts: list[str], rounds: int = 3, python_paths: bool = False) -> dict[str, Any]:
    """Texts/s of vaderSentiment, our ``vader`` and our ``crypto`` on ``texts``, and exactness.

    Each is called once per text (as the processor does); ``*_batch_per_s`` is one
    ``scores_many`` call for all texts. Rates are the best of ``rounds`` interleaved rounds;
    ``*_cold_per_s`` is the first round of fresh analyzers (empty token caches).
    ``sentiment_vader_exact``: our ``vader`` equals vaderSentiment on every text.
    ``python_paths`` also times the pure-Python fallback.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    reference = SentimentIntensityAnalyzer()
    vader, crypto = VaderAnalyzer(), CryptoAnalyzer()
    vader_batch, crypto_batch = VaderAnalyzer(), CryptoAnalyzer()
    scorers = {
        "vadersentiment": _one_by_one(reference.polarity_scores),
        "vader": _one_by_one(vader.scores),
        "crypto": _one_by_one(crypto.scores),
        "vader_batch": vader_batch.scores_many,
        "crypto_batch": crypto_batch.scores_many,
    }
    if python_paths:
        scorers["vader_python"] = _one_by_one(VaderAnalyzer(native=False).scores)
        scorers["crypto_python"] = _one_by_one(CryptoAnalyzer(native=False).scores)
    per_s, cold, outputs = _run_rounds(scorers, texts, rounds)
    expected = [
        Scores(e["compound"], e["pos"], e["neu"], e["neg"]) for e in outputs["vadersentiment"]
    ]
    result: dict[str, Any] = {
        "sentiment_texts": len(texts),
        "sentiment_native": vader.native is not None and crypto.native is not None,
    }
    result.update({f"sentiment_{name}_per_s": rate for name, rate in per_s.items()})
    for name in ("vader", "crypto"):
        result[f"sentiment_{name}_cold_per_s"] = cold[name]
    result["sentiment_vader_exact"] = outputs["vader"] == expected == outputs["vader_batch"]
    if python_paths:
        result["sentiment_vader_python_exact"] = outputs["vader_python"] == expected
    result.update(measure_learned(texts, rounds))
    base = per_s["vadersentiment"]
    result["sentiment_speedup_vs_vadersentiment"] = per_s["vader"] / base
    result["sentiment_crypto_speedup_vs_vadersentiment"] = per_s["crypto"] / base
    return result


def measure_learned(texts: list[str], rounds: int = 3, teacher_texts: int = 600) -> dict[str, Any]:
    """Texts/s per core of the learned analyzers, measured in CPU seconds of this process (the
    machine is shared: wall time would count other jobs' turns; each path runs on one thread).

    ``sentiment_student_core_per_s``: the compiled student alone (features, linear model,
    probabilities; no explanation, as the processor calls it) on texts whose lexicon features
    are ready; ``sentiment_learned_per_s``: ``learned.judge_many`` end to end (language gate,
    both lexicons, student, Python objects); ``sentiment_teacher_per_s``: the transformer,
    batched, on the first ``teacher_texts`` texts.
    """
    from cryptosent.analysis.learned.analyzers import LearnedAnalyzer, TeacherAnalyzer
    from cryptosent.analysis.sentiment import get_analyzer, score_batch

    learned = LearnedAnalyzer()
    result: dict[str, Any] = {}
    native = getattr(learned, "native", None)
    if native is not None:
        vader = score_batch(get_analyzer("vader"), texts)
        crypto = score_batch(get_analyzer("crypto"), texts)
        items = [
            (t, t.lower(), learned.model.dense_features(v, c, t))
            for t, v, c in zip(texts, vader, crypto, strict=True)
        ]
        result["sentiment_student_core_per_s"] = _cpu_rate(
            lambda: native.judge_many(items, False), len(texts), rounds
        )
    result["sentiment_learned_per_s"] = _cpu_rate(
        lambda: learned.judge_many(texts, explain=False),
        len(texts),
        rounds,
    )
    teacher = TeacherAnalyzer(threads=1)
    sample = texts[:teacher_texts]
    teacher.judge_many(sample[:32])
    result["sentiment_teacher_per_s"] = _cpu_rate(
        lambda: teacher.judge_many(sample),
        len(sample),
        1,
    )
    return result


def _cpu_rate(call: Callable[[], object], count: int, rounds: int) -> float:
    """Items per CPU second of this process: the best of ``rounds`` calls."""
    best = math.inf
    for _ in range(rounds):
        start = time.process_time()
        call()
        best = min(best, time.process_time() - start)
    return count / best if best > 0 else math.inf


def generated_tweets(count: int, seed: int = 1) -> list[str]:
    """The texts of ``count`` tweets from the mock generator (what the pipeline scores)."""
    from cryptosent.sources.mock import MockGenerator

    return [tweet.text for tweet in MockGenerator(seed=seed).tweets(count)]
