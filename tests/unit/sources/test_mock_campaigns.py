"""The mock feed with coordinated campaigns: share, bursts, many accounts, ground truth,
determinism, and the organic feed left as the generator makes it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cryptosent.ingest import to_message
from cryptosent.sources.mock import MockGenerator
from cryptosent.sources.mock_campaigns import SPAM_BOTS, CampaignMock, Label, mock_feed

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
N = 20_000


def clock() -> datetime:
    return NOW


def feed(seed: int, share: float = 0.05) -> tuple[CampaignMock, list[Label]]:
    labels: list[Label] = []
    return CampaignMock(MockGenerator(seed=seed, clock=clock), share, clock=clock,
                        on_label=labels.append), labels  # fmt: skip


def test_campaigns_take_their_share_in_bursts_from_many_accounts() -> None:
    mix, labels = feed(3)
    tweets = mix.read(N)
    by_id = {t.id: t for t in tweets}
    assert len(by_id) == N  # ids never collide with the generator's
    campaign = [label for label in labels if label.kind == "campaign"]
    assert 0.03 <= len(campaign) / N <= 0.08
    assert 0.02 <= sum(label.kind == "spam" for label in labels) / N <= 0.06
    assert {label.campaign for label in labels if label.kind == "spam"} == {SPAM_BOTS}
    index = {t.id: i for i, t in enumerate(tweets)}
    for name, count in Counter(label.campaign for label in campaign).items():
        posts = [by_id[label.id] for label in campaign if label.campaign == name]
        accounts = {p.author.id for p in posts if p.author}
        assert len(accounts) >= min(10, count // 3), name
        assert all(p.author and not p.author.verified for p in posts)
        assert sum((p.author.followers or 0) < 50 for p in posts if p.author) >= len(posts) / 2
        texts = {p.text for p in posts}
        assert len(texts) >= 0.8 * len(posts)  # small edits: hardly two alike
        # a burst: the campaign's posts lie within a stretch of the feed
        positions = sorted(index[p.id] for p in posts)
        assert positions[-1] - positions[0] < 0.5 * N or count < 20, name
    started = {c.id for c in mix.campaigns}
    assert set(Counter(label.campaign for label in campaign)) <= started
    assert all(c.posts >= 20 and 0 < c.density < 1 for c in mix.campaigns)


def test_the_organic_feed_is_the_generators() -> None:
    mix, labels = feed(5)
    tweets = mix.read(5_000)
    campaign = {label.id for label in labels if label.kind == "campaign"}
    mixed = [t for t in tweets if t.id not in campaign]
    plain = MockGenerator(seed=5, clock=clock).tweets(len(mixed))
    assert [(t.text, t.author) for t in mixed] == [(t.text, t.author) for t in plain]


def test_deterministic_by_seed_and_batch_sizes() -> None:
    a, labels_a = feed(7)
    b, labels_b = feed(7)
    first = [to_message(t) for t in a.read(3_000) + a.read(2_000)]
    second = [to_message(t) for t in b.read(1) + b.read(4_999)]
    assert first == second and labels_a == labels_b


def test_no_share_no_campaigns() -> None:
    mix, labels = feed(2, share=0.0)
    mix.read(2_000)
    assert mix.campaigns == [] and all(label.kind == "spam" for label in labels)
    with pytest.raises(ValueError, match="outside"):
        CampaignMock(MockGenerator(seed=1), 0.9)


def test_mock_feed_writes_the_truth(tmp_path: Path) -> None:
    assert isinstance(mock_feed(1), MockGenerator)
    path = tmp_path / "truth.jsonl"
    source = mock_feed(1, 0.1, path)
    tweets = source.read(3_000)
    source.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    ids = {t.id for t in tweets}
    assert rows and all(row["id"] in ids for row in rows)
    assert {row["kind"] for row in rows} == {"campaign", "spam"}
    assert all(set(row) == {"id", "kind", "campaign"} for row in rows)
