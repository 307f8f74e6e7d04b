"""Instructions of the compiled core's batch calls, counted by callgrind: decode, scoring, coin
matching and campaign signing of two batches of mock posts, each call's instructions with
everything it calls, per post.

    .venv/bin/python -m benchmarks.core_instructions [--count 40000] [--core DIR]

Two batches of ``--count`` mock posts (the processor's default batch size), encoded as the
producer sends them, go through `transform.decode`, `score_columns` (VADER, the crypto lexicon
and the student), `coin_mentions_many` and the campaign signer (`campaigns.sign` and
`_text_facts`), each once per batch, the first batch also filling the engines' caches. One
process, no thread and no server: the count repeats to the instruction with the same code, so a
change of one function is measured alone. ``--core`` puts another build of the core first on
the path (a directory holding a `cryptosent_vader_core` package, such as an unpacked wheel),
to compare two builds side by side. The processor's whole count per tweet is
`cryptosent bench --only instructions` (docs/benchmarks.md, "Hot path: round nine").
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptosent.config import child_environment

CALLS = {
    "decode_tweets": "decode::__pyfunction_decode_tweets",
    "score_columns": "batch::__pyfunction_score_columns",
    "mentions_many": "coins::CoinQuick::__pymethod_mentions_many__",
    "sign": "campaigns::CampaignSigner::__pymethod_sign__",
    "text_facts": "campaigns::__pyfunction_text_facts",
}
"""The core's batch calls, by the name callgrind gives them."""


def work(count: int) -> None:
    """The calls on two batches (run under callgrind)."""
    from benchmarks.transform import START, Consumed
    from cryptosent.analysis import campaigns
    from cryptosent.analysis._native import CORE
    from cryptosent.analysis.coins import coin_mentions_many
    from cryptosent.analysis.sentiment import get_analyzer
    from cryptosent.ingest import to_message
    from cryptosent.processor.transform import decode, warm_up
    from cryptosent.sources.mock import MockGenerator

    if CORE is None:
        raise SystemExit("the compiled core is not installed: run `make setup`")
    values = [to_message(t)[1] for t in MockGenerator(seed=71, clock=lambda: START).read(2 * count)]
    warm_up()
    campaigns.warm_up()
    student, vader, crypto = (get_analyzer(name) for name in ("learned", "vader", "crypto"))
    for first in (0, count):
        batch = [Consumed(i, v) for i, v in enumerate(values[first : first + count])]
        texts = decode(batch).tweet_columns().texts
        CORE.score_columns(vader.native, crypto.native, student.native, texts, bytes([1]) * count)
        coin_mentions_many(texts)
        campaigns.sign(texts)
        campaigns._text_facts(texts)


def inclusive(callgrind_out: Path) -> dict[str, int]:
    """Each call's instructions, its callees' included, from ``callgrind_annotate``."""
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(callgrind_out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, int] = {}
    for line in annotated.splitlines():
        for name, symbol in CALLS.items():
            if symbol + " " in line and name not in found:
                found[name] = int(re.match(r"\s*([\d,]+)", line)[1].replace(",", ""))  # type: ignore[index]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40_000, help="posts a batch")
    parser.add_argument("--core", type=Path, help="a directory with another build of the core")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work(args.count)
        return
    path = os.pathsep.join([*([str(args.core.resolve())] if args.core else []), "src", "."])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "benchmarks.core_instructions",
            "--child", "--count", str(args.count),
        ]  # fmt: skip
        env = child_environment(PYTHONHASHSEED="0", PYTHONPATH=path)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"callgrind failed: {done.stderr.strip().splitlines()[-1:]}")
        counts = inclusive(out)
    posts = 2 * args.count
    print(f"{'call':<15} {'instructions, 2 batches':>24} {'per post':>10}")
    for name in CALLS:
        if name in counts:
            print(f"{name:<15} {counts[name]:>24,} {counts[name] / posts:>10,.0f}")


if __name__ == "__main__":
    main()
