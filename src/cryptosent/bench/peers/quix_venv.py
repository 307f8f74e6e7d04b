"""The Quix Streams peer's own virtual environment, created on demand and cached.

quixstreams 3.28.1 pins confluent-kafka<2.13 and pydantic-settings<2.16, older than cryptosent's
lock (confluent-kafka 2.16, pydantic-settings 2.16), so it cannot share cryptosent's venv. The
bench builds `<stack dir>/bench/quix-<lock hash>/` with uv from `requirements-quix.txt` (pinned,
compiled by the command at its top) the first time it is needed; later runs reuse it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cryptosent.config import Settings
from cryptosent.errors import FatalError

LOCK = Path(__file__).with_name("requirements-quix.txt")
JOB = Path(__file__).with_name("quix_job.py")


class PeerSetupError(FatalError):
    """The Quix venv could not be built (no uv, no network to PyPI, ...)."""


def venv_dir(settings: Settings) -> Path:
    """Where the venv lives: under the stack's folder, named by the lock's content."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:10]
    return Path(settings.stack_dir).resolve() / "bench" / f"quix-{digest}"


def pinned(package: str) -> str:
    """The version of a package in the Quix venv's lock."""
    match = re.search(rf"^{re.escape(package)}==(\S+)", LOCK.read_text(), re.MULTILINE | re.I)
    return match[1] if match else "unknown"


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        raise PeerSetupError("uv not found beside Python or on PATH: `pip install uv` first")
    return found


def ensure_quix_python(settings: Settings) -> Path:
    """The Python of the Quix venv, built first if missing (a minute on a fresh machine)."""
    folder = venv_dir(settings)
    python = folder / "bin" / "python"
    marker = folder / ".installed"
    if marker.exists():
        return python
    uv = _uv()
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for step in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(folder)],
        [uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(LOCK)],
    ):
        done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise PeerSetupError(
                f"building the Quix venv in {folder} failed: {done.stderr.strip()[-400:]}"
            )
    marker.write_text(LOCK.read_text())
    return python
