"""Coins and voices: what coin linking and campaign detection cost per 1,000 tweets.

``measure(count)`` is the ``coins + campaigns`` stage of ``cryptosent bench``: CPU milliseconds
of this process per 1,000 mock tweets (5 % coordinated campaigns, as the demo's feed), so other
jobs on a shared machine do not count. The detector is timed alone (with the tweets' columns it
reads), batch by batch as the processor calls it; its catch-up read of other processors' rows
from PostgreSQL (0.1-0.2 ms per 1,000 tweets) is in ``benchmarks/campaign_stage.py``, which
needs the checkout.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptosent.analysis.campaigns import (
    CampaignDetector,
    post_columns_from_tweets,
    post_from_tweet,
)
from cryptosent.bench.coins import measure as measure_coins


def measure(
    count: int = 50_000, batch: int = 2_000, rate_per_min: float = 20_000.0
) -> dict[str, Any]:
    """``coins_ms_per_1000``, ``campaigns_ms_per_1000`` and the share of posts flagged."""
    from cryptosent.sources.mock import MockGenerator
    from cryptosent.sources.mock_campaigns import CampaignMock

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    produced = [0]

    def clock() -> datetime:
        return start + timedelta(seconds=produced[0] * 60 / rate_per_min)

    feed = CampaignMock(MockGenerator(seed=5, clock=clock), 0.05, clock=clock)
    batches = []
    while produced[0] < count:
        tweets = feed.read(min(batch, count - produced[0]))
        produced[0] += len(tweets)
        batches.append(tweets)
    result: dict[str, Any] = dict(measure_coins([t.text for b in batches for t in b], rounds=3))
    # one-time costs (numpy loads numpy.ma on its first unique()) are not per tweet
    CampaignDetector().observe([post_from_tweet(t) for t in batches[0][:50]])
    detector = CampaignDetector()
    flagged = 0
    cpu = 0.0
    for tweets in batches:
        begin = time.process_time()
        # as the processor's campaign stage calls it: the tweets' columns, then the detector
        spam, _campaigns, _revised = detector.observe_columns(post_columns_from_tweets(tweets))
        cpu += time.process_time() - begin
        flagged += int(spam.sum())
    result["campaigns_ms_per_1000"] = cpu * 1_000_000 / count
    result["campaigns_flagged_share"] = flagged / count
    return result
