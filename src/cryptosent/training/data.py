"""The labelled data the learned analyzers are trained and measured on.

- ``datasets/sentiment/train_*.jsonl``: 4,700 crypto posts; a fixed 10 % (by id hash) is the
  development split used to pick epochs, L2 and the temperature.
- ``datasets/sentiment/test_frozen.jsonl``: 720 crypto posts, reporting only.
- ``datasets/sentiment/holdout_b.jsonl``: 600 crypto posts written by a second annotator who saw
  none of the other files, sealed (reporting only): the closest stand-in here for posts that no
  one on the project wrote.
- the 4,200 rated tweets (``../shared/data/vader_tweets_groundtruth.tsv``): a fixed 20 % (by id
  hash) is frozen for reporting, the rest is trained on.
- VADER's other rated sets (movie, Amazon and NYT snippets, from the vaderSentiment 3.3.2
  source distribution, fetched by ``make model`` and checked by hash): general English.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptosent.analysis.learned.features import fnv1a

LABELS = ("negative", "neutral", "positive")
LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}


@dataclass(frozen=True)
class Example:
    """One labelled text."""

    text: str
    label: str
    kind: str
    lang: str
    source: str
    id: str


def repo_root(start: Path | None = None) -> Path:
    """The repository that holds ``datasets/`` (searched upwards from here or ``start``)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "datasets" / "sentiment").is_dir():
            return folder
    package = Path(__file__).resolve()
    for folder in package.parents:
        if (folder / "datasets" / "sentiment").is_dir():
            return folder
    raise FileNotFoundError("datasets/sentiment not found: run from the cryptosent repository")


def rating_label(mean: float) -> str:
    """A rated tweet's class: the mean rating scaled to -1..1, cut at VADER's +-0.05."""
    scaled = mean / 4
    return "positive" if scaled >= 0.05 else "negative" if scaled <= -0.05 else "neutral"


def _jsonl(path: Path, source: str) -> Iterator[Example]:
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        yield Example(row["text"], row["label"], row["kind"], row["lang"], source, row["id"])


def crypto_examples(root: Path, split: str) -> list[Example]:
    """Crypto posts: ``train`` (90 % of train files), ``dev`` (10 %), or ``frozen``."""
    folder = root / "datasets" / "sentiment"
    if split == "frozen":
        return list(_jsonl(folder / "test_frozen.jsonl", "crypto-frozen"))
    if split == "holdout_b":
        return list(_jsonl(folder / "holdout_b.jsonl", "crypto-holdout-b"))
    rows = [ex for path in sorted(folder.glob("train_*.jsonl")) for ex in _jsonl(path, "crypto")]
    dev = [ex for ex in rows if fnv1a(ex.id) % 10 == 0]
    return dev if split == "dev" else [ex for ex in rows if fnv1a(ex.id) % 10 != 0]


def shared_tweets_path(root: Path) -> Path:
    """Where the 4,200 rated tweets are (the shared folder beside the repository)."""
    for folder in (root, *root.parents):
        path = folder / "shared" / "data" / "vader_tweets_groundtruth.tsv"
        if path.exists():
            return path
    raise FileNotFoundError(
        "shared/data/vader_tweets_groundtruth.tsv not found beside the repository"
    )


def rated_tweets(root: Path, split: str) -> list[Example]:
    """The rated tweets: ``train`` (80 %), ``frozen`` (20 %, by id hash) or ``all``."""
    rows = []
    for line in shared_tweets_path(root).read_text(encoding="utf-8").split("\n"):
        tid, mean, text = line.split("\t", 2)
        rows.append(Example(text, rating_label(float(mean)), "tweet", "en", "tweets", tid))
    if split == "all":
        return rows
    frozen = [ex for ex in rows if fnv1a("tweet-" + ex.id) % 5 == 0]
    return frozen if split == "frozen" else [ex for ex in rows if fnv1a("tweet-" + ex.id) % 5 != 0]


def general_english(folder: Path) -> list[Example]:
    """VADER's movie, Amazon and NYT snippets (human-rated like the tweets)."""
    out = []
    for name in ("movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets"):
        path = folder / f"{name}_GroundTruth.txt"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t", 2)
            if len(parts) == 3:
                out.append(
                    Example(parts[2], rating_label(float(parts[1])), name, "en", name, parts[0])
                )
    return out
