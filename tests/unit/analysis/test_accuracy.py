"""Accuracy that CI guards: the shipped models on the frozen splits, against the documented figures.

The figures live in src/cryptosent/models/evaluation.json (written by
``python -m cryptosent.training.evaluate --write``, quoted in docs/sentiment.md); a drop of
more than 0.01 fails. The frozen files themselves are pinned by hash: no one tunes on them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cryptosent.analysis.learned.analyzers import models_dir
from cryptosent.training.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[3]
FROZEN = {
    "datasets/sentiment/test_frozen.jsonl": (
        "8bddf2e75b8b6877a93af4e271af09115c296e3c51c46aa7a6bdd6af49c552a1"
    ),
    # a second sealed set, written by another annotator after the models' first version
    "datasets/sentiment/holdout_b.jsonl": (
        "0bcb52954e4e24cb8b015b0dac957b072356d71de629527a00882d055eaf42cd"
    ),
    "datasets/coins/test_frozen.jsonl": (
        "f7337d9083d2cf942fc6a6b9d784fba6e3640a5ed98818e432d215456b1f789d"
    ),
}
TOLERANCE = 0.01


@pytest.mark.parametrize("path", sorted(FROZEN))
def test_frozen_splits_never_change(path: str) -> None:
    assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == FROZEN[path]


def test_learned_accuracy_holds_on_frozen_split_and_rated_tweets() -> None:
    documented = json.loads((models_dir() / "evaluation.json").read_text(encoding="utf-8"))
    measured = evaluate(["learned"])["learned"]
    for set_name in ("crypto_frozen", "crypto_holdout_b", "tweets_frozen", "tweets_all"):
        floor = documented["learned"][set_name]["macro_f1"] - TOLERANCE
        assert measured[set_name]["macro_f1"] >= floor, (set_name, measured[set_name]["macro_f1"])


def test_teacher_accuracy_holds_on_frozen_split() -> None:
    documented = json.loads((models_dir() / "evaluation.json").read_text(encoding="utf-8"))
    measured = evaluate(["teacher"], ["crypto_frozen"])["teacher"]
    floor = documented["teacher"]["crypto_frozen"]["macro_f1"] - TOLERANCE
    assert measured["crypto_frozen"]["macro_f1"] >= floor
