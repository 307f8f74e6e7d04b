"""`cryptosent score`: one text a line on stdin, one JSON object a line on stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from cryptosent.cli.common import fail


def _lines(chunk: int) -> Iterator[list[str]]:
    """Stdin's lines as text, ``chunk`` at a time (one at a time at a terminal)."""
    batch: list[str] = []
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            batch.append(raw.rstrip(b"\r\n").decode("utf-8"))
        except UnicodeDecodeError as exc:
            fail(f"stdin line {number} is not UTF-8: {exc.reason} at byte {exc.start}")
        if len(batch) >= chunk:
            yield batch
            batch = []
    if batch:
        yield batch


def score(
    analyzer: Annotated[
        str,
        typer.Option(
            help="teacher (default here: the fine-tuned MiniLM, the most accurate, ~250 texts/s), "
            "learned (the distilled model the processor stores), crypto (lexicon + rules) or "
            "vader (exactly VADER)."
        ),
    ] = "teacher",
) -> None:
    """Score text from stdin, one per line; print one JSON object per line on stdout.

    Each object has compound, pos, neu, neg and label; the learned analyzers add confidence
    (the probability of the label) and explanation (the phrases that drove it). A post in a
    language the learned models were not trained on gets the label "unscored".
    """
    import orjson

    from cryptosent.analysis.sentiment import ANALYZERS, get_analyzer, label

    if analyzer not in ANALYZERS:
        fail(f"--analyzer {analyzer!r}: choose one of {', '.join(ANALYZERS)}")
    scorer: Any = get_analyzer(analyzer)
    judge = getattr(scorer, "judge_many", None)
    write = sys.stdout.buffer.write
    for texts in _lines(1 if sys.stdin.isatty() else 256):
        if judge is not None:
            for j in judge(texts):
                c = j.scores
                record: dict[str, object] = {
                    "compound": c.compound, "pos": c.pos, "neu": c.neu, "neg": c.neg,
                    "label": j.label, "confidence": round(j.confidence, 4),
                    "explanation": list(j.explanation),
                }  # fmt: skip
                write(orjson.dumps(record) + b"\n")
        else:
            for c in scorer.scores_many(texts):
                record = {"compound": c.compound, "pos": c.pos, "neu": c.neu, "neg": c.neg,
                          "label": label(c.compound)}  # fmt: skip
                write(orjson.dumps(record) + b"\n")
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(score)
