"""The bench's instruction counting (cryptosent.bench.instructions) on real callgrind runs of a
small Python program: the count does not move between runs, and the marginal cost of one more
step of a loop comes out of two runs of different lengths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cryptosent.bench.instructions import (
    FIXED_HASHES,
    annotate,
    function_costs,
    marginal,
    total_instructions,
)  # fmt: skip

pytestmark = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed"
)

# one step: a dict store and a str of an int, as the processor's Python does per item
PROGRAM = "import sys\nt = {}\nfor i in range(int(sys.argv[1])): t[i & 1023] = str(i)\n"


def counted(tmp_path: Path, steps: int, name: str) -> tuple[int, int, Counter[str]]:
    out = tmp_path / f"callgrind.{name}"
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, "-S", "-c", PROGRAM, str(steps)],
        check=True, capture_output=True, timeout=300, env={**os.environ, **FIXED_HASHES},
    )  # fmt: skip
    return steps, total_instructions(out), annotate(out)


def test_the_count_is_the_same_run_after_run_and_grows_with_the_work(tmp_path: Path) -> None:
    first = counted(tmp_path, 20_000, "a")
    again = counted(tmp_path, 20_000, "b")
    longer = counted(tmp_path, 60_000, "c")
    # the same work counts the same, whatever else the machine does meanwhile
    assert abs(first[1] - again[1]) / first[1] < 0.001
    figures = marginal(first, longer)
    per_step = figures["process_instructions_per_tweet"]
    assert 500 < per_step < 10_000  # a loop step at module level; start-up left out
    # the marginal cost is a per-step constant: the same between the longer runs
    longest = counted(tmp_path, 100_000, "d")
    assert marginal(longer, longest)["process_instructions_per_tweet"] == pytest.approx(
        per_step, rel=0.02
    )
    assert figures["process_instructions_drains"] == [20_000, 60_000]
    top = dict(figures["process_instructions_top"])
    assert sum(top.values()) <= per_step * 1.01
    # the interpreter's loop is where a Python loop's work goes (recursion marks merged)
    assert any(name.startswith("_PyEval_EvalFrameDefault (libpython") for name in top)
    assert not any("'" in name for name in top)
    with pytest.raises(ValueError, match="more tweets"):
        marginal(longer, first)


def test_function_costs_name_each_function_once_with_its_library() -> None:
    annotated = """\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
14,009,032,975 (100.0%)  PROGRAM TOTALS
   718,723,308 ( 5.13%)  /tmp/b/Python-3.11.7/Python/ceval.c:_PyEval_EvalFrameDefault'2 [/r/lib/libpython3.11.so.1.0]
   100,000,000 ( 0.71%)  /tmp/b/Python-3.11.7/Python/ceval.c:_PyEval_EvalFrameDefault [/r/lib/libpython3.11.so.1.0]
   554,917,461 ( 3.96%)  ???:cryptosent_vader_core::student::Student::judge [/v/cryptosent_vader_core/cryptosent_vader_core.cpython-311-x86_64-linux-gnu.so]
   480,446,899 ( 3.43%)  ./string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]
    88,409,916 ( 0.63%)  ???:0x000000000029ad80 [???]
         1,000 ( 0.00%)  ???:arrow::Status::~Status() [/v/pyarrow/libarrow.so.2600]
"""  # noqa: E501
    assert function_costs(annotated) == Counter({
        "_PyEval_EvalFrameDefault (libpython3.11)": 818_723_308,
        "student::Student::judge (cryptosent_vader_core)": 554_917_461,
        "__memcpy_avx_unaligned_erms (libc)": 480_446_899,
        "0x000000000029ad80 (???)": 88_409_916,
        "arrow::Status::~Status() (libarrow)": 1_000,
    })  # fmt: skip
