"""Sentiment analyzers: speed against vaderSentiment, and quality on two labelled data sets.

Run: ``.venv/bin/python benchmarks/sentiment.py`` (numbers go to docs/sentiment.md by hand).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptosent.analysis.sentiment import (
    ANALYZERS,
    CryptoAnalyzer,
    Scores,
    VaderAnalyzer,
    get_analyzer,
    label,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
GROUND_TRUTH = REPO_ROOT.parent / "shared" / "data" / "vader_tweets_groundtruth.tsv"
CRYPTO_EVAL = REPO_ROOT / "tests" / "data" / "crypto_eval.tsv"
LABELS = ("negative", "neutral", "positive")
VADER_CHECK = VaderAnalyzer()


def _rates(
    scorers: dict[str, Callable[[str], Any]], texts: Sequence[str], rounds: int
) -> dict[str, float]:
    # The machine is shared: the scorers take turns, round after round, and each keeps its
    # fastest round, so a burst of load elsewhere cannot favour one of them.
    best = dict.fromkeys(scorers, math.inf)
    for _ in range(rounds):
        for name, score in scorers.items():
            start = time.perf_counter()
            for text in texts:
                score(text)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(texts) / seconds for name, seconds in best.items()}


def measure(texts: list[str], rounds: int = 3) -> dict[str, Any]:
    """Texts/s of vaderSentiment, our ``vader`` and our ``crypto`` on ``texts``, and exactness.

    Our analyzers are built fresh, so their first round starts with an empty token cache.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    reference = SentimentIntensityAnalyzer()
    exact = all(
        VADER_CHECK.scores(text) == Scores(e["compound"], e["pos"], e["neu"], e["neg"])
        for text in texts
        for e in (reference.polarity_scores(text),)
    )
    rates = _rates(
        {
            "vaderSentiment": reference.polarity_scores,
            "vader": VaderAnalyzer().scores,
            "crypto": CryptoAnalyzer().scores,
        },
        texts,
        rounds,
    )
    result: dict[str, Any] = {"texts": len(texts)}
    result.update({f"{name}_per_s": rate for name, rate in rates.items()})
    result["exact"] = exact
    result["vader_speedup"] = rates["vader"] / rates["vaderSentiment"]
    result["crypto_speedup"] = rates["crypto"] / rates["vaderSentiment"]
    return result


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation of two equally long series."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return cov / math.sqrt(sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean of the per-class F1 over negative, neutral and positive."""
    total = 0.0
    for cls in LABELS:
        tp = sum(g == cls and p == cls for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != cls and p == cls for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == cls and p != cls for g, p in zip(gold, predicted, strict=True))
        total += 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return total / len(LABELS)


def load_ground_truth() -> list[tuple[float, str]]:
    """The 4,200 human-rated tweets as (mean rating on -4..4, text)."""
    rows = []
    for line in GROUND_TRUTH.read_text(encoding="utf-8").split("\n"):
        _, mean, text = line.split("\t", 2)
        rows.append((float(mean), text))
    return rows


def load_crypto_eval() -> list[tuple[str, str]]:
    """The hand-labelled crypto posts as (text, label)."""
    rows = []
    for line in CRYPTO_EVAL.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and line != "text\tlabel":
            text, gold = line.split("\t")
            rows.append((text, gold))
    return rows


def evaluate() -> dict[str, dict[str, float]]:
    """Correlation and macro-F1 of each analyzer on the tweets, macro-F1 on the crypto set."""
    tweets = load_ground_truth()
    means = [mean for mean, _ in tweets]
    # Gold labels: the human mean scaled to -1..1 (MEAN/4), cut at VADER's own +-0.05.
    tweet_gold = [label(mean / 4) for mean in means]
    crypto_rows = load_crypto_eval()
    crypto_gold = [gold for _, gold in crypto_rows]
    table: dict[str, dict[str, float]] = {}
    for name in ANALYZERS:
        analyzer = get_analyzer(name)
        compounds = [analyzer.scores(text).compound for _, text in tweets]
        predicted = [label(analyzer.scores(text).compound) for text, _ in crypto_rows]
        table[name] = {
            "tweets_r": pearson(compounds, means),
            "tweets_macro_f1": macro_f1(tweet_gold, [label(c) for c in compounds]),
            "tweets_accuracy": sum(
                g == label(c) for g, c in zip(tweet_gold, compounds, strict=True)
            )
            / len(tweets),
            "crypto_macro_f1": macro_f1(crypto_gold, predicted),
            "crypto_accuracy": sum(g == p for g, p in zip(crypto_gold, predicted, strict=True))
            / len(crypto_rows),
        }
    return table


def main() -> None:
    """Print the speed comparison and the quality table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=50_000, help="how many texts to time")
    args = parser.parse_args()
    tweets = [text for _, text in load_ground_truth()]
    cold = measure(tweets, rounds=1)
    texts = (tweets * (args.texts // len(tweets) + 1))[: args.texts]
    warm = measure(texts)
    print(f"speed, {cold['texts']} unique tweets, fresh analyzers (cold token cache):")
    print(_speed_line(cold))
    print(f"speed, the tweets repeated to {warm['texts']} texts (best of 3 interleaved rounds):")
    print(_speed_line(warm))
    print()
    print("| analyzer | tweets r | tweets macro-F1 | tweets acc | crypto macro-F1 | crypto acc |")
    print("|---|---|---|---|---|---|")
    for name, row in evaluate().items():
        print(
            f"| {name} | {row['tweets_r']:.4f} | {row['tweets_macro_f1']:.4f} "
            f"| {row['tweets_accuracy']:.4f} | {row['crypto_macro_f1']:.4f} "
            f"| {row['crypto_accuracy']:.4f} |"
        )


def _speed_line(result: dict[str, Any]) -> str:
    return (
        f"  vaderSentiment {result['vaderSentiment_per_s']:>9,.0f}/s   "
        f"vader {result['vader_per_s']:>9,.0f}/s (x{result['vader_speedup']:.2f})   "
        f"crypto {result['crypto_per_s']:>9,.0f}/s (x{result['crypto_speedup']:.2f})   "
        f"exact={result['exact']}"
    )


if __name__ == "__main__":
    main()
