"""The processor's sustained work in instructions per tweet, counted by Valgrind's callgrind.

CPU seconds move with the shared machine's state: the same code measured 0.0139 and 0.0177 CPU s
per 1,000 tweets an hour apart (docs/benchmarks.md, round eight). The instructions a processor
runs move far less: callgrind counts every user-space instruction of every thread, and two drains
of one size side by side counted within 0.1 % of each other. Two drains of different sizes are
counted, each on its own topic and database; their difference over the difference in tweets is
the marginal work per tweet, with start-up and everything else a run does once left out. The
functions that differ most between the two drains are reported too, per tweet: where the work
goes. What still moves the figure (86,045 to 94,735 on one code, runs at different times) is
timing: the Kafka client's fetches run slower under callgrind too, so a poll hands over a
smaller part of a batch (hence `SLOWED_POLL_S`), and the work the processor does by the clock
(its status every 0.5 s, commits every 5 s, alert checks every 10 s, the price feed's polls:
2.7M instructions a second when idle under callgrind) grows with the seconds a slower machine
takes. So compare two codes side by side, as docs/benchmarks.md does.

Under callgrind the processor runs about 50 times slower (80,000 tweets: two minutes), so the
stage drains two small topics, one and two batches of the default size.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from cryptosent.bench.pipeline import fill, sandbox
from cryptosent.config import Settings, child_environment

TOP = 12
"""How many functions the figures name."""
SLOWED_POLL_S = 12.5
"""The processor's poll timeout under callgrind: its 0.25 s, stretched as callgrind stretches it."""
FIXED_HASHES = {"PYTHONHASHSEED": "0"}
"""Python's str hashes are salted anew in each process, which moves where dict and set lookups
probe: two runs of the same small program counted 3 % apart. With a fixed salt they count the
same (the salt guards against crafted collisions, which a count of mock posts need not)."""


def total_instructions(callgrind_out: Path) -> int:
    """The instructions a callgrind output file counted (its ``totals:`` line)."""
    for line in callgrind_out.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"{callgrind_out}: no totals line (did callgrind finish?)")


_ROW = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.+?)\s*$")


def function_costs(annotated: str) -> Counter[str]:
    """Each function's own instructions (not its callees') from ``callgrind_annotate`` output,
    by a short name: the function without its source file, and the object it is in."""
    costs: Counter[str] = Counter()
    for line in annotated.splitlines():
        row = _ROW.match(line)
        if row is None or "PROGRAM TOTALS" in line:
            continue
        name, _, obj = row[2].partition(" [")
        colon = name.find(":")  # after the source file ("???" when unknown), unless a "::"
        if colon >= 0 and name[colon : colon + 2] != "::":
            name = name[colon + 1 :]
        # "'2": a recursive call's cost, callgrind's own name for it
        name = re.sub(r"'\d+$", "", name.strip()).removeprefix("cryptosent_vader_core::")
        library = obj.rstrip("]").rsplit("/", 1)[-1].split(".cpython")[0].split(".so")[0]
        costs[f"{name} ({library})" if library else name] += int(row[1].replace(",", ""))
    return costs


def annotate(callgrind_out: Path) -> Counter[str]:
    """`function_costs` of a callgrind output file."""
    done = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(callgrind_out)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return function_costs(done.stdout)


def marginal(
    small: tuple[int, int, Counter[str]], large: tuple[int, int, Counter[str]]
) -> dict[str, Any]:
    """Instructions per tweet between two drains, each (tweets, instructions, function costs),
    and the `TOP` functions whose cost grew most, per tweet."""
    (n_small, i_small, f_small), (n_large, i_large, f_large) = small, large
    if n_large <= n_small:
        raise ValueError("the second drain must hold more tweets than the first")
    tweets = n_large - n_small
    grown = Counter({k: v - f_small.get(k, 0) for k, v in f_large.items()})
    return {
        "process_instructions_per_tweet": (i_large - i_small) / tweets,
        "process_instructions_top": [
            [name, round(cost / tweets)] for name, cost in grown.most_common(TOP)
        ],
        "process_instructions_drains": [n_small, n_large],
    }


def measure(settings: Settings, small: int, large: int) -> dict[str, Any]:
    """Fill a topic with `small` mock tweets and drain it with `cryptosent process
    --until-idle` under callgrind, then the same with `large`; `marginal` of the two."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        raise RuntimeError("valgrind is not installed: `apt-get install valgrind` (Debian)")
    drains = []
    with tempfile.TemporaryDirectory(prefix="cryptosent-callgrind-") as folder:
        for count in (small, large):
            out = Path(folder) / f"callgrind.{count}"
            with sandbox(settings, f"instructions{count}") as box:
                fill(box, count)
                # callgrind runs the processor ~50 times slower, its Kafka client's fetches too:
                # with the usual 0.25 s a poll would hand over part of what a batch holds at
                # full speed, and fewer repeats fall in one batch
                command = box.cli("process", "--until-idle", poll_timeout_seconds=SLOWED_POLL_S)
                done = subprocess.run(
                    ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
                    capture_output=True, text=True, timeout=3600, check=False,
                    env=child_environment(**FIXED_HASHES),
                )  # fmt: skip
                if done.returncode != 0:
                    raise RuntimeError(
                        f"cryptosent process under callgrind failed: {done.stderr.strip()[-600:]}"
                    )
                stored = int(box.scalar("select count(*) from tweets"))
                if stored != count:
                    raise RuntimeError(f"the processor stored {stored} of {count} tweets")
            drains.append((count, total_instructions(out), annotate(out)))
    return marginal(drains[0], drains[1])
