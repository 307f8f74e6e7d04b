"""Where the processor's time goes: pyinstrument over `cryptosent process --until-idle`.

    .venv/bin/python -m benchmarks.profile_process [COUNT] > /tmp/profile.txt

Fills a fresh topic with COUNT mock tweets (default 100,000), then profiles one processor
draining it with every sink on (PostgreSQL, lake on the local S3 server).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from cryptosent.bench.pipeline import fill, sandbox
from cryptosent.config import get_settings


def profile(count: int) -> str:
    """The pyinstrument text report of one processor run over count tweets."""
    settings = get_settings()
    with sandbox(settings, "profile") as box, tempfile.TemporaryDirectory() as tmp:
        fill(box, count)
        report = Path(tmp) / "profile.txt"
        subprocess.run(
            [sys.executable, "-m", "pyinstrument", "--no-color", "-o", str(report),
             *box.cli("process", "--until-idle")[1:]],
            check=True, capture_output=True, timeout=3600,
        )  # fmt: skip
        return report.read_text()


if __name__ == "__main__":
    print(profile(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
