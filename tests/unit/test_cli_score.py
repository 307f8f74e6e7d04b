"""`cryptosent score`: stdin lines in, one JSON object per line out (the brief's contract)."""

from __future__ import annotations

import json
import subprocess
import sys

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

TEXTS = ["BTC to the moon 🚀🚀", "got rekt in that rug pull, total scam", "ETH is at 3,000",
         "I LOVE this!!! but fees are awful :(", ""]  # fmt: skip


def score(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "cryptosent", "score", *args],
        input=stdin, capture_output=True, timeout=60, check=False,
    )  # fmt: skip


def test_vader_output_equals_vadersentiment_line_by_line() -> None:
    result = score("--analyzer", "vader", stdin="\n".join(TEXTS).encode() + b"\n")
    assert result.returncode == 0, result.stderr
    reference = SentimentIntensityAnalyzer()
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(TEXTS)
    for text, line in zip(TEXTS, lines, strict=True):
        record = json.loads(line)
        expected = reference.polarity_scores(text)
        assert {k: record[k] for k in ("compound", "pos", "neu", "neg")} == expected
        want = "positive" if expected["compound"] >= 0.05 else (
            "negative" if expected["compound"] <= -0.05 else "neutral")  # fmt: skip
        assert record["label"] == want


def test_crypto_is_the_default_and_reads_crypto_slang() -> None:
    result = score(stdin=b"BTC to the moon \xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\ngot rekt, rug pull\n")
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["label"] == "positive" and second["label"] == "negative"


def test_bad_input_is_one_clear_line() -> None:
    result = score(stdin=b"fine\n\xff\xfe\n")
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        "error: stdin line 2 is not UTF-8: invalid start byte at byte 0"
    )
    unknown = score("--analyzer", "textblob", stdin=b"x\n")
    assert unknown.returncode == 1
    expected = "--analyzer 'textblob': choose one of learned, teacher, crypto, vader"
    assert expected in unknown.stderr.decode()
