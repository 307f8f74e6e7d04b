"""The ``teacher`` analyzer: fine-tuned MiniLM + the two lexicons' scores, on ONNX Runtime.

The encoder is all-MiniLM-L6-v2 (Apache-2.0) fine-tuned for 3-class crypto sentiment by
``cryptosent model train``, exported with its head to ONNX and quantized to int8 (weights per
block of 32, the word embeddings float16): ``models/teacher.onnx``, hash pinned in
``models/manifest.json``. No torch at run time. About 200-300 texts a second on one core: for
``cryptosent score`` and low-rate feeds, and for labelling the corpus the student learns from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cryptosent.analysis.learned.judgement import Judgement, scores_from_probs
from cryptosent.analysis.vader import Scores

MAX_TOKENS = 128
HEAD_TOKENS = 32
BATCH = 32


def token_ids(
    tokenizer: Any, texts: Sequence[str], max_tokens: int = MAX_TOKENS
) -> list[list[int]]:
    """Word-piece ids with [CLS]/[SEP]; a long text keeps its first 32 and its last pieces.

    The end of a long post is kept because that is where authors state where they land.
    Training and inference both use this function, so they see the same ids.
    """
    out = []
    # the tokenizer takes only valid Unicode: a lone surrogate becomes '?'
    clean = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
    for enc in tokenizer.encode_batch(clean):
        ids = enc.ids
        if len(ids) > max_tokens:
            body = ids[1:-1]
            tail = max_tokens - 2 - HEAD_TOKENS
            ids = [ids[0], *body[:HEAD_TOKENS], *body[-tail:], ids[-1]]
        out.append(list(ids))
    return out


def padded(ids: Sequence[Sequence[int]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Token ids and attention mask of a batch, right-padded with zeros."""
    length = max(len(x) for x in ids)
    tokens = np.zeros((len(ids), length), dtype=np.int64)
    mask = np.zeros((len(ids), length), dtype=np.int64)
    for row, seq in enumerate(ids):
        tokens[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return tokens, mask


class TeacherModel:
    """The ONNX graph: (input_ids, attention_mask, lexicon[8]) -> calibrated probabilities.

    Inside: MiniLM, mean pooling over the real tokens, a linear head over [sentence vector,
    VADER's (compound, pos, neu, neg), crypto's four], softmax of the logits over the fitted
    temperature.
    """

    def __init__(self, onnx_path: Path, tokenizer_json: Path, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (all cores)
        options.log_severity_level = 3
        # idle worker threads sleep instead of spinning: the CPU stays with the pipeline
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def probs(self, texts: Sequence[str], lexicon: NDArray[np.float32]) -> NDArray[np.float64]:
        """Calibrated class probabilities (negative, neutral, positive), one row per text."""
        ids = token_ids(self.tokenizer, texts)
        out = np.zeros((len(ids), 3), dtype=np.float64)
        # batches of texts with the same number of tokens: nothing is padded, so a text's
        # probabilities are the same whichever texts share its batch
        by_length: dict[int, list[int]] = {}
        for k, seq in enumerate(ids):
            by_length.setdefault(len(seq), []).append(k)
        chunks = [
            rows[start : start + BATCH]
            for _, rows in sorted(by_length.items())
            for start in range(0, len(rows), BATCH)
        ]
        for chunk in chunks:
            tokens, mask = padded([ids[k] for k in chunk])
            feeds = {
                "input_ids": tokens,
                "attention_mask": mask,
                "lexicon": np.ascontiguousarray(lexicon[chunk], dtype=np.float32),
            }
            out[chunk] = self.session.run(None, feeds)[0]
        return out

    def judge_many(
        self, texts: Sequence[str], vader: Sequence[Scores], crypto: Sequence[Scores]
    ) -> list[Judgement]:
        """A judgement per text (the teacher explains nothing: its explanation is empty)."""
        lexicon = np.array([[*v, *c] for v, c in zip(vader, crypto, strict=True)], dtype=np.float32)
        lexicon = lexicon.reshape(len(texts), 8)
        out = []
        for row in self.probs(texts, lexicon) if len(texts) else []:
            probs = (round(float(row[0]), 4), round(float(row[1]), 4), round(float(row[2]), 4))
            scores, name = scores_from_probs(*probs)
            out.append(Judgement(scores, name, probs))
        return out
