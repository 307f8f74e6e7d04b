"""Fine-tune the teacher: MiniLM (all-MiniLM-L6-v2 from a pinned PyPI package) + lexicon scores.

The head reads the mean-pooled sentence vector beside VADER's and the crypto lexicon's four
scores each, so the model starts from what the lexicons know and learns where they are wrong.
Seeded and single-threaded-deterministic on CPU; needs the ``train`` extra (torch, transformers).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cryptosent.analysis.learned.teacher import token_ids
from cryptosent.training.data import LABEL_INDEX, Example

log = logging.getLogger("cryptosent.training")
MAX_TOKENS = 128


def lexicon_features(texts: Sequence[str]) -> NDArray[np.float32]:
    """VADER's and the crypto lexicon's (compound, pos, neu, neg) for each text."""
    from cryptosent.analysis.sentiment import get_analyzer, score_batch

    vader = score_batch(get_analyzer("vader"), texts)
    crypto = score_batch(get_analyzer("crypto"), texts)
    return np.array([[*v, *c] for v, c in zip(vader, crypto, strict=True)], dtype=np.float32)


def train_teacher(
    base: Path,
    train: list[tuple[Example, float]],
    dev: list[Example],
    *,
    epochs: int = 3,
    seed: int = 0,
    batch_size: int = 32,
    progress: Callable[[str], None] = print,
) -> tuple[dict[str, NDArray[np.float32]], float, float]:
    """Fine-tune on weighted examples; return (weights by name, temperature, dev macro-F1)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    bert = BertModel.from_pretrained(str(base), add_pooling_layer=False)

    class Teacher(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert
            self.drop = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(bert.config.hidden_size + 8, 3)

        def forward(self, ids: Any, mask: Any, lex: Any) -> Any:
            hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.head(torch.cat([self.drop(pooled), lex], dim=1))

    model = Teacher()
    texts = [ex.text for ex, _ in train]
    ids = token_ids(tokenizer, texts, MAX_TOKENS)
    lex = lexicon_features(texts)
    labels = np.array([LABEL_INDEX[ex.label] for ex, _ in train])
    weights = np.array([w for _, w in train], dtype=np.float32)
    dev_ids = token_ids(tokenizer, [ex.text for ex in dev], MAX_TOKENS)
    dev_lex = lexicon_features([ex.text for ex in dev])
    dev_y = np.array([LABEL_INDEX[ex.label] for ex in dev])

    def batch(
        rows: list[int], all_ids: list[list[int]], all_lex: NDArray[np.float32]
    ) -> tuple[Any, Any, Any]:
        length = max(len(all_ids[r]) for r in rows)
        t = torch.zeros((len(rows), length), dtype=torch.long)
        m = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):
            t[i, : len(all_ids[r])] = torch.tensor(all_ids[r])
            m[i, : len(all_ids[r])] = 1
        return t, m, torch.from_numpy(all_lex[rows])

    def dev_logits() -> NDArray[np.float32]:
        model.eval()
        out = np.zeros((len(dev), 3), dtype=np.float32)
        order = sorted(range(len(dev)), key=lambda r: len(dev_ids[r]))
        with torch.no_grad():
            for s in range(0, len(order), 64):
                rows = order[s : s + 64]
                out[rows] = model(*batch(rows, dev_ids, dev_lex)).numpy()
        model.train()
        return out

    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    encoder_params = [p for n, p in model.named_parameters() if n.startswith("bert.")]
    head_params = [p for n, p in model.named_parameters() if not n.startswith("bert.")]
    opt = torch.optim.AdamW(
        [{"params": encoder_params, "lr": 5e-5}, {"params": head_params, "lr": 2e-3}],
        weight_decay=0.01,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / (0.06 * steps)) * max(0.0, (steps - step) / steps)
    )
    best: tuple[float, dict[str, Any], NDArray[np.float32]] | None = None
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    step = 0
    for epoch in range(epochs):
        # batches of similar length, in a seeded random order
        order = rng.permutation(len(train))
        batches: list[list[int]] = []
        for s in range(0, len(order), batch_size * 50):
            chunk = sorted(
                (int(r) for r in order[s : s + batch_size * 50]), key=lambda r: len(ids[r])
            )
            batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        batches = [batches[k] for k in rng.permutation(len(batches))]
        for rows in batches:
            t, m, lx = batch(rows, ids, lex)
            logits = model(t, m, lx)
            loss_each = torch.nn.functional.cross_entropy(
                logits, torch.from_numpy(labels[rows]), reduction="none"
            )
            w = torch.from_numpy(weights[rows])
            loss = (loss_each * w).sum() / w.sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 20 == 0:
                progress(
                    f"epoch {epoch + 1}/{epochs} step {step}/{steps} loss {loss.item():.3f} "
                    f"{time.monotonic() - start:.0f}s"
                )
        logits = dev_logits()
        f1 = macro_f1(dev_y, logits.argmax(1))
        progress(f"epoch {epoch + 1}: dev macro-F1 {f1:.4f}")
        if best is None or f1 > best[0]:
            best = (f1, {k: v.detach().clone() for k, v in model.state_dict().items()}, logits)
    assert best is not None
    f1, state, logits = best
    temperature = fit_temperature(logits, dev_y)
    weights_out = {k: v.numpy().astype(np.float32) for k, v in state.items()}
    return weights_out, temperature, f1


def macro_f1(gold: NDArray[Any], pred: NDArray[Any]) -> float:
    """Unweighted mean of per-class F1 over the three classes."""
    total = 0.0
    for c in range(3):
        tp = int(((gold == c) & (pred == c)).sum())
        fp = int(((gold != c) & (pred == c)).sum())
        fn = int(((gold == c) & (pred != c)).sum())
        total += 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return total / 3


def fit_temperature(logits: NDArray[np.float32], gold: NDArray[Any]) -> float:
    """The temperature that minimises the dev set's negative log-likelihood (calibration)."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.arange(0.5, 4.01, 0.05):
        z = logits / t
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        nll = -float(logp[np.arange(len(gold)), gold].mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return round(best_t, 2)


def torch_probs(
    base: Path,
    weights: dict[str, NDArray[np.float32]],
    temperature: float,
    texts: Sequence[str],
    progress: Callable[[str], None] = print,
) -> NDArray[np.float64]:
    """The teacher's calibrated probabilities computed with torch (faster than numpy for the
    tens of thousands of texts the student learns from). Same weights as the shipped model
    before int8 rounding."""
    import torch
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel

    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    bert = BertModel(BertConfig.from_pretrained(str(base)), add_pooling_layer=False)
    bert.load_state_dict(
        {
            k.removeprefix("bert."): torch.from_numpy(v)
            for k, v in weights.items()
            if k.startswith("bert.")
        },
        strict=False,
    )
    bert.eval()
    head_w = torch.from_numpy(weights["head.weight"])
    head_b = torch.from_numpy(weights["head.bias"])
    ids = token_ids(tokenizer, texts, MAX_TOKENS)
    lex = torch.from_numpy(lexicon_features(texts))
    out = np.zeros((len(texts), 3))
    order = sorted(range(len(texts)), key=lambda r: len(ids[r]))
    with torch.no_grad():
        for s in range(0, len(order), 64):
            rows = order[s : s + 64]
            length = max(len(ids[r]) for r in rows)
            t = torch.zeros((len(rows), length), dtype=torch.long)
            m = torch.zeros((len(rows), length), dtype=torch.long)
            for i, r in enumerate(rows):
                t[i, : len(ids[r])] = torch.tensor(ids[r])
                m[i, : len(ids[r])] = 1
            hidden = bert(input_ids=t, attention_mask=m).last_hidden_state
            mf = m.unsqueeze(-1).float()
            pooled = (hidden * mf).sum(1) / mf.sum(1).clamp(min=1.0)
            logits = torch.cat([pooled, lex[rows]], dim=1) @ head_w.T + head_b
            out[rows] = torch.softmax(logits / temperature, dim=1).numpy()
            if (s // 64) % 40 == 0:
                progress(f"teacher labels {min(s + 64, len(texts))}/{len(texts)}")
    return out


CALIBRATION_TOKENS = 64  # calibration inputs are padded to one length: histograms need one shape
# chosen on dev, teacher of 2026-11-29 (99.9: 0.752, 99.99: 0.752, 99.999: 0.780; float 0.798)
CALIBRATION_PERCENTILE = 99.999


def export_onnx(
    base: Path,
    weights: dict[str, NDArray[np.float32]],
    temperature: float,
    out: Path,
    work: Path,
    calibration: Sequence[str],
) -> None:
    """Write the shipped teacher: MiniLM + pooling + head + softmax(z / T) as ONNX.

    torch exports the float graph (opset 17, dynamic batch and length) into ``work``; then
    every weight MatMul is quantized statically to 8 bits (weights int8 per output channel,
    activations uint8 with a fixed range per tensor calibrated on ``calibration`` texts: the
    99.99th percentile of each activation's histogram), so ONNX Runtime runs them as integer
    GEMMs (VNNI/AMX where the CPU has them). Fixed ranges keep a text's result independent of
    the other texts of its batch, unlike dynamic quantization's per-batch scale. The attention
    scores (activation x activation) stay float; the word-embedding table is stored as float16
    with a Cast after its Gather. About 35 MB.
    """
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from transformers import BertConfig, BertModel

    class Exported(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel(BertConfig.from_pretrained(str(base)), add_pooling_layer=False)
            self.bert.load_state_dict(
                {
                    k.removeprefix("bert."): torch.from_numpy(v)
                    for k, v in weights.items()
                    if k.startswith("bert.")
                },
                strict=False,
            )
            self.head_w = torch.nn.Parameter(torch.from_numpy(weights["head.weight"]))
            self.head_b = torch.nn.Parameter(torch.from_numpy(weights["head.bias"]))

        def forward(self, input_ids: Any, attention_mask: Any, lexicon: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            mask = attention_mask.unsqueeze(-1).to(hidden.last_hidden_state.dtype)
            pooled = (hidden.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            logits = torch.cat([pooled, lexicon], dim=1) @ self.head_w.T + self.head_b
            return torch.softmax(logits / temperature, dim=1)

    model = Exported().eval()
    ids = torch.full((2, 16), 1000, dtype=torch.long)
    work.mkdir(parents=True, exist_ok=True)
    float_path = work / "teacher-float32.onnx"
    batch_length = {0: "batch", 1: "length"}
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids), torch.zeros(2, 8)),
        str(float_path),
        input_names=["input_ids", "attention_mask", "lexicon"],
        output_names=["probs"],
        dynamic_axes={
            "input_ids": batch_length,
            "attention_mask": batch_length,
            "lexicon": {0: "batch"},
            "probs": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    quantized_path = work / "teacher-int8.onnx"
    quantize_teacher(float_path, quantized_path, base / "tokenizer.json", calibration)
    quantized = onnx.load(str(quantized_path))
    graph = quantized.graph
    table = "bert.embeddings.word_embeddings.weight"
    for init in graph.initializer:
        if init.name == table:
            half = numpy_helper.to_array(init).astype(np.float16)
            init.CopyFrom(numpy_helper.from_array(half, table))
    for index, node in enumerate(graph.node):
        if node.op_type == "Gather" and node.input[0] == table:
            rows = node.output[0]
            node.output[0] = rows + "_float16"
            cast = helper.make_node(
                "Cast", [rows + "_float16"], [rows], to=TensorProto.FLOAT, name="embeddings_float32"
            )
            graph.node.insert(index + 1, cast)
            break
    onnx.checker.check_model(quantized)
    onnx.save(quantized, str(out))


def quantize_teacher(
    float_path: Path, out: Path, tokenizer_json: Path, calibration: Sequence[str]
) -> None:
    """Static 8-bit quantization of the float teacher's weight MatMuls (see ``export_onnx``)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from tokenizers import Tokenizer

    from cryptosent.analysis.learned.teacher import padded

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    ids = token_ids(tokenizer, calibration, CALIBRATION_TOKENS)
    lexicon = lexicon_features(calibration)

    class Texts(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.rows = iter(range(len(ids)))

        def get_next(self) -> dict[str, NDArray[Any]] | None:
            row = next(self.rows, None)
            if row is None:
                return None
            tokens, mask = padded([ids[row]])
            pad = ((0, 0), (0, CALIBRATION_TOKENS - tokens.shape[1]))
            return {
                "input_ids": np.pad(tokens, pad),
                "attention_mask": np.pad(mask, pad),
                "lexicon": lexicon[row : row + 1],
            }

    graph = onnx.load(str(float_path)).graph
    constants = {init.name for init in graph.initializer}
    # attention scores multiply two activations: left in float (little time, much error)
    float_matmuls = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and not any(name in constants for name in node.input)
    ]
    quantize_static(
        str(float_path),
        str(out),
        Texts(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=float_matmuls,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={"ActivationSymmetric": False, "CalibPercentile": CALIBRATION_PERCENTILE},
    )
