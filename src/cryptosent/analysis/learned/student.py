"""The ``learned`` analyzer: a linear model over hashed n-grams and the two lexicons' scores.

Distilled from the teacher (``teacher.py``): trained on the teacher's calibrated probabilities
over a large, varied corpus, mixed with the human labels. Weights: ``models/student.safetensors``
(hash pinned in ``models/manifest.json``). The compiled core computes the features and the
probabilities in one call per batch; the pure-Python path gives the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cryptosent.analysis.learned.features import BUCKETS, feature_strings, fnv1a
from cryptosent.analysis.learned.judgement import CLASSES, Judgement, scores_from_probs
from cryptosent.analysis.vader import Scores

DENSE = 15
EXPLAIN = 3
_READABLE = ("w|", "b|", "n|")


def dense_features(vader: Scores, crypto: Scores, text: str) -> list[float]:
    """The 15 lexicon features: each lexicon's compound, pos, neg, and its label one-hot; then
    whether the post speaks crypto (a cashtag, or a crypto-lexicon word that moved the score)
    and each lexicon's compound gated by it: VADER's where it does not, crypto's where it does.

    The gate lets a linear model trust VADER on general English (where VADER is good) without
    trusting it on crypto talk (where "crash", "short" and "killing it" mean other things).
    """
    out = [vader.compound, vader.pos, vader.neg, crypto.compound, crypto.pos, crypto.neg]
    for s in (vader, crypto):
        out += [
            float(s.compound <= -0.05),
            float(-0.05 < s.compound < 0.05),
            float(s.compound >= 0.05),
        ]
    cryptoish = float(abs(vader.compound - crypto.compound) > 1e-9 or "$" in text)
    out += [vader.compound * (1.0 - cryptoish), crypto.compound * cryptoish, cryptoish]
    return out


def readable(feature: str) -> str:
    """How an explanation shows a feature: ``w|moon`` -> ``moon``, ``n|lower`` -> ``not lower``."""
    kind, _, body = feature.partition("|")
    return "not " + body if kind == "n" else body


class StudentModel:
    """Weights of the student and a pure-Python scorer (the compiled core mirrors it)."""

    def __init__(
        self,
        hashed: NDArray[np.float32],
        dense: NDArray[np.float32],
        bias: NDArray[np.float32],
        temperature: float,
    ) -> None:
        if (
            hashed.shape != (BUCKETS, 3)
            or dense.ndim != 2
            or dense.shape[1] != 3
            or not 0 < dense.shape[0] <= DENSE
            or bias.shape != (3,)
        ):
            raise ValueError("student weights have the wrong shape")
        if not np.array_equal(hashed.astype(np.float16).astype(np.float32), hashed) or (
            np.abs(hashed).max(initial=0.0) >= 128.0
        ):
            raise ValueError("student weights must be float16 values below 128 (sums are exact)")
        self.hashed = np.ascontiguousarray(hashed, dtype=np.float32)
        self.dense = np.ascontiguousarray(dense, dtype=np.float32)
        self.bias = np.ascontiguousarray(bias, dtype=np.float32)
        self.temperature = float(temperature)

    def dense_features(self, vader: Scores, crypto: Scores, text: str) -> list[float]:
        """The lexicon features this model's weights were trained on (an older model knows
        only the first 12)."""
        return dense_features(vader, crypto, text)[: self.dense.shape[0]]

    @classmethod
    def load(cls, path: Path) -> StudentModel:
        """Read a student from its safetensors file."""
        from safetensors.numpy import load_file

        w = load_file(str(path))
        return cls(
            w["hashed"].astype(np.float32), w["dense"], w["bias"], float(w["temperature"][0])
        )

    def judge(self, text: str, vader: Scores, crypto: Scores, explain: bool = True) -> Judgement:
        """Probabilities, scores, label and explanation for one text (pure Python)."""
        features: dict[int, str] = {}
        for f in feature_strings(text):
            features.setdefault(fnv1a(f) % BUCKETS, f)
        scale = 1.0 / math.sqrt(len(features)) if features else 0.0
        logits = [float(self.bias[c]) for c in range(3)]
        rows = self.hashed[list(features)] if features else np.zeros((0, 3), np.float32)
        for c in range(3):
            # the exact sum, rounded once (the compiled core adds exact integers): no order
            logits[c] += math.fsum(rows[:, c].tolist()) * scale
        dense = self.dense_features(vader, crypto, text)
        for i, value in enumerate(dense):
            if value:
                for c in range(3):
                    logits[c] += value * float(self.dense[i, c])
        probs = softmax3(logits, self.temperature)
        scores, name = scores_from_probs(*probs)
        if not explain:
            return Judgement(scores, name, probs)
        chosen = CLASSES.index(name)
        ranked = []
        for index, feature in features.items():
            if feature.startswith(_READABLE):
                row = self.hashed[index]
                lift = float(row[chosen]) - (float(row[0]) + float(row[1]) + float(row[2])) / 3.0
                if lift > 0:
                    ranked.append((-lift, readable(feature)))
        ranked.sort()
        return Judgement(scores, name, probs, tuple(text for _, text in ranked[:EXPLAIN]))


def softmax3(logits: Sequence[float], temperature: float) -> tuple[float, float, float]:
    """Softmax of three logits divided by ``temperature``, each rounded to 4 decimals."""
    top = max(logits)
    exps = [math.exp((z - top) / temperature) for z in logits]
    total = sum(exps)
    return (round(exps[0] / total, 4), round(exps[1] / total, 4), round(exps[2] / total, 4))
