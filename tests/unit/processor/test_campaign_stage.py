"""The processor's campaign stage without servers: flags into the scored table, revisions of
earlier tweets with the batch, and catching up with what peers stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from cryptosent.analysis.campaigns import CampaignDetector, post_from_tweet
from cryptosent.batch import SCHEMA, Ranges, ScoredBatch
from cryptosent.model import Author, Tweet
from cryptosent.processor.campaigns import CampaignStage, StoredPost, stored_post

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TEMPLATE = "Huge news: $%s listing on a top exchange confirmed for Friday, load up now %s"


def shill(i: int, coin: str = "PEPE") -> Tweet:
    """Post i of one campaign, from its own low-reach account."""
    return Tweet(
        id=f"s{i}", text=TEMPLATE % (coin, "🚀" * (i % 3 + 1)),
        created_at=T0 + timedelta(seconds=i),
        author=Author(id=f"acct{i}", username=f"acct{i}", followers=3),
    )  # fmt: skip


def organic(i: int) -> Tweet:
    return Tweet(
        id=f"o{i}", text=f"thinking about my bitcoin position number {i} today honestly",
        created_at=T0 + timedelta(seconds=i),
        author=Author(id=f"person{i}", followers=400 + i),
    )  # fmt: skip


@dataclass
class Decoded:
    tweets: list[Tweet]
    ranges: Ranges = field(default_factory=dict)
    columns: None = None  # the stage reads `Tweet` objects when the batch has no columns


def score(decoded: Decoded) -> ScoredBatch:
    """A stand-in scorer: the tweets' ids in the storage schema, flags unset."""
    rows = [{"id": t.id, "coins": []} for t in decoded.tweets]
    return ScoredBatch(pa.Table.from_pylist(rows, schema=SCHEMA), [b""] * len(rows))


@dataclass
class FakePeers:
    """What peers stored, handed out once each."""

    pending: list[StoredPost] = field(default_factory=list)
    newest: list[float] = field(default_factory=list)
    own: list[Ranges] = field(default_factory=list)

    def read(self, newest: float, own: Ranges | None = None) -> list[StoredPost]:
        self.newest.append(newest)
        self.own.append(own or {})
        out, self.pending = self.pending, []
        return out


def flags(batch: ScoredBatch) -> list[tuple[str, bool, str | None]]:
    t = batch.table
    return list(
        zip(t.column("id").to_pylist(), t.column("spam").to_pylist(),
            t.column("campaign_id").to_pylist(), strict=True)
    )  # fmt: skip


def test_flags_go_into_the_table_and_a_growing_campaign_revises_its_first_posts() -> None:
    stage = CampaignStage(score, CampaignDetector())
    first = stage(Decoded([shill(0), shill(1), organic(2)]))
    # two accounts are no campaign yet
    assert flags(first) == [("s0", False, None), ("s1", False, None), ("o2", False, None)]
    assert first.revisions == []
    second = stage(Decoded([shill(i) for i in range(3, 8)]))
    assert flags(second) == [(f"s{i}", True, "cs0") for i in range(3, 8)]
    assert sorted(second.revisions) == [("s0", True, "cs0"), ("s1", True, "cs0")]


def test_posts_stored_by_peers_count_and_disagreeing_stored_flags_are_revised() -> None:
    peers = FakePeers()
    stage = CampaignStage(score, CampaignDetector(), peers)  # type: ignore[arg-type]
    # a peer stored five posts of a campaign as organic (it had seen only its own)
    peers.pending = [StoredPost(post_from_tweet(shill(i)), False, None) for i in range(5)]
    batch = stage(Decoded([shill(5), organic(6)], {0: (10, 11)}))
    assert flags(batch) == [("s5", True, "cs0"), ("o6", False, None)]
    assert sorted(batch.revisions) == [(f"s{i}", True, "cs0") for i in range(5)]
    # stored flags that agree with the detector need no revision; seen posts are no-ops
    peers.pending = [StoredPost(post_from_tweet(shill(7)), True, "cs0")]
    again = stage(Decoded([shill(5), organic(8)], {0: (12, 13), 1: (4, 4)}))
    assert flags(again) == [("s5", True, "cs0"), ("o8", False, None)]
    assert again.revisions == []
    assert peers.newest[0] == float("-inf") and peers.newest[1] == (T0.timestamp() + 6)
    # its own offsets are skipped: the last batches' ranges, merged per partition
    assert peers.own == [{}, {0: (10, 11)}]
    stage(Decoded([organic(9)], {0: (14, 20)}))
    assert peers.own[-1] == {0: (10, 13), 1: (4, 4)}


def test_a_stored_row_reads_as_the_tweet_it_was() -> None:
    tweet = shill(4)
    row = ("s4", "acct4", "acct4", 3, None, tweet.created_at, tweet.text, None, True, "cs0", 77)
    assert stored_post(row) == StoredPost(post_from_tweet(tweet), True, "cs0", "77")
    anonymous = ("x1", None, None, None, None, T0, "hi", "r9", False, None, 78)
    post = stored_post(anonymous).post
    assert (post.author_id, post.followers, post.retweet) == ("?x1", None, True)


def test_the_stage_makes_the_compiled_signer_before_the_first_batch() -> None:
    # its tables take 0.14 CPU s: start-up, not the first batch's latency
    from cryptosent.analysis import campaigns

    campaigns._compiled_signer.cache_clear()
    CampaignStage(score, CampaignDetector())
    assert campaigns._compiled_signer.cache_info().currsize == 1
