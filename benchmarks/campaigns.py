"""Campaign detection: precision and recall of campaign membership, organic posts flagged as spam,
and the detector's cost per 1,000 tweets.

Run: ``.venv/bin/python benchmarks/campaigns.py [--seeds 1 2 3 4 5] [--count 40000]
[--rate 2000] [--batch 500] [--speed]``
(numbers go to docs/campaigns.md by hand). ``--speed`` also measures the costs: of ``observe``,
and of ``sign`` and ``observe_columns`` (the processor's call) alone, in batches of 5,000 and
of 20,000 (the processor's batch; 200,000 tweets, so the window fills and posts leave it).

Two kinds of data:

* generated: ``CampaignMock`` over ``MockGenerator`` (campaigns take 5 % of the feed, the mock's
  airdrop spam bots about 4 %), 2,000 tweets a minute (the seed's rate) in batches of 500, with
  the ground truth the generator writes;
* hand-written: ``datasets/campaigns/*.jsonl``, one post a line ``{"id", "author_id",
  "created_at", "text", "followers", "verified", "campaign", "kind"}`` (``campaign`` null for
  organic posts), fed in batches of 20 in time order.

A post counts as a campaign member when the detector gives it a campaign id; it is a true
positive when its truth names a campaign (a shill campaign or the spam bots). "Organic" is every
post whose truth names none; the organic spam share is the share of those flagged ``spam``.
Flags are taken after all revisions (what the database holds once the window has passed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptosent.analysis import campaigns
from cryptosent.analysis.campaigns import (
    CampaignDetector,
    Flag,
    Post,
    PostColumns,
    post_from_tweet,
)
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import CampaignMock, Label

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = REPO_ROOT / "datasets" / "campaigns"
START = datetime(2026, 1, 1, 12, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Scores:
    """Campaign membership counts and organic posts flagged as spam."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    organic: int = 0
    organic_spam: int = 0
    posts: int = 0

    def __add__(self, other: Scores) -> Scores:
        return Scores(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        """The counts in field order."""
        return (self.tp, self.fp, self.fn, self.organic, self.organic_spam, self.posts)

    @property
    def precision(self) -> float:
        """Campaign members found that are campaign posts (1.0 when none was found)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """Campaign posts found (1.0 when there were none)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def organic_spam_share(self) -> float:
        """Organic posts flagged as spam."""
        return self.organic_spam / self.organic if self.organic else 0.0


def score(truth: dict[str, str | None], flags: dict[str, Flag]) -> Scores:
    """Compare final flags with the truth (post id -> campaign, None for organic)."""
    tp = fp = fn = organic = organic_spam = 0
    for post_id, campaign in truth.items():
        flag = flags[post_id]
        found = flag.campaign_id is not None
        if campaign is not None:
            tp += found
            fn += not found
        else:
            fp += found
            organic += 1
            organic_spam += flag.spam
    return Scores(tp, fp, fn, organic, organic_spam, len(truth))


def run(detector: CampaignDetector, batches: Iterable[Sequence[Post]]) -> dict[str, Flag]:
    """Feed the batches; the final flag of every post (later revisions win)."""
    flags: dict[str, Flag] = {}
    for batch in batches:
        observation = detector.observe(batch)
        for flag in observation.flags:
            flags[flag.id] = flag
        for flag in observation.revisions:
            flags[flag.id] = flag
    return flags


def generated_batches(
    seed: int, count: int, *, rate_per_min: float = 2_000, batch: int = 500, share: float = 0.05
) -> tuple[list[list[Post]], dict[str, str | None]]:
    """Mock tweets with campaigns as the detector's batches, and their truth."""
    step = [0]
    seconds = batch * 60 / rate_per_min

    def clock() -> datetime:
        return START + timedelta(seconds=step[0] * seconds)

    labels: dict[str, Label] = {}
    feed = CampaignMock(MockGenerator(seed=seed, clock=clock), share, clock=clock,
                        on_label=lambda label: labels.__setitem__(label.id, label))  # fmt: skip
    batches: list[list[Post]] = []
    truth: dict[str, str | None] = {}
    for i in range(math.ceil(count / batch)):
        step[0] = i
        tweets = feed.read(min(batch, count - i * batch))
        batches.append([post_from_tweet(t) for t in tweets])
        for tweet in tweets:
            label = labels.get(tweet.id)
            truth[tweet.id] = label.campaign if label is not None else None
    return batches, truth


def evaluate_generated(seed: int, count: int = 40_000, **kwargs: float) -> Scores:
    """Scores on ``count`` generated tweets (see the module docstring)."""
    batches, truth = generated_batches(seed, count, **kwargs)  # type: ignore[arg-type]
    return score(truth, run(CampaignDetector(), batches))


def load_posts(path: Path) -> tuple[list[Post], dict[str, str | None]]:
    """A hand-written file: its posts in time order and their truth."""
    posts: list[Post] = []
    truth: dict[str, str | None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        created = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
        posts.append(Post(row["id"], row["author_id"], created.timestamp(), row["text"],
                          row.get("followers"), bool(row.get("verified", False))))  # fmt: skip
        truth[row["id"]] = row.get("campaign")
    posts.sort(key=lambda p: (p.created_at, p.id))
    return posts, truth


def evaluate_file(path: Path, batch: int = 20) -> Scores:
    """Scores on a hand-written file, fed in batches of ``batch`` posts."""
    posts, truth = load_posts(path)
    batches = [posts[i : i + batch] for i in range(0, len(posts), batch)]
    return score(truth, run(CampaignDetector(), batches))


def cost_per_1000(seed: int = 1, count: int = 40_000, batch: int = 1_000, rounds: int = 3) -> float:
    """CPU milliseconds of ``observe`` per 1,000 mock tweets (batches of ``batch``), best of
    ``rounds``; the tweets are made and converted to ``Post``s before the clock starts."""
    batches, _ = generated_batches(seed, count, batch=batch)
    best = math.inf
    for _ in range(rounds):
        detector = CampaignDetector()
        start = time.process_time()
        for posts in batches:
            detector.observe(posts)
        best = min(best, time.process_time() - start)
    return best * 1_000_000 / count


def stage_costs(
    seed: int = 1, count: int = 40_000, batch: int = 5_000, rounds: int = 5
) -> dict[str, float]:
    """CPU milliseconds per 1,000 mock tweets (batches of ``batch``, best of ``rounds``) of
    ``sign`` alone, of the numpy reference ``_sign_numpy`` alone, and of ``observe_columns``
    (what the processor calls; the columns are built before the clock starts)."""
    batches, _ = generated_batches(seed, count, batch=batch)
    columns = [PostColumns.of_posts(posts) for posts in batches]
    texts = [c.texts for c in columns]

    def best(step: Callable[[], object]) -> float:
        fastest = math.inf
        for _ in range(rounds):
            start = time.process_time()
            step()
            fastest = min(fastest, time.process_time() - start)
        return fastest * 1_000_000 / count

    def observe_all() -> None:
        detector = CampaignDetector()
        for batch_columns in columns:
            detector.observe_columns(batch_columns)

    campaigns.sign(texts[0])  # the compiled signer's tables are built once per process
    return {
        "sign": best(lambda: [campaigns.sign(t) for t in texts]),
        "sign, numpy reference": best(lambda: [campaigns._sign_numpy(t) for t in texts]),
        "observe_columns": best(observe_all),
    }


def _line(name: str, s: Scores) -> str:
    return (
        f"{name:<34} posts {s.posts:>7,}  campaign posts {s.tp + s.fn:>6,}  "
        f"P {s.precision:.3f}  R {s.recall:.3f}  "
        f"organic flagged spam {100 * s.organic_spam_share:.2f} %"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures of docs/campaigns.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--rate", type=float, default=2_000, help="generated tweets a minute")
    parser.add_argument("--batch", type=int, default=500, help="generated tweets a batch")
    parser.add_argument("--speed", action="store_true", help="also measure the cost per 1,000")
    args = parser.parse_args(argv)
    total = Scores()
    for seed in args.seeds:
        scores = evaluate_generated(seed, args.count, rate_per_min=args.rate, batch=args.batch)
        total += scores
        print(_line(f"generated, seed {seed}", scores))
    if args.seeds:
        print(_line("generated, all seeds", total))
    for path in sorted(DATASETS.glob("*.jsonl")):
        print(_line(f"{path.relative_to(REPO_ROOT)}", evaluate_file(path)))
    if args.speed:
        for batch in (100, 1_000, 5_000):
            ms = cost_per_1000(batch=batch)
            print(f"cost: {ms:.1f} CPU ms per 1,000 mock tweets in batches of {batch:,}")
        for batch, count in ((5_000, 40_000), (20_000, 200_000)):
            for name, ms in stage_costs(count=count, batch=batch).items():
                print(f"cost of {name}: {ms:.2f} CPU ms per 1,000 mock tweets in batches of "
                      f"{batch:,} ({count:,} tweets)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
