"""An installed `cryptosent`, away from the checkout (issue 10): a wheel built from the repository
(`pip wheel --no-deps .`), installed with `requirements.lock` into a fresh venv in another
directory, runs `cryptosent --help`, `cryptosent score` and `cryptosent bench --quick` there
against the running stack. Only the wheel: the compiled core is a separate wheel
(`rust/vader_core`), so this venv scores on the pure-Python path, which must give the same
numbers as the checkout's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cryptosent.stack.manager import Stack

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "BTC to the moon, best buy ever 🚀",
    "this rug pull wrecked me, ETH is dead",
    "Solana TPS numbers are out today",
    "je vends tout mon bitcoin, c'est fini",
]


def _uv() -> str:
    uv = REPO / ".venv" / "bin" / "uv"
    found = str(uv) if uv.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is missing: `make setup` installs it into .venv")
    return found


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of the test run's settings or import paths."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRYPTOSENT_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin folder, with the wheel and the locked dependencies installed."""
    work = tmp_path_factory.mktemp("installed")
    dist = work / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        capture_output=True, text=True, timeout=600, check=False, env=_clean_env(),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("cryptosent-*.whl")
    venv = work / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True, timeout=120, env=_clean_env(),
    )  # fmt: skip
    python = venv / "bin" / "python"
    install = subprocess.run(
        [_uv(), "pip", "install", "-q", "--python", str(python),
         "-r", str(REPO / "requirements.lock"), str(wheel)],
        capture_output=True, text=True, timeout=900, check=False, env=_clean_env(),
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    return venv / "bin"


def _run(
    bin_dir: Path, cwd: Path, *args: str, stdin: str | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "cryptosent"), *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
        cwd=cwd, env=_clean_env(**env),
    )  # fmt: skip


def test_the_package_is_the_wheels_not_the_checkouts(installed: Path, tmp_path: Path) -> None:
    found = subprocess.run(
        [str(installed / "python"), "-c", "import cryptosent, sys; print(cryptosent.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), check=True,
    )  # fmt: skip
    location = Path(found.stdout.strip()).resolve()
    assert location.is_relative_to(installed.parent.resolve()), location
    assert not location.is_relative_to(REPO), location


def test_help_lists_every_command_group(installed: Path, tmp_path: Path) -> None:
    result = _run(installed, tmp_path, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    for command in ("generate", "replay", "stream", "process", "score", "dashboard", "bench"):
        assert command in result.stdout, command


def test_score_gives_the_checkouts_numbers(installed: Path, tmp_path: Path) -> None:
    stdin = "\n".join(TEXTS) + "\n"
    there = _run(installed, tmp_path, "score", stdin=stdin)
    assert there.returncode == 0, there.stderr[-2000:]
    here = subprocess.run(
        [sys.executable, "-m", "cryptosent", "score"],
        input=stdin, capture_output=True, text=True, timeout=120, check=True, cwd=REPO,
    )  # fmt: skip
    rows = [json.loads(line) for line in there.stdout.splitlines()]
    assert len(rows) == len(TEXTS)
    assert rows == [json.loads(line) for line in here.stdout.splitlines()]
    assert rows[0]["label"] == "positive" and rows[1]["label"] == "negative"


@pytest.mark.timeout(1200)
def test_quick_bench_runs_from_the_installed_wheel(
    installed: Path, stack: Stack, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    result = _run(
        installed, tmp_path, "bench", "--quick", "--json", str(out), timeout=1100,
        CRYPTOSENT_STACK_DIR=str(Path(stack.settings.stack_dir).resolve()),  # the suite's stack
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["errors"] == {}
    assert figures["process_count"] == 10_000
    assert figures["sentiment_vader_exact"] is True
    assert figures["sentiment_native"] is False  # the compiled core is not in this wheel
