"""Sentiment analyzers: speed against vaderSentiment, and quality on two labelled data sets.

Run: ``.venv/bin/python benchmarks/sentiment.py [--json out.json]`` (numbers go to
docs/sentiment.md by hand). The speed measurement itself (``measure``) ships with the package
(``cryptosent.bench.sentiment``, the ``sentiment`` stage of ``cryptosent bench``); what stays
here needs the repository's labelled data.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

from cryptosent.analysis.sentiment import ANALYZERS, get_analyzer, label
from cryptosent.bench.sentiment import generated_tweets, measure

REPO_ROOT = Path(__file__).resolve().parents[1]
GROUND_TRUTH = REPO_ROOT.parent / "shared" / "data" / "vader_tweets_groundtruth.tsv"
CRYPTO_EVAL = REPO_ROOT / "tests" / "data" / "crypto_eval.tsv"
LABELS = ("negative", "neutral", "positive")


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


def load_ground_truth(path: Path = GROUND_TRUTH) -> list[tuple[float, str]]:
    """The 4,200 human-rated tweets as (mean rating on -4..4, text)."""
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):
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
    """Print the speed comparison and the quality table; --json writes the speed numbers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=50_000, help="how many tweets to time")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mock generator")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, best kept")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    texts = generated_tweets(args.texts, args.seed)
    result = measure(texts, rounds=args.rounds, python_paths=True)
    tweets = [text for _, text in load_ground_truth()]
    rated = measure(tweets, rounds=1)
    result["sentiment_groundtruth_vader_exact"] = rated["sentiment_vader_exact"]
    print(
        f"speed, {len(texts):,} generated tweets (MockGenerator(seed={args.seed})), "
        f"texts/s, best of {args.rounds} interleaved rounds, compiled core: "
        f"{result['sentiment_native']}"
    )
    base = result["sentiment_vadersentiment_per_s"]
    print(f"  vaderSentiment 3.3.2  {base:>10,.0f}")
    for name in ("vader", "crypto"):
        for variant, what in (
            ("", "scores(text) per text"),
            ("_batch", "scores_many(texts)"),
            ("_cold", "first round, empty cache"),
            ("_python", "pure-Python fallback"),
        ):
            rate = result[f"sentiment_{name}{variant}_per_s"]
            print(f"  {name:<7}{what:<26}{rate:>10,.0f}  x{rate / base:.2f}")
    print(
        f"  vader equals vaderSentiment on every text: {result['sentiment_vader_exact']} "
        f"(pure Python: {result['sentiment_vader_python_exact']}; "
        f"the {len(tweets):,} rated tweets: {result['sentiment_groundtruth_vader_exact']})"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print()
    print("| analyzer | tweets r | tweets macro-F1 | tweets acc | crypto macro-F1 | crypto acc |")
    print("|---|---|---|---|---|---|")
    for name, row in evaluate().items():
        print(
            f"| {name} | {row['tweets_r']:.4f} | {row['tweets_macro_f1']:.4f} "
            f"| {row['tweets_accuracy']:.4f} | {row['crypto_macro_f1']:.4f} "
            f"| {row['crypto_accuracy']:.4f} |"
        )


if __name__ == "__main__":
    main()
