"""The ``teacher`` analyzer: fine-tuned MiniLM + the two lexicons' scores, in numpy.

The encoder is all-MiniLM-L6-v2 (Apache-2.0) fine-tuned for 3-class crypto sentiment by
``cryptosent model train``; its weights are stored as int8 with one scale per row
(``models/teacher.safetensors``, hash pinned in ``models/manifest.json``). No torch at run time.
About 100-300 texts/s on one core: for ``cryptosent score`` and low-rate feeds, and for
labelling the corpus the student learns from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cryptosent.analysis.learned.encoder import Encoder
from cryptosent.analysis.learned.judgement import Judgement, scores_from_probs
from cryptosent.analysis.vader import Scores


def quantize(weights: dict[str, NDArray[np.float32]]) -> dict[str, NDArray[np.generic]]:
    """int8 rows with a float32 scale for every matrix; vectors stay float32."""
    out: dict[str, NDArray[np.generic]] = {}
    for name, w in weights.items():
        if w.ndim == 2 and w.shape[0] > 3 and "position_ids" not in name:
            scale = np.abs(w).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            out[name + ".q"] = np.round(w / scale[:, None]).clip(-127, 127).astype(np.int8)
            out[name + ".scale"] = scale.astype(np.float32)
        elif "position_ids" not in name:
            out[name] = w.astype(np.float32)
    return out


def dequantize(stored: dict[str, NDArray[np.generic]]) -> dict[str, NDArray[np.float32]]:
    """The inverse of :func:`quantize` (up to int8 rounding)."""
    out: dict[str, NDArray[np.float32]] = {}
    for name, w in stored.items():
        if name.endswith(".q"):
            base = name[:-2]
            scale = np.asarray(stored[base + ".scale"], dtype=np.float32)
            out[base] = np.asarray(w.astype(np.float32) * scale[:, None], dtype=np.float32)
        elif not name.endswith(".scale"):
            out[name] = w.astype(np.float32)
    return out


class TeacherModel:
    """Encoder + linear head over [sentence vector, VADER's 4 scores, crypto's 4 scores]."""

    def __init__(self, weights: dict[str, NDArray[np.float32]], tokenizer_json: Path) -> None:
        encoder_weights = {
            k.removeprefix("bert."): v for k, v in weights.items() if k.startswith("bert.")
        }
        self.encoder = Encoder(encoder_weights, tokenizer_json, max_tokens=128)
        self.head_w = weights["head.weight"].astype(np.float64)  # (3, hidden + 8)
        self.head_b = weights["head.bias"].astype(np.float64)
        self.temperature = float(weights["temperature"][0])

    @classmethod
    def load(cls, weights: Path, tokenizer_json: Path) -> TeacherModel:
        """Read the int8 teacher from its safetensors file."""
        from safetensors.numpy import load_file

        return cls(dequantize(load_file(str(weights))), tokenizer_json)

    def probs(self, texts: Sequence[str], lexicon: NDArray[np.float32]) -> NDArray[np.float64]:
        """Calibrated class probabilities (negative, neutral, positive), one row per text."""
        pooled = self.encoder.encode(texts).astype(np.float64)
        z = np.hstack([pooled, lexicon.astype(np.float64)]) @ self.head_w.T + self.head_b
        z = z / self.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]

    def judge_many(
        self, texts: Sequence[str], vader: Sequence[Scores], crypto: Sequence[Scores]
    ) -> list[Judgement]:
        """A judgement per text (the teacher explains nothing: its explanation is empty)."""
        lexicon = np.array([[*v, *c] for v, c in zip(vader, crypto, strict=True)], dtype=np.float32)
        lexicon = lexicon.reshape(len(texts), 8)
        out = []
        for row in self.probs(texts, lexicon):
            probs = (round(float(row[0]), 4), round(float(row[1]), 4), round(float(row[2]), 4))
            scores, name = scores_from_probs(*probs)
            out.append(Judgement(scores, name, probs))
        return out
