"""Coin linking: precision, recall and F1 on a labelled data set, and the cost per 1,000 tweets.

Run: ``.venv/bin/python benchmarks/coins.py [DATA.jsonl ...] [--speed N] [--errors]``
(default data: ``datasets/coins/train.jsonl``; numbers go to docs/data-model.md by hand).
``--speed`` also times ``coin_mentions_many`` (the processor's batch call) and reports the share
of posts the compiled matcher (rust/vader_core/src/coins.rs) decides without Python.

A data file is JSON Lines, one labelled post a line:
``{"id", "kind", "text", "coins": [canonical tickers], "lookalike": bool}``.
Scores are micro-averaged over (post, coin) pairs: a coin listed by the linker and by the label
is a true positive, listed only by the linker a false positive, only by the label a false negative.
``--errors`` prints the posts the linker gets wrong; it refuses a frozen test split, whose texts
stay unread so that nothing is tuned on them.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosent.analysis import coins
from cryptosent.analysis.coins import coin_mentions, coin_mentions_many
from cryptosent.bench.coins import cost_per_1000

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN = REPO_ROOT / "datasets" / "coins" / "train.jsonl"
FROZEN = REPO_ROOT / "datasets" / "coins" / "test_frozen.jsonl"

Linker = Callable[[str], Sequence[str]]  # coin_mentions, or an older version of it


@dataclass(frozen=True, slots=True)
class LabelledPost:
    """One row of a coin-linking data set."""

    id: str
    kind: str
    text: str
    coins: frozenset[str]
    lookalike: bool


@dataclass(frozen=True, slots=True)
class Counts:
    """True positives, false positives and false negatives over (post, coin) pairs."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    posts: int = 0
    exact: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.posts + other.posts,
            self.exact + other.exact,
        )

    @property
    def precision(self) -> float:
        """tp / (tp + fp); 1.0 when nothing was predicted (no false positive)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn); 1.0 when nothing was to be found."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load_posts(path: Path) -> list[LabelledPost]:
    """The labelled posts of one JSON Lines file."""
    posts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        try:
            posts.append(
                LabelledPost(
                    str(row["id"]),
                    str(row["kind"]),
                    str(row["text"]),
                    frozenset(row["coins"]),
                    bool(row["lookalike"]),
                )
            )
        except KeyError as missing:
            raise ValueError(f"{path}:{number}: missing key {missing}") from None
    return posts


def score_post(post: LabelledPost, found: Iterable[str]) -> Counts:
    """The counts of one post given the tickers the linker found."""
    predicted = frozenset(found)
    return Counts(
        tp=len(predicted & post.coins),
        fp=len(predicted - post.coins),
        fn=len(post.coins - predicted),
        posts=1,
        exact=int(predicted == post.coins),
    )


def evaluate(posts: Sequence[LabelledPost], linker: Linker = coin_mentions) -> dict[str, Counts]:
    """Counts over all posts (key ``all``), per ``kind`` and for look-alike posts."""
    table: dict[str, Counts] = {"all": Counts()}
    for post in posts:
        counts = score_post(post, linker(post.text))
        table["all"] += counts
        table[post.kind] = table.get(post.kind, Counts()) + counts
        if post.lookalike:
            table["(lookalike posts)"] = table.get("(lookalike posts)", Counts()) + counts
    return table


def format_table(table: dict[str, Counts]) -> str:
    """A Markdown table of ``evaluate``'s counts, overall first, then kinds by name."""
    lines = [
        "| kind | posts | exact | tp | fp | fn | precision | recall | F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ["all", *sorted(k for k in table if k != "all")]
    for key in keys:
        c = table[key]
        lines.append(
            f"| {key} | {c.posts} | {c.exact} | {c.tp} | {c.fp} | {c.fn} "
            f"| {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} |"
        )
    return "\n".join(lines)


def mock_texts(count: int, seed: int = 1) -> list[str]:
    """The texts of ``count`` tweets from the mock generator (what the processor sees)."""
    from cryptosent.sources.mock import MockGenerator

    return [tweet.text for tweet in MockGenerator(seed=seed).tweets(count)]


def compiled_share(texts: list[str]) -> float:
    """The share of ``texts`` the compiled matcher decides (the rest go back to Python)."""
    core = coins._MATCHER._compiled()
    if core is None or not texts:
        return 0.0
    return sum(found is not None for found in core.mentions_many(texts)) / len(texts)


def batch_cost_per_1000(texts: list[str], rounds: int = 5) -> float:
    """CPU milliseconds per 1,000 texts of one ``coin_mentions_many`` call, best of ``rounds``."""
    coin_mentions_many(texts[:100])  # builds the compiled tables once
    best = math.inf
    for _ in range(rounds):
        start = time.process_time()
        coin_mentions_many(texts)
        best = min(best, time.process_time() - start)
    return best * 1_000_000 / len(texts)


def load_linker(path: Path, data: Path | None = None) -> Linker:
    """``coin_mentions`` of another copy of ``coins.py`` (an older version, to compare), reading
    its data files from ``data`` instead of the installed package when given."""
    source = path.read_text(encoding="utf-8")
    if data is not None:
        source = source.replace(
            'resources.files("cryptosent.data")', f"__import__('pathlib').Path({str(data)!r})"
        )
    module = types.ModuleType("coins_under_test")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, str(path), "exec"), module.__dict__)
    linker: Linker = module.coin_mentions
    return linker


def load_revision(rev: str, workdir: Path) -> Linker:
    """``coin_mentions`` as it was at git revision ``rev``, code and data files both."""
    package = "src/cryptosent"
    for name in ("analysis/coins.py", *_data_files(rev)):
        target = workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        blob = subprocess.run(
            ["git", "show", f"{rev}:{package}/{name}"],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        ).stdout
        target.write_bytes(blob)
    return load_linker(workdir / "analysis" / "coins.py", workdir / "data")


def _data_files(rev: str) -> list[str]:
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{rev}:src/cryptosent/data"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [f"data/{name}" for name in listing.split() if name.startswith("coins")]


def main(argv: Sequence[str] | None = None) -> None:
    """Print the scores of each data file, and the cost per 1,000 tweets with --speed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data", nargs="*", type=Path, default=[TRAIN], help="JSON Lines files")
    parser.add_argument("--errors", action="store_true", help="print the posts it gets wrong")
    parser.add_argument("--speed", type=int, default=0, help="time it on N mock tweets too")
    parser.add_argument("--linker", type=Path, help="a coins.py to load instead of the package's")
    parser.add_argument(
        "--baseline", metavar="REV", help="with --speed: also time the linker of git revision REV"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    linker = load_linker(args.linker) if args.linker else coin_mentions
    result: dict[str, Any] = {}
    for path in args.data:
        posts = load_posts(path)
        table = evaluate(posts, linker)
        result[path.name] = {key: vars_of(c) for key, c in table.items()}
        print(f"{path.name}: {len(posts)} posts")
        print(format_table(table))
        print()
        if args.errors:
            if "frozen" in path.name:
                print(f"--errors: not printing the texts of the frozen split {path.name}")
                continue
            for post in posts:
                found = sorted(linker(post.text))
                if frozenset(found) != post.coins:
                    gold = sorted(post.coins)
                    print(f"  {post.id} {post.kind}: found {found}, labelled {gold}: {post.text}")
            print()
    if args.speed:
        linkers = {"linker": linker}
        if args.baseline:
            workdir = Path(tempfile.mkdtemp(prefix="coins-baseline-"))
            linkers[f"at {args.baseline}"] = load_revision(args.baseline, workdir)
        texts = mock_texts(args.speed)
        labelled = [post.text for path in args.data for post in load_posts(path)]
        print("cost per 1,000 tweets, CPU ms (one core, best of 5 interleaved rounds):")
        for what, sample in (
            (f"{len(texts):,} mock tweets (MockGenerator(seed=1))", texts),
            (f"the {len(labelled)} labelled posts x 20", labelled * 20),
        ):
            costs = cost_per_1000(sample, linkers)
            result[f"ms_per_1000 {what}"] = costs
            print(f"  {what}: " + ", ".join(f"{n} {ms:.2f}" for n, ms in costs.items()))
        print("coin_mentions_many (one batch), CPU ms per 1,000, and the share decided compiled:")
        for what, sample in (("mock tweets", texts), ("labelled posts x 20", labelled * 20)):
            batch, share = batch_cost_per_1000(sample), compiled_share(sample)
            result[f"batch_ms_per_1000 {what}"] = batch
            result[f"compiled_share {what}"] = share
            print(f"  {what}: {batch:.2f} ms, {share:.1%} decided compiled")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def vars_of(counts: Counts) -> dict[str, float]:
    """The counts and scores of ``counts`` as a JSON-ready dict."""
    return {
        "posts": counts.posts,
        "exact": counts.exact,
        "tp": counts.tp,
        "fp": counts.fp,
        "fn": counts.fn,
        "precision": round(counts.precision, 4),
        "recall": round(counts.recall, 4),
        "f1": round(counts.f1, 4),
    }


if __name__ == "__main__":
    sys.exit(main())
