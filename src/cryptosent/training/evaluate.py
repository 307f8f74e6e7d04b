"""``python -m cryptosent.training.evaluate``: every analyzer on the frozen splits.

Prints macro-F1 and accuracy on the frozen crypto split (overall, per kind, per language), on
the frozen fifth of the 4,200 rated tweets, on all 4,200 (of which the learned models saw 80 %
in training), and on the project's older 180-post set; ``--write`` stores the figures in
``models/evaluation.json``, which the accuracy test in CI compares against.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptosent.training.data import Example, crypto_examples, rated_tweets, repo_root
from cryptosent.training.pipeline import report

ANALYZER_NAMES = ("learned", "teacher", "crypto", "vader")


def predict(name: str, texts: Sequence[str]) -> list[str]:
    """Labels of one analyzer (``unscored`` for posts the learned models do not score)."""
    from cryptosent.analysis.sentiment import get_analyzer, label

    analyzer = get_analyzer(name)
    judge = getattr(analyzer, "judge_many", None)
    if judge is not None:
        return [j.label for j in judge(list(texts))]
    return [label(s.compound) for s in analyzer.scores_many(list(texts))]  # type: ignore[attr-defined]


def older_crypto_set(root: Path) -> list[Example]:
    """tests/data/crypto_eval.tsv: the 180 posts written together with the crypto lexicon."""
    rows: list[Example] = []
    for line in (
        (root / "tests" / "data" / "crypto_eval.tsv").read_text(encoding="utf-8").splitlines()
    ):
        if line and not line.startswith("#") and line != "text\tlabel":
            text, gold = line.split("\t")
            rows.append(Example(text, gold, "crypto_eval", "en", "crypto_eval", str(len(rows))))
    return rows


def evaluate(
    names: Sequence[str] = ANALYZER_NAMES, set_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The figures of each analyzer on each evaluation set (or only ``set_names``)."""
    root = repo_root()
    sets = {
        "crypto_frozen": crypto_examples(root, "frozen"),
        "crypto_holdout_b": crypto_examples(root, "holdout_b"),
        "tweets_frozen": rated_tweets(root, "frozen"),
        "tweets_all": rated_tweets(root, "all"),
        "crypto_eval_180": older_crypto_set(root),
    }
    out: dict[str, Any] = {}
    for name in names:
        out[name] = {}
        for set_name, examples in sets.items():
            if set_names is not None and set_name not in set_names:
                continue
            start = time.perf_counter()
            predicted = predict(name, [ex.text for ex in examples])
            out[name][set_name] = report(name, examples, predicted)
            out[name][set_name]["seconds"] = round(time.perf_counter() - start, 2)
    return out


def main() -> None:
    """Print the tables; ``--write`` updates models/evaluation.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--analyzers", default=",".join(ANALYZER_NAMES))
    args = parser.parse_args()
    figures = evaluate(args.analyzers.split(","))
    print("| analyzer | set | n | macro-F1 | accuracy |")
    print("|---|---|---|---|---|")
    for name, sets in figures.items():
        for set_name, row in sets.items():
            print(
                f"| {name} | {set_name} | {row['n']} "
                f"| {row['macro_f1']:.4f} | {row['accuracy']:.4f} |"
            )
    for name, sets in figures.items():
        frozen = sets["crypto_frozen"]
        print(f"\n{name}, frozen crypto split by kind / by language:")
        for group in ("by_kind", "by_lang"):
            for key, row in frozen.get(group, {}).items():
                print(
                    f"  {key:<18} n={row['n']:<4} macro-F1 {row['macro_f1']:.4f}  "
                    f"accuracy {row['accuracy']:.4f}"
                )
    if args.write:
        from cryptosent.analysis.learned.analyzers import models_dir

        path = models_dir() / "evaluation.json"
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
