"""The compiled core's long batch calls let the GIL go while they work (the processor's writer
threads run meanwhile: docs/benchmarks.md, "Hot path: round seven"): a Python thread counting
beside the call keeps counting, where it would stand still if the call held the GIL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from cryptosent.analysis import campaigns
from cryptosent.analysis._native import CORE
from cryptosent.analysis.coins import coin_mentions_many
from cryptosent.analysis.sentiment import get_analyzer
from cryptosent.sources.mock import MockGenerator

pytestmark = pytest.mark.skipif(CORE is None, reason="the compiled core is not built")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """200,000 distinct posts (20,000 mock posts, each ten times with a different ending; a
    batch's repeated texts are worked on once): each call below takes a tenth of a second or
    more."""
    posts = [tweet.text for tweet in MockGenerator(seed=5).tweets(20_000)]
    return [f"{text} {copy}" for copy in range(10) for text in posts]


SHARE = 0.15
"""The least share of its speed the counting thread keeps beside a call that lets the GIL go."""


def _share_counted_beside(call: Callable[[], object]) -> float:
    """How fast a Python thread counted while ``call`` ran, as a share of how fast it counts
    while this thread sleeps; the best of three tries (on two cores another test's processes can
    take the counter's core for a moment: coin matching read 0.42 to 0.51 alone and 0.21 once in
    a full `make test` on a slow machine, hence the bar at 0.15). A compiled call that holds the
    GIL leaves the counter near 0 in every try: it never lets the counter's thread run."""
    return max(_share_once(call) for _ in range(3))


def _share_once(call: Callable[[], object]) -> float:
    count, running = [0], [True]

    def counter() -> None:
        while running[0]:
            count[0] += 1

    thread = threading.Thread(target=counter, daemon=True)
    thread.start()
    try:
        before, started = count[0], time.perf_counter()
        time.sleep(0.2)
        alone = (count[0] - before) / (time.perf_counter() - started)
        before, started = count[0], time.perf_counter()
        call()
        beside = (count[0] - before) / (time.perf_counter() - started)
    finally:
        running[0] = False
        thread.join()
    return beside / alone


def test_scoring_lets_the_gil_go(texts: list[str]) -> None:
    learned, vader = get_analyzer("learned"), get_analyzer("vader")
    langs = ["en"] * len(texts)
    columns = learned.columns  # type: ignore[attr-defined]
    assert columns(texts[:100], langs[:100], vader) is not None  # the compiled path
    columns(texts, langs, vader)  # the engines' caches filled: no call back into Python

    assert _share_counted_beside(lambda: columns(texts, langs, vader)) > SHARE


def test_coin_matching_lets_the_gil_go(texts: list[str]) -> None:
    coin_mentions_many(texts)

    assert _share_counted_beside(lambda: coin_mentions_many(texts)) > SHARE


def test_campaign_signing_lets_the_gil_go(texts: list[str]) -> None:
    assert campaigns._compiled_signer() is not None

    assert _share_counted_beside(lambda: campaigns.sign(texts)) > SHARE


def test_texts_with_tokens_new_to_the_caches_are_scored_after_the_others_alike() -> None:
    # a text with a non-ASCII token no engine has seen waits, while the GIL is let go, for a
    # second pass with it: its row is the one text-at-a-time scoring gives, between rows scored
    # in the first pass
    from cryptosent.analysis.learned.analyzers import LABEL_CODES, LearnedAnalyzer

    learned, vader = LearnedAnalyzer(native=True), get_analyzer("vader")
    python = LearnedAnalyzer(native=False)
    known = [tweet.text for tweet in MockGenerator(seed=9).tweets(300)]
    learned.columns(known, [None] * len(known), vader)  # their tokens are cached now
    fresh = [f"Çàfé{i} to the moon 🚀 ŝtrange{i}wörd, not bad! Σίγμα{i}" for i in range(300)]
    texts = [t for pair in zip(known, fresh, strict=True) for t in pair]

    columns = learned.columns(texts, [None] * len(texts), vader)

    assert columns is not None
    n, floats = len(texts), memoryview(columns.floats).cast("d")
    for i, (text, judged) in enumerate(zip(texts, python.judge_many(texts), strict=True)):
        assert [floats[k * n + i] for k in range(5)] == [*judged.scores, judged.confidence]
        assert LABEL_CODES[columns.labels[i]] == judged.label
        assert [floats[k * n + i] for k in range(5, 9)] == list(vader.scores(text)), text
