"""The ``learned`` and ``teacher`` analyzers behind the common analyzer contract.

Both read their weights from ``cryptosent/models/`` and check each file against the SHA-256 in
``models/manifest.json`` first: a changed or truncated file is one clear error, never a
silently different model. Posts in languages the models were not trained on get the label
``unscored`` (neutral scores, confidence 0), see ``languages.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from cryptosent.analysis.learned.judgement import Judgement
from cryptosent.analysis.learned.languages import scorable, scorable_many
from cryptosent.analysis.learned.student import StudentModel
from cryptosent.analysis.learned.teacher import TeacherModel
from cryptosent.analysis.vader import NEUTRAL_SCORES, Scores
from cryptosent.errors import FatalError

UNSCORED = Judgement(NEUTRAL_SCORES, "unscored", (0.0, 0.0, 0.0))

FLOAT_COLUMNS = (
    "compound", "pos", "neu", "neg", "confidence",
    "vader_compound", "vader_pos", "vader_neu", "vader_neg",
)  # fmt: skip
"""The float columns of `SentimentColumns.floats`, in order."""
LABEL_CODES = ("negative", "neutral", "positive", "unscored")
"""What each byte of `SentimentColumns.labels` / `.vader_labels` stands for."""


class SentimentColumns(NamedTuple):
    """A batch's scores by the learned analyzer and VADER as column buffers (Arrow's layout)."""

    floats: bytearray
    """The `FLOAT_COLUMNS`, each n little-endian float64 values, one after the other."""
    labels: bytes
    """The learned label of each text, as an index of `LABEL_CODES`."""
    vader_labels: bytes
    """VADER's label (`sentiment.label`) of each text, as an index of `LABEL_CODES`."""


class ModelFileError(FatalError):
    """A model file is missing or differs from the hash the release pinned."""


def models_dir() -> Path:
    """The folder that holds the shipped model files."""
    return Path(str(resources.files("cryptosent") / "models"))


@lru_cache(maxsize=1)
def manifest() -> dict[str, object]:
    """``models/manifest.json``: file hashes, training command and measured figures."""
    path = models_dir() / "manifest.json"
    try:
        data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(
            f"{path} is missing: reinstall cryptosent or run 'make model'"
        ) from None
    return data


def checked(name: str) -> Path:
    """The path of a model file after its SHA-256 matched the manifest."""
    path = models_dir() / name
    files = manifest().get("files", [])
    pinned = {f["file"]: f["sha256"] for f in files} if isinstance(files, list) else {}
    expected = pinned.get(name)
    if not path.exists():
        raise ModelFileError(
            f"model file {path} is missing: reinstall cryptosent or run 'make model'"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ModelFileError(
            f"model file {path} has SHA-256 {digest[:12]}…, "
            f"the manifest pins {str(expected)[:12]}…: "
            "restore it with git or retrain with 'make model'"
        )
    return path


def _lexicons(
    texts: Sequence[str], vader: Sequence[Scores] | None = None
) -> tuple[Sequence[Scores], list[Scores]]:
    """VADER's scores (reused when the caller has them) and the crypto lexicon's."""
    from cryptosent.analysis.sentiment import get_analyzer, score_batch

    if vader is None:
        vader = score_batch(get_analyzer("vader"), texts)
    return vader, score_batch(get_analyzer("crypto"), texts)


def _utf8(text: str) -> bool:
    """Whether the text can cross into the compiled core (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class LearnedAnalyzer:
    """The student: hashed n-grams + lexicon scores, compiled core when installed."""

    name = "learned"

    def __init__(self, native: bool | None = None) -> None:
        self.model = StudentModel.load(checked("student.safetensors"))
        self.native = None
        if native is not False:
            try:
                from cryptosent_vader_core import Student  # type: ignore[import-untyped]
            except ImportError:
                if native:
                    raise
            else:
                self.native = Student(
                    self.model.hashed.ravel().tolist(),
                    self.model.dense.ravel().tolist(),
                    self.model.bias.tolist(),
                    self.model.temperature,
                )

    def judge_many(
        self,
        texts: Sequence[str],
        langs: Sequence[str | None] | None = None,
        vader: Sequence[Scores] | None = None,
        explain: bool = True,
    ) -> list[Judgement]:
        """One judgement per text; ``langs``: the languages the sources declared, if any;
        ``vader``: VADER's scores of the texts when the caller has them already; without
        ``explain`` the explanations stay empty (cheaper: the stream stores no explanation)."""
        vader, crypto = _lexicons(texts, vader)
        declared = langs if langs is not None else [None] * len(texts)
        out: list[Judgement] = [UNSCORED] * len(texts)
        todo = [i for i, text in enumerate(texts) if scorable(text, declared[i])]
        slow = [i for i in todo if not _utf8(texts[i])]  # lone surrogates: the Python path
        if slow:
            todo = [i for i in todo if _utf8(texts[i])]
            for i in slow:
                out[i] = self.model.judge(texts[i], vader[i], crypto[i], explain)
        if self.native is not None:
            from cryptosent.analysis.learned.judgement import scores_from_probs

            items = [
                (
                    texts[i],
                    texts[i].lower(),
                    self.model.dense_features(vader[i], crypto[i], texts[i]),
                )
                for i in todo
            ]
            judged = self.native.judge_many(items, explain)
            for i, (neg, neu, pos, why) in zip(todo, judged, strict=True):
                scores, name = scores_from_probs(neg, neu, pos)
                out[i] = Judgement(scores, name, (neg, neu, pos), tuple(why))
        else:
            for i in todo:
                out[i] = self.model.judge(texts[i], vader[i], crypto[i], explain)
        return out

    def columns(
        self, texts: list[str], langs: Sequence[str | None], vader: Any
    ) -> SentimentColumns | None:
        """The learned judgements and ``vader``'s scores of ``texts`` in one call into the
        compiled core (the numbers `judge_many` and ``vader`` give, without a Python object
        per text); None when the core cannot do it (not installed, or ``vader`` or the crypto
        analyzer is not on it): then the caller takes the Python path."""
        from cryptosent.analysis._native import CORE
        from cryptosent.analysis.sentiment import get_analyzer, label

        crypto = getattr(get_analyzer("crypto"), "native", None)
        engine = getattr(vader, "native", None)
        if CORE is None or self.native is None or engine is None or crypto is None:
            return None
        mask = scorable_many(texts, langs)
        floats, labels, vader_labels, fallback = CORE.score_columns(
            engine, crypto, self.native, texts, mask
        )
        if fallback:
            # texts with lone surrogates have no UTF-8 form: the Python path scores them
            n = len(texts)
            view = memoryview(floats).cast("d")
            labels, vader_labels = bytearray(labels), bytearray(vader_labels)
            for i in fallback:
                v = vader.scores(texts[i])
                judged = self.judge_many([texts[i]], [langs[i]], vader=[v], explain=False)[0]
                for k, value in enumerate((*judged.scores, judged.confidence, *v)):
                    view[k * n + i] = value
                labels[i] = LABEL_CODES.index(judged.label)
                vader_labels[i] = LABEL_CODES.index(label(v[0]))
            view.release()
        return SentimentColumns(floats, bytes(labels), bytes(vader_labels))

    def scores_many(self, texts: Sequence[str]) -> list[Scores]:
        """VADER-shaped scores for each text."""
        return [j.scores for j in self.judge_many(texts)]

    def scores(self, text: str) -> Scores:
        """VADER-shaped scores for one text."""
        return self.judge_many([text])[0].scores


class TeacherAnalyzer:
    """The fine-tuned MiniLM: slower, for ``cryptosent score`` and low-rate feeds."""

    name = "teacher"

    def __init__(self, threads: int = 1) -> None:
        """``threads``: ONNX Runtime's threads per call (0: one per core). One by default: the
        results are then the same bit for bit whatever the machine's load or core count."""
        self.model = TeacherModel(checked("teacher.onnx"), checked("tokenizer.json"), threads)

    def judge_many(
        self,
        texts: Sequence[str],
        langs: Sequence[str | None] | None = None,
        vader: Sequence[Scores] | None = None,
        explain: bool = True,
    ) -> list[Judgement]:
        """One judgement per text; ``langs``: the languages the sources declared, if any;
        ``vader``: VADER's scores of the texts when the caller has them already."""
        declared = langs if langs is not None else [None] * len(texts)
        todo = [i for i, text in enumerate(texts) if scorable(text, declared[i])]
        out: list[Judgement] = [UNSCORED] * len(texts)
        if todo:
            chosen = [texts[i] for i in todo]
            vader_chosen = [vader[i] for i in todo] if vader is not None else None
            vader_scores, crypto = _lexicons(chosen, vader_chosen)
            judged = self.model.judge_many(chosen, vader_scores, crypto)
            for i, judgement in zip(todo, judged, strict=True):
                out[i] = judgement
        return out

    def scores_many(self, texts: Sequence[str]) -> list[Scores]:
        """VADER-shaped scores for each text."""
        return [j.scores for j in self.judge_many(texts)]

    def scores(self, text: str) -> Scores:
        """VADER-shaped scores for one text."""
        return self.judge_many([text])[0].scores
