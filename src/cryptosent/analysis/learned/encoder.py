"""A BERT-style sentence encoder (MiniLM) as a numpy forward pass: no torch at run time.

Weights come from a safetensors file and the word-piece tokenizer from a ``tokenizer.json``
(the Hugging Face ``tokenizers`` format). The output of :meth:`Encoder.encode` is one row per
text: the mean of the last hidden layer over real tokens, as sentence-transformers pools it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float32]


@dataclass(frozen=True)
class _Layer:
    qkv_w: Matrix  # (hidden, 3*hidden): query, key and value projections side by side
    qkv_b: Matrix
    out_w: Matrix
    out_b: Matrix
    ln1_g: Matrix
    ln1_b: Matrix
    up_w: Matrix
    up_b: Matrix
    down_w: Matrix
    down_b: Matrix
    ln2_g: Matrix
    ln2_b: Matrix


def _layer_norm(x: Matrix, gain: Matrix, bias: Matrix, eps: float = 1e-12) -> Matrix:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return np.asarray(centred / np.sqrt(var + eps) * gain + bias, dtype=np.float32)


def _erf(x: Matrix) -> Matrix:
    # Abramowitz & Stegun 7.1.26 (error below 1.5e-7): numpy has no erf, and BERT's GELU is erf's
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)), dtype=np.float32)


def _gelu(x: Matrix) -> Matrix:
    return np.asarray(0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476))), dtype=np.float32)


HEAD_TOKENS = 32


def token_ids(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
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


class Encoder:
    """MiniLM/BERT encoder: token ids in, mean-pooled sentence vectors out."""

    def __init__(
        self,
        weights: Mapping[str, NDArray[np.generic]],
        tokenizer_json: Path,
        *,
        heads: int = 12,
        max_tokens: int = 128,
    ) -> None:
        from tokenizers import Tokenizer

        def get(name: str) -> Matrix:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        self.heads = heads
        self.max_tokens = max_tokens
        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers: list[_Layer] = []
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in weights:
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate(
                [get(p + f"attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1
            )
            qkv_b = np.concatenate(
                [get(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")]
            )
            self.layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(qkv_w),
                    qkv_b=qkv_b,
                    out_w=np.ascontiguousarray(get(p + "attention.output.dense.weight").T),
                    out_b=get(p + "attention.output.dense.bias"),
                    ln1_g=get(p + "attention.output.LayerNorm.weight"),
                    ln1_b=get(p + "attention.output.LayerNorm.bias"),
                    up_w=np.ascontiguousarray(get(p + "intermediate.dense.weight").T),
                    up_b=get(p + "intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(get(p + "output.dense.weight").T),
                    down_b=get(p + "output.dense.bias"),
                    ln2_g=get(p + "output.LayerNorm.weight"),
                    ln2_b=get(p + "output.LayerNorm.bias"),
                )
            )
            i += 1
        self.hidden = self.word.shape[1]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Matrix:
        """Mean-pooled last-layer vectors, one row per text, in order."""
        ids = token_ids(self.tokenizer, texts, self.max_tokens)
        out = np.zeros((len(ids), self.hidden), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda k: len(ids[k]))  # similar lengths pad less
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._forward([ids[k] for k in chunk])
        return out

    def _forward(self, ids: list[list[int]]) -> Matrix:
        batch, length = len(ids), max(len(x) for x in ids)
        tokens = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.float32)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self.word[tokens] + self.position[:length] + self.token_type
        x = _layer_norm(x.astype(np.float32), *self.emb_ln).reshape(batch * length, self.hidden)
        heads, size = self.heads, self.hidden // self.heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(size))
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            qkv = qkv.reshape(batch, length, 3, heads, size).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
            x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_g, layer.ln1_b)
            up = _gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_g, layer.ln2_b)
        hidden = x.reshape(batch, length, self.hidden)
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        return np.asarray(summed / np.maximum(mask.sum(axis=1, keepdims=True), 1.0), np.float32)


def load_encoder(weights: Path, tokenizer_json: Path, max_tokens: int = 128) -> Encoder:
    """Build an :class:`Encoder` from a safetensors file and a tokenizer.json."""
    from safetensors.numpy import load_file

    return Encoder(load_file(str(weights)), tokenizer_json, max_tokens=max_tokens)
