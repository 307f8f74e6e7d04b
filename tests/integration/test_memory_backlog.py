"""Bounded memory under a backlog: one processor drains tweets waiting in the topic with a
resident set that stays bounded, whatever the backlog (the consumer's prefetch, the batch and
the lake's buffer are bounded by settings, not by what waits in Kafka).

The test drains 40,000 tweets (``BACKLOG_TWEETS`` overrides it); docs/reliability.md reports
the 2,000,000-tweet run: ``BACKLOG_TWEETS=2000000 .venv/bin/pytest -s
tests/integration/test_memory_backlog.py`` (prints ``MEMORY ...``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from conftest import Pipeline
from faults_support import Background, assert_exact, rss_bytes, stored

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

BACKLOG = int(os.environ.get("BACKLOG_TWEETS", "40000"))
MIB = 1024 * 1024
LIMIT = 1024 * MIB


class PeakRss:
    """Samples a process's resident set on a thread until it exits; the peak and the samples."""

    def __init__(self, pid: int, every_s: float = 0.1) -> None:
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while True:
            try:
                self.samples.append((time.monotonic() - started, rss_bytes(self.pid)))
            except OSError:
                return
            time.sleep(self.every_s)

    @property
    def peak(self) -> int:
        """The largest resident set seen."""
        self._thread.join(timeout=5)
        return max(rss for _t, rss in self.samples)


def test_a_processor_drains_a_backlog_with_a_bounded_resident_set(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    # the production defaults: batches of 5,000, the lake flushed every 60 s or 200,000 rows
    for name in ("CRYPTOSENT_LAKE_FLUSH_SECONDS", "CRYPTOSENT_BATCH_SIZE"):
        p.env.pop(name, None)
    gen = p.cli("generate", "--count", str(BACKLOG), "--rate", "max", "--seed", "97",
                timeout=3000)  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    started = time.monotonic()
    proc = Background(p, "process", "--until-idle", log_dir=tmp_path)
    rss = PeakRss(proc.proc.pid)
    assert proc.wait(3000) == 0, proc.stderr
    took = time.monotonic() - started
    peak = rss.peak
    # after the first 10 %: the model, pyarrow and the prefetch are loaded; what follows must
    # not grow with the backlog
    steady = [r for t, r in rss.samples if t > took * 0.1]
    print(
        f"MEMORY backlog={BACKLOG:,} drained in {took:.0f} s ({BACKLOG / took:,.0f}/s), "
        f"peak RSS {peak / MIB:,.0f} MiB, after the first 10 % "
        f"{min(steady) / MIB:,.0f}..{max(steady) / MIB:,.0f} MiB"
    )
    assert peak <= LIMIT
    assert stored(p) == BACKLOG
    if BACKLOG <= 100_000:  # reading the whole lake back costs minutes at 2,000,000
        assert_exact(p, BACKLOG)
