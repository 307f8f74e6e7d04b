"""Campaign detection: normalisation, signatures, streaming clusters, revisions, account signals,
and the quality figures of docs/campaigns.md."""

from __future__ import annotations

import random

import pytest
from benchmarks.campaigns import DATASETS, evaluate_file, evaluate_generated, load_posts, run

from cryptosent.analysis.campaigns import (
    BANDS,
    BINS,
    CampaignDetector,
    Flag,
    Post,
    estimated_similarity,
    normalise,
    post_from_tweet,
    sign,
)
from cryptosent.model import Author, Tweet, decode_tweet

T0 = 1_780_000_000.0
TEMPLATE = "{c} is about to explode! Doxxed team, locked liquidity, the next 100x gem. Join now {u}"
EDITS = [
    "🚀 {c} is about to EXPLODE!!! Doxxed team, locked liquidity, the next 100x gem. Join now {u}",
    "{c} is about to explode. doxxed team + locked liquidity, the next 50x gem. join now {u} #gem",
    "Guys, {c} is about to explode! Doxxed team, locked liquidity, the next 100x gem. Join now {u}",
    "{c} is about to explode! Doxxed team, locked liquidity, the next 1000x gemm. Join now 🔥 {u}",
]


def campaign_posts(n: int, start: float = T0, followers: int = 3, prefix: str = "p") -> list[Post]:
    """``n`` near-identical posts from ``n`` accounts, one a second."""
    texts = [TEMPLATE, *EDITS]
    coins = ["$NEBULA", "$NBLX", "$FROGE"]
    return [
        Post(f"{prefix}{i:04d}", f"bot{prefix}{i}", start + i, texts[i % len(texts)].format(
            c=coins[i % len(coins)], u=f"https://t.co/x{i}"), followers)
        for i in range(n)
    ]  # fmt: skip


def organic_posts(n: int, start: float = T0, prefix: str = "o") -> list[Post]:
    """Different posts from accounts of ordinary reach."""
    words = ["bitcoin", "ethereum", "solana", "staking", "bridge", "fees", "wallet", "chart",
             "support", "resistance", "breakout", "dip", "macro", "rates", "etf", "flows",
             "halving", "miners", "validators"]  # fmt: skip
    rng = random.Random(prefix)
    return [
        Post(f"{prefix}{i:04d}", f"human{i}", start + i, " ".join(rng.sample(words, 9)), 500)
        for i in range(n)
    ]


def final(detector: CampaignDetector, batches: list[list[Post]]) -> dict[str, Flag]:
    return run(detector, batches)


def test_normalise_removes_what_templates_change() -> None:
    a, b, gm, cjk, stretched = normalise([
        "🚀 $PEPE is about to EXPLODE!!! Don't miss the next 100x https://t.co/abc @bob #memecoin",
        "$DOGE is about to explode 🔥🔥 dont miss the next 1,000x: https://t.co/zz @al #gem",
        "gm ☀️",
        "ビットコイン上昇中！🚀",
        "moooon sooooon",
    ])  # fmt: skip
    assert a == b == "$ is about to explode dont miss the next 0x ~ @ #"
    assert gm == "gm"
    assert cjk == "ビットコイン上昇中"
    assert stretched == "moon soon"
    assert normalise([]) == []


def test_signatures_estimate_similarity_and_are_stable() -> None:
    texts = [TEMPLATE.format(c="$A", u="https://t.co/1"), EDITS[1].format(c="$B", u="u"),
             "a completely different sentence about the weather in lisbon today"]  # fmt: skip
    first, again = sign(texts), sign(list(reversed(texts)))
    assert first.minhash.shape == (3, BINS) and first.bands.shape == (3, BANDS)
    # the same text gets the same signature whatever batch it is in (no per-process salt)
    assert (first.minhash[0] == again.minhash[2]).all()
    assert int(first.text_key[2]) == int(again.text_key[0])
    assert estimated_similarity(first.minhash[0], first.minhash[1]) >= 0.6
    assert estimated_similarity(first.minhash[0], first.minhash[2]) < 0.2
    assert list(first.links) == [1, 0, 0]
    assert list(first.words) == [14, 15, 10]
    empty = sign([])
    assert empty.minhash.shape == (0, BINS)


def test_a_campaign_is_found_and_named_by_its_earliest_post() -> None:
    posts = campaign_posts(12) + organic_posts(30)
    flags = final(CampaignDetector(), [posts[i : i + 7] for i in range(0, len(posts), 7)])
    in_campaign = {pid for pid, f in flags.items() if f.campaign_id}
    assert in_campaign == {p.id for p in posts if p.id.startswith("p")}
    assert {f.campaign_id for f in flags.values() if f.campaign_id} == {"cp0000"}
    assert all(f.spam for f in flags.values() if f.campaign_id)
    assert not any(f.spam for pid, f in flags.items() if pid.startswith("o"))


def test_flags_are_revised_when_the_cluster_becomes_a_campaign() -> None:
    detector = CampaignDetector(min_accounts=5)
    posts = campaign_posts(8)
    first = detector.observe(posts[:3])
    assert [f.campaign_id for f in first.flags] == [None, None, None]
    assert first.revisions == []
    second = detector.observe(posts[3:6])
    assert {f.campaign_id for f in second.flags} == {"cp0000"}
    assert sorted(f.id for f in second.revisions) == ["p0000", "p0001", "p0002"]
    assert all(f.spam and f.campaign_id == "cp0000" for f in second.revisions)
    third = detector.observe(posts[6:])
    assert third.revisions == []  # nothing changed for the earlier ones
    assert detector.campaigns() == {"cp0000": [p.id for p in posts]}


def test_order_and_batching_do_not_change_the_clusters() -> None:
    posts = campaign_posts(15) + campaign_posts(9, start=T0 + 5, prefix="q") + organic_posts(40)
    reference = final(CampaignDetector(), [posts])
    rng = random.Random(1)
    for size in (1, 4, 13):
        shuffled = posts[:]
        rng.shuffle(shuffled)
        flags = final(CampaignDetector(), [shuffled[i : i + size] for i in range(0, 64, size)])
        assert flags == reference, size


def test_observing_a_post_again_changes_nothing() -> None:
    detector = CampaignDetector()
    posts = campaign_posts(10)
    once = final(detector, [posts])
    again = detector.observe(posts[:4] + posts[:1])
    assert again.revisions == []
    assert again.flags == [once[p.id] for p in posts[:4] + posts[:1]]
    assert len(detector) == 10


def test_short_phrases_retweets_and_reach_keep_posts_organic() -> None:
    gm = [Post(f"g{i}", f"a{i}", T0 + i, "gm fam ☀️ LFG $SOL", 3) for i in range(30)]
    retweets = [Post(f"r{i}", f"b{i}", T0 + i, "RT @whale: " + TEMPLATE.format(c="$X", u="u"), 3)
                for i in range(30)]  # fmt: skip
    native = [p._replace(id=f"n{p.id}", text=p.text[11:], retweet=True) for p in retweets]
    # a headline quoted by many accounts of ordinary reach
    quotes = [p._replace(id=f"h{p.id}", author_id=f"c{p.author_id}", followers=800)
              for p in campaign_posts(30)]  # fmt: skip
    flags = final(CampaignDetector(), [gm, retweets, native, quotes])
    assert not any(f.campaign_id or f.spam for f in flags.values())


def test_a_cluster_needs_enough_accounts_within_the_window() -> None:
    one_account = [p._replace(author_id="same") for p in campaign_posts(12)]
    flags = final(CampaignDetector(repeat_limit=99), [one_account])
    assert not any(f.campaign_id for f in flags.values())
    spread = [p._replace(created_at=T0 + i * 3_600) for i, p in enumerate(campaign_posts(12))]
    assert not any(f.campaign_id for f in final(CampaignDetector(), [spread]).values())


def test_account_signals() -> None:
    # the same text again and again: a bot, and all its kept posts are revised to spam
    repeat = [Post(f"x{i}", "copier", T0 + i, "Check out my channel for signals", 900)
              for i in range(3)]  # fmt: skip
    detector = CampaignDetector()
    first = detector.observe(repeat[:2])
    assert not any(f.spam for f in first.flags)
    third = detector.observe(repeat[2:])
    assert third.flags[0].spam and {f.id for f in third.revisions} == {"x0", "x1"}
    # a low-reach account posting mostly links; a link-only post from one
    links = [Post(f"l{i}", "linker", T0 + i, f"see https://t.co/{i} now and more words here", 5)
             for i in range(5)]  # fmt: skip
    link_only = Post("lo", "someone", T0, "$PEPE 🚀 https://t.co/zz", 2)
    flags = final(CampaignDetector(), [links, [link_only]])
    assert all(flags[p.id].spam for p in links) and flags["lo"].spam
    # the same from accounts of ordinary reach: organic
    flags = final(CampaignDetector(), [[p._replace(followers=400) for p in links]])
    assert not any(f.spam for f in flags.values())


def test_posts_leave_the_window_and_the_ring() -> None:
    detector = CampaignDetector(window=60, max_posts=50)
    for i in range(10):
        detector.observe(organic_posts(20, start=T0 + i * 30, prefix=f"b{i}-"))
    assert len(detector) <= 50
    old = organic_posts(1, prefix="b0-")[0]
    assert detector.observe([old]).flags == [Flag(old.id, False, None)]
    with pytest.raises(ValueError, match="max_posts"):
        detector.observe(organic_posts(60, start=T0 + 10_000))


def test_accounts_that_left_the_window_are_forgotten() -> None:
    detector = CampaignDetector(window=10, max_posts=40)
    first = campaign_posts(8, start=T0, prefix="a")
    detector.observe(first)
    for i in range(1, 60):  # 8 new accounts a batch, the window holds two batches
        detector.observe(organic_posts(8, start=T0 + 6 * i, prefix=f"z{i}-"))
    assert len(detector._author_code) <= 2 * 65_536
    late = campaign_posts(8, start=T0 + 400, prefix="b")
    flags = final(detector, [late])
    assert {f.campaign_id for f in flags.values()} == {"cb0000"}
    forgetful = CampaignDetector(window=10, max_posts=40)
    forgetful.observe(first)
    for i in range(1, 5):
        forgetful.observe(organic_posts(8, start=T0 + 6 * i, prefix=f"z{i}-"))
    forgetful._forget_authors()  # what happens once codes pile up
    assert len(forgetful._author_code) <= 16
    assert final(forgetful, [late]) == flags


def test_post_from_tweet() -> None:
    tweet = decode_tweet(b'{"id": "1", "text": "hi", "created_at": "2026-01-01T00:00:00Z"}')
    post = post_from_tweet(tweet)
    assert post.author_id == "?1" and post.followers is None and not post.retweet
    tweet = Tweet("2", "RT @a: hi", tweet.created_at, Author("9", "a", 12, True), retweet_of="1")
    post = post_from_tweet(tweet)
    assert (post.author_id, post.followers, post.verified, post.retweet) == ("9", 12, True, True)
    assert post.created_at == tweet.created_at.timestamp()


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError):
        CampaignDetector(threshold=0)
    with pytest.raises(ValueError):
        CampaignDetector(min_accounts=1)


# ------------------------------------------------------------------ figures of docs/campaigns.md

TOLERANCE = 0.01
# (seed, precision, recall, organic flagged as spam at most) on 40,000 generated tweets; seeds
# 1 to 3 were used to set the parameters, these were not
GENERATED = [(4, 1.000, 0.99, 0.001), (5, 1.000, 0.99, 0.001)]


@pytest.mark.parametrize(("seed", "precision", "recall", "organic_spam"), GENERATED)
def test_generated_figures_hold(
    seed: int, precision: float, recall: float, organic_spam: float
) -> None:
    scores = evaluate_generated(seed)
    assert scores.precision >= precision - TOLERANCE, scores
    assert scores.recall >= recall - TOLERANCE, scores
    assert scores.organic_spam_share <= organic_spam + 0.002, scores


def test_handwritten_figures_hold() -> None:
    path = DATASETS / "handwritten.jsonl"
    posts, truth = load_posts(path)
    assert len(posts) >= 130 and sum(c is not None for c in truth.values()) >= 40
    scores = evaluate_file(path)
    assert scores.precision >= 1.0 - TOLERANCE and scores.recall >= 1.0 - TOLERANCE, scores
    assert scores.organic_spam_share <= 0.01, scores
