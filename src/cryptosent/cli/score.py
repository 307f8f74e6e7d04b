"""`cryptosent score`: one text a line on stdin, one JSON object a line on stdout."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cryptosent.cli.common import fail


def score(
    analyzer: Annotated[str, typer.Option(help="crypto (default) or vader (exactly VADER).")] = (
        "crypto"
    ),
) -> None:
    """Score text from stdin, one per line; print one JSON object per line on stdout."""
    import orjson

    from cryptosent.analysis.sentiment import ANALYZERS, get_analyzer, label

    if analyzer not in ANALYZERS:
        fail(f"--analyzer {analyzer!r}: choose one of {', '.join(ANALYZERS)}")
    scorer = get_analyzer(analyzer)
    write = sys.stdout.buffer.write
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            text = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError as exc:
            fail(f"stdin line {number} is not UTF-8: {exc.reason} at byte {exc.start}")
        c = scorer.scores(text)
        record = {"compound": c.compound, "pos": c.pos, "neu": c.neu, "neg": c.neg,
                  "label": label(c.compound)}  # fmt: skip
        write(orjson.dumps(record) + b"\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(score)
