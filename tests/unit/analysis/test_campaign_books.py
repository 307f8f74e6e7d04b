"""The campaign detector's books stay consistent with its kept posts, whatever the batching:
every kept post in a cluster is one of that cluster's members, every cluster label of a kept post
has its cluster, and the (cluster, account) counts are exactly the kept posts'. A batch can join
several earlier clusters at once, one of them through another (cluster A meets B, and C meets
A): before the fix, merging C into A after A had gone into B dropped C's cluster and kept its
posts' labels, the counts drifted, and a later batch crashed the processor with a KeyError when
those posts left the window."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cryptosent.analysis.campaigns import (
    CampaignDetector,
    _linked_roots,
    post_columns_from_tweets,
)
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import CampaignMock

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def inconsistencies(detector: CampaignDetector) -> list[str]:
    """What in the detector's books disagrees with its kept posts."""
    seqs = np.arange(detector._oldest, detector._seq)
    slots = seqs % detector.max_posts
    labels, authors = detector._cluster[slots].tolist(), detector._author[slots].tolist()
    pairs = zip(labels, authors, strict=True)
    counts = Counter(label << 24 | author for label, author in pairs if label >= 0)
    found = []
    if dict(counts) != detector._pairs.as_dict():
        found.append("(cluster, account) counts")
    member_of = {
        seq: label
        for label, cluster in detector._clusters.items()
        for seq in cluster.members
        if seq >= detector._oldest
    }
    for seq, label in zip(seqs.tolist(), labels, strict=True):
        if label >= 0 and label not in detector._clusters:
            found.append(f"post {seq}: cluster {label} is gone")
        elif label >= 0 and member_of.get(seq) != label:
            found.append(f"post {seq}: not a member of its cluster {label}")
    return found


@pytest.mark.parametrize(("seed", "window", "max_posts"), [(0, 900.0, 20_000), (1, 60.0, 5_000)])
def test_books_stay_consistent_over_random_batches(
    seed: int, window: float, max_posts: int
) -> None:
    step = [0.0]

    def clock() -> datetime:
        step[0] += 0.002  # 30,000 posts a minute
        return START + timedelta(seconds=step[0])

    feed = CampaignMock(MockGenerator(seed=seed, clock=clock), 0.05, clock=clock)
    tweets = list(feed.read(30_000))
    rng = random.Random(seed)
    detector = CampaignDetector(window=window, max_posts=max_posts)
    first = 0
    while first < len(tweets):
        size = rng.choice([rng.randint(1, max_posts // 10), max_posts // 10, rng.randint(1, 50)])
        detector.observe_columns(post_columns_from_tweets(tweets[first : first + size]))
        first += size
        assert inconsistencies(detector) == [], f"after {first} posts"
    assert detector._oldest > 0  # posts left the window or the ring on the way


def test_linked_labels_go_under_the_lowest_of_their_set() -> None:
    # 384 went into 154 and 1667 met 384 (the batch that broke the books), plus a second set
    links = [(384, 154), (1667, 384), (1667, 1667), (50, 70), (90, 70)]
    assert _linked_roots(links) == {384: 154, 1667: 154, 70: 50, 90: 50}
    assert _linked_roots([(5, 5), (6, 6)]) == {}
