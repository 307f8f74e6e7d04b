"""The campaign detector's compiled path (rust/vader_core/src/campaigns.rs) gives exactly what
its numpy path gives: the signatures of 50,000 generated posts and of the texts where Unicode,
the substitutions and the collapsing are most fragile, and the detector's verdicts on generated
streams with campaigns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from benchmarks.campaigns import generated_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosent.analysis import campaigns
from cryptosent.analysis.campaigns import BANDS, BINS, CampaignDetector, PostColumns, Signatures

COMPILED_SIMILAR_ROWS = campaigns._SIMILAR_ROWS
COMPILED_BAND_GROUPS = campaigns._BAND_GROUPS
COMPILED_HOOKS = ("_SIMILAR_ROWS", "_BAND_GROUPS", "_BAND_BUCKETS", "_LINK_BATCH", "_PAIR_COUNTS",
                  "_CLUSTER_BOOKS", "_TEXT_FACTS", "_STRING_TABLE")  # fmt: skip
"""The compiled core's parts the detector uses when installed (None: the numpy path)."""
pytestmark = pytest.mark.skipif(
    campaigns._compiled_signer() is None
    or any(getattr(campaigns, hook) is None for hook in COMPILED_HOOKS),
    reason="no compiled core",
)


@contextmanager
def numpy_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within it, detectors made and batches observed take the numpy path throughout."""
    with monkeypatch.context() as patch:
        patch.setattr(campaigns, "_compiled_signer", lambda: None)
        for hook in COMPILED_HOOKS:
            patch.setattr(campaigns, hook, None)
        yield


HARD = [
    "", " ", "'", "''", "’", "!!!", " , ; ", "...", "\n", "\r", "\r\n", "a\nb", "a\r\nb\rc",
    "ΟΔΟΣ ΣΑΣ Σ", "ΑΣ. Σ", "aΣ'", "Σ̈a", "ΌΣΟΣ", "İstanbul", "IŞIK ıi İİİ", "ǅ ǈ ǋ", "ẞ ß",
    "K Å Ω", "ΐ ΰ ﬃ", "ⅷ Ⅻ ² ³ ½", "١٢٣ ٤٥٦ ۷", "१२३ ๓", "𝟏𝟐 𝟎", "٣$btc", "$٣x", "$²x",
    "$_a $a_1 $é $ß $Σ", "$$btc", "$ btc", "$1btc $btc1", "@@a", "@_", "@ a", "@é", "a@b.c",
    "##a", "#_", "#1", "#Σ", "http://", "https://", "http:// x", "https://x", "httpS://X.COM/a b",
    "hTTps://t.co/x?y=1#z @a", "www.", "www.a", "WWW.Ex.com/a", "xhttp://a", "@xhttp://a",
    "#www.x", "$www.x", "1www.x", "http://a\u00a0b", "http://a\u2003b", "http://a\u200bb",
    "1,000.5:30x", "1,,2..3", ",5", "0.", "1e5", "v2.0.1", "😀🚀 moon!!!", "🇺🇸🇬🇧", "👨‍👩‍👧",
    "☕️ ✨ ❤️", "比特币 涨了 100%", "ビットコイン上昇中！🚀", "비트코인 가즈아", "مرحبا بالعالم",
    "שלום עולם", "\u202eabc\u202c", "a\u200db", "a\ufe0fb", "ｂｔｃ ＢＴＣ ！ １２", "×÷", "©®™",
    "aaaa bbbbb ccc", "aa  aa", "a   b", " leading", "trailing ", "a\tb\x0bc\x0cd\x1ce\x85f",
    "\u2028\u2029", "a'''b", "don't won’t", "moooon sooooon", "x" * 5000, "ab " * 2000,
    "$SOL " * 300, "RT @bob: $BTC to the moon https://t.co/x", "\x00a\x00", "\U0010ffff \ue000",
]  # fmt: skip
FRAGMENTS = st.sampled_from(
    ["a", "B", "z", "Σ", "σ", "ς", "İ", "ı", "I", "ǅ", "ß", "ẞ", "é", "e\u0301", "\u0345",
     "\u00ad", "'", "’", ".", ",", ":", "-", "_", "$", "@", "#", "~", "0", "7", "١", "²", "𝟏",
     "http", "https", "://", "www.", " ", "  ", "\n", "\r", "\t", "\u00a0", "\u3000", "🚀",
     "\ufe0f", "\u200d", "比", "ア", "ع", "!", "xx", "xxx", "aaaa"]
)  # fmt: skip


@pytest.fixture
def numpy_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The detector without the compiled core."""
    with numpy_path(monkeypatch):
        yield


def assert_same(compiled: Signatures, reference: Signatures) -> None:
    for name, got, want in zip(Signatures._fields, compiled, reference, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape, name
        bad = np.flatnonzero((got != want).reshape(len(want), -1).any(axis=1))
        assert len(bad) == 0, (name, bad[:10])


def test_compiled_signatures_match_numpy_on_50000_generated_posts() -> None:
    batches, _ = generated_batches(7, 50_000, batch=5_000)
    for posts in batches:
        texts = [p.text for p in posts]
        assert_same(campaigns.sign(texts), campaigns._sign_numpy(texts))


def test_compiled_signatures_match_numpy_on_hard_texts() -> None:
    assert_same(campaigns.sign(HARD), campaigns._sign_numpy(HARD))
    assert_same(campaigns.sign(HARD[::-1]), campaigns._sign_numpy(HARD[::-1]))
    for text in HARD:  # alone too: a text's row does not depend on its batch
        assert_same(campaigns.sign([text]), campaigns._sign_numpy([text]))
    signed = campaigns.sign(tuple(HARD))  # any sequence
    assert signed.minhash.shape == (len(HARD), BINS) and signed.bands.shape == (len(HARD), BANDS)


@pytest.mark.parametrize(
    "template",
    ["${c} @{c} #{c}{c}{c} 1{c} http://a{c}b",  # the tables: \w, \d, \s, word, lower
     "ΑΣ{c}Σ {c}Σ"],  # Python's own str.lower (final sigma)
)  # fmt: skip
def test_compiled_signatures_match_numpy_for_every_code_point(template: str) -> None:
    """The compiled signer reads Python's Unicode tables code point by code point: all of them."""
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    for start in range(0, len(chars), 50_000):
        texts = [template.format(c=c) for c in chars[start : start + 50_000]]
        assert_same(campaigns.sign(texts), campaigns._sign_numpy(texts))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(FRAGMENTS, max_size=20).map("".join), min_size=1, max_size=6))
def test_compiled_signatures_match_numpy_on_fragile_texts(texts: list[str]) -> None:
    assert_same(campaigns.sign(texts), campaigns._sign_numpy(texts))


def test_empty_texts_in_a_row_keep_the_rows_after_them() -> None:
    texts = ["a b", "", "", "'", "hello world from the other side", ""]
    assert campaigns.normalise(texts) == ["a b", "", "", "", "hello world from the other side", ""]
    alone = campaigns._sign_numpy([texts[4]])
    for signatures in (campaigns.sign(texts), campaigns._sign_numpy(texts)):
        assert (signatures.minhash[4] == alone.minhash[0]).all()
        assert list(signatures.words) == [2, 0, 0, 0, 6, 0]


def test_a_lone_surrogate_fails_as_in_numpy() -> None:
    texts = ["fine", "moon \ud83d soon"]
    with pytest.raises(UnicodeEncodeError):
        campaigns._sign_numpy(texts)
    with pytest.raises(UnicodeEncodeError):
        campaigns.sign(texts)


def test_band_groups_match_numpy(numpy_only: None) -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 40, size=8 * 500).astype(np.uint64)  # many repeats, and 0
    reference = campaigns._band_groups(keys)
    numpy_distinct, numpy_group, numpy_first, numpy_last = reference
    compiled = COMPILED_BAND_GROUPS(keys)
    distinct, group, first, last = (np.frombuffer(b, dtype=d) for b, d in zip(
        compiled, (np.uint64, np.int64, np.int64, np.int64), strict=True))  # fmt: skip
    assert sorted(distinct.tolist()) == numpy_distinct.tolist()
    assert (distinct[group] == keys).all() and (numpy_distinct[numpy_group] == keys).all()
    by_key = {int(k): (int(f), int(la)) for k, f, la in zip(distinct, first, last, strict=True)}
    assert by_key == {
        int(k): (int(f), int(la))
        for k, f, la in zip(numpy_distinct, numpy_first, numpy_last, strict=True)
    }


def test_similar_rows_match_numpy(numpy_only: None) -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 4, size=(300, BINS)).astype(np.uint32)
    a[rng.random(a.shape) < 0.3] = 0xFFFFFFFF  # empty bins
    a[7] = 0xFFFFFFFF  # all empty
    b = a.copy()
    b[rng.random(b.shape) < 0.2] = 0xFFFFFFFF
    rows_a = rng.integers(0, 300, size=2_000)
    rows_b = rng.integers(0, 300, size=2_000)
    rows_a[:3] = rows_b[:3] = 7
    for threshold in (0.6, 0.5, 1.0, 0.01):
        detector = CampaignDetector(threshold=threshold)
        reference = detector._similar(a, rows_a, b, rows_b)
        compiled = COMPILED_SIMILAR_ROWS(a, rows_a, b, rows_b, threshold)
        assert np.frombuffer(compiled, dtype=bool).tolist() == reference.tolist()
    with pytest.raises(ValueError, match="out of range"):
        COMPILED_SIMILAR_ROWS(a, rows_a + 300, b, rows_b, 0.6)


def test_band_buckets_match_the_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = campaigns._Buckets()
    monkeypatch.setattr(campaigns, "_BAND_BUCKETS", None)
    reference = campaigns._Buckets()
    rng = np.random.default_rng(9)
    for step in range(30):
        keys = rng.integers(0, 3_000, size=400).astype(np.uint64)  # repeats, and key 0
        seqs = np.arange(step * 400, (step + 1) * 400, dtype=np.int64)
        asked = rng.integers(0, 3_000, size=500).astype(np.uint64)
        assert compiled.last_posts(asked).tolist() == reference.last_posts(asked).tolist()
        for buckets in (compiled, reference):
            buckets.update(keys, seqs)
            if step % 7 == 6:
                buckets.forget_before(step * 400 - 1_000)
        assert len(compiled) == len(reference)
    every = np.arange(3_000, dtype=np.uint64)
    assert compiled.last_posts(every).tolist() == reference.last_posts(every).tolist()
    assert compiled.last_posts(every)[0] == -1  # a band of empty bins is never kept


def test_buckets_of_posts_long_gone_are_let_go() -> None:
    rng = np.random.default_rng(4)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    detector = CampaignDetector(window=1.0, max_posts=500)
    for batch in range(45):  # 22,500 posts of their own words: 8 new band keys each
        words = ["".join(w) for w in rng.choice(letters, size=(500 * 12, 6))]
        texts = [" ".join(words[i * 12 : (i + 1) * 12]) for i in range(500)]
        columns = PostColumns(
            [f"{batch}-{i}" for i in range(500)], [f"a{batch}-{i}" for i in range(500)],
            np.full(500, 1e9 + 10 * batch), texts, np.full(500, 10, dtype=np.int64),
            np.zeros(500, dtype=bool), np.zeros(500, dtype=bool))  # fmt: skip
        detector.observe_columns(columns)
        assert len(detector._buckets) <= 4 * BANDS * 4096 + 8 * 500
    assert len(detector._buckets) < 45 * 500 * 8 / 2  # they were let go


def verdicts(batches: list[PostColumns], **parameters: float) -> list[object]:
    """Every batch's flags and revisions, and the campaigns at the end."""
    detector = CampaignDetector(**parameters)  # type: ignore[arg-type]
    out: list[object] = []
    for columns in batches:
        flags = detector.observe_columns(columns)
        out.append((flags.spam.tolist(), flags.campaign_ids, flags.revisions))
    out.append(detector.campaigns())
    return out


STREAMS = [
    (11, 1_000, {}),
    (12, 250, {"window": 120.0, "max_posts": 2_000}),
    (13, 500, {"threshold": 0.5, "min_accounts": 3}),
]


@pytest.mark.parametrize(("seed", "batch", "parameters"), STREAMS)
def test_verdicts_are_the_same_with_and_without_the_compiled_path(
    seed: int, batch: int, parameters: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    batches, truth = generated_batches(seed, 12_000, batch=batch)
    columns = [PostColumns.of_posts(posts) for posts in batches]
    compiled = verdicts(columns, **parameters)
    with numpy_path(monkeypatch):
        reference = verdicts(columns, **parameters)
    assert compiled == reference
    assert compiled[-1] and any(c is not None for c in truth.values())  # campaigns were found


def detector_state(detector: CampaignDetector) -> dict[str, object]:
    """Everything the detector keeps between batches, comparable with ``==``."""
    rings = ("_ts", "_author", "_low", "_link", "_link_only", "_repeat", "_cluster", "_signature",
             "_spam", "_campaign", "_posts", "_links", "_repeats", "_last_text", "_author_low",
             "_bot")  # fmt: skip
    return {
        "clusters": {
            label: (c.earliest, c.members, c.accounts, c.low, c.campaign)
            for label, c in detector._clusters.items()
        },
        "pairs": detector._pairs.as_dict(),
        "ids": detector._ids,
        "index": detector._index.as_dict(),
        "numbers": (detector._seq, detector._oldest, detector._newest, len(detector._buckets)),
        "authors": detector._author_code.as_dict(),
        "renamed": detector._renamed,
        "merged": [m.tolist() for m in detector._merged],
        **{name: getattr(detector, name).tobytes() for name in rings},
    }


LONG_STREAMS = [  # the processor's batches; a ring that wraps; a short window; a loose threshold
    (21, 100_000, 20_000, {}),
    (22, 40_000, 3_000, {"window": 120.0, "max_posts": 8_000}),
    (23, 30_000, 1_000, {"threshold": 0.5, "min_accounts": 3, "max_posts": 5_000}),
    (24, 30_000, 7_000, {"window": 2_000.0, "max_posts": 9_000}),
]


def assert_same_streams(
    columns: list[PostColumns], parameters: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch after batch, the compiled detector and the numpy one answer alike and keep the
    same books: flags, campaign ids, revisions, rings, clusters, pairs, ids, band buckets."""
    compiled = CampaignDetector(**parameters)  # type: ignore[arg-type]
    with numpy_path(monkeypatch):
        reference = CampaignDetector(**parameters)  # type: ignore[arg-type]
    for batch_columns in columns:
        got = compiled.observe_columns(batch_columns)
        with numpy_path(monkeypatch):
            want = reference.observe_columns(batch_columns)
        assert got.spam.tolist() == want.spam.tolist()
        assert (got.campaign_ids, got.revisions) == (want.campaign_ids, want.revisions)
        assert detector_state(compiled) == detector_state(reference)
        keys = campaigns.sign(batch_columns.texts).bands.ravel()
        assert compiled._buckets.last_posts(keys).tolist() == (
            reference._buckets.last_posts(keys).tolist()
        )
    assert compiled.campaigns() and compiled.campaigns() == reference.campaigns()


@pytest.mark.parametrize(("seed", "count", "batch", "parameters"), LONG_STREAMS)
def test_compiled_detector_keeps_the_same_books_as_numpy(
    seed: int, count: int, batch: int, parameters: dict[str, float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    batches, _ = generated_batches(seed, count, batch=batch)
    columns = [PostColumns.of_posts(posts) for posts in batches]
    assert_same_streams(columns, parameters, monkeypatch)


def hard_batches(seed: int) -> list[PostColumns]:
    """Templates that share bands with several posts and with earlier clusters, times in whole
    seconds (ties for the earliest post), posts out of the window, retweets and short posts,
    empty texts, ids repeated within a batch and across batches (some of posts about to
    leave), ids beyond Latin-1 and beyond the BMP, and batches of every size."""
    words = ["moon", "pump", "airdrop", "claim", "free", "gem", "sol", "now", "join", "wallet"]
    rng = np.random.default_rng(seed)

    def text(kind: int) -> str:
        if kind == 0:
            return ""
        if kind == 1:
            return "RT @x: " + " ".join(rng.choice(words, 8))
        if kind == 2:
            return "gm $SOL"
        template = " ".join(words[(kind + i) % len(words)] for i in range(9))
        return f"{template} ${rng.choice(words).upper()} {rng.integers(0, 99)}"

    batches = []
    for number in range(40):
        size = int(rng.integers(1, 700))
        ids = [f"{number}-{i}" + ("é" if i % 7 == 0 else "") + ("Ω" if i % 11 == 0 else "")
               + ("🚀" if i % 13 == 0 else "") for i in range(size)]  # fmt: skip
        for i in rng.integers(0, size, size // 20):  # the same id twice in a batch
            ids[int(i)] = ids[0]
        if number % 5 == 4:  # posts seen before, lately and long ago
            backs = rng.integers(1, 5, size // 4).tolist()
            ids[: size // 4] = [f"{number - back}-{i}" for i, back in enumerate(backs)]
        ts = np.floor(1e9 + 300.0 * number + rng.uniform(-400, 400, size))
        batches.append(PostColumns(
            ids, [f"a{rng.integers(0, 40)}" for _ in range(size)], ts,
            [text(int(k)) for k in rng.integers(0, 6, size)], rng.integers(0, 70, size),
            rng.random(size) < 0.05, rng.random(size) < 0.05))  # fmt: skip
    return batches


@pytest.mark.parametrize(
    "parameters",
    [{"max_posts": 1_000, "window": 600.0}, {"threshold": 1.0},
     {"threshold": 0.05, "min_accounts": 2}],
)  # fmt: skip
def test_compiled_detector_matches_numpy_on_hard_batches(
    parameters: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_same_streams(hard_batches(8), parameters, monkeypatch)


def test_pair_counts_match_the_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = campaigns._Pairs()
    monkeypatch.setattr(campaigns, "_PAIR_COUNTS", None)
    reference = campaigns._Pairs()
    rng = np.random.default_rng(6)
    for step in range(30):
        keys = rng.integers(0, 300, size=500) << 24 | rng.integers(0, 50, size=500)
        assert compiled.enter(keys).tolist() == reference.enter(keys).tolist()
        kept = reference.as_dict()
        leaving = np.array([k for k, n in kept.items() for _ in range(n)], dtype=np.int64)
        leaving = rng.permutation(leaving)[: len(leaving) // 3]
        assert compiled.leave(leaving).tolist() == reference.leave(leaving).tolist()
        key = int(keys[0])
        assert compiled.pop(key) == reference.pop(key)
        assert compiled.add(key ^ 1 << 30, step) == reference.add(key ^ 1 << 30, step)
        if step % 9 == 8:
            renumber = np.where(rng.random(64) < 0.3, -1, rng.permutation(64))
            compiled.renumber(renumber)
            reference.renumber(renumber)
        assert compiled.as_dict() == reference.as_dict()
        assert len(compiled) == len(reference)
    with pytest.raises(KeyError):
        compiled.leave(np.array([12_345 << 24], dtype=np.int64))


def test_id_index_matches_the_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = campaigns._Ids()
    monkeypatch.setattr(campaigns, "_STRING_TABLE", None)
    reference = campaigns._Ids()
    names = ["a", "é", "Ω", "🚀", "a\x00", "\ud800"]  # every kind of string, a lone surrogate
    ring: list[str] = []
    for step in range(20):
        batch = [f"{step}{names[i % len(names)]}{i}" for i in range(50)]
        if step % 4 == 3:
            batch[7] = batch[3]  # a repeat within the batch: nothing is kept
        if step % 5 == 4:
            batch[9] = ring[-1]  # an id kept already: nothing is kept
        added = compiled.add_new(batch, len(ring))
        assert added == reference.add_new(batch, len(ring))
        if added:
            ring += batch
        asked = [*batch, *ring[-60:], "missing"]
        assert compiled.seqs(asked).tolist() == reference.seqs(asked).tolist()
        if step % 3 == 2:
            for index in (compiled, reference):
                index.remove(ring, len(ring) - 120, len(ring) - 80)
        assert compiled.as_dict() == reference.as_dict() and len(compiled) == len(reference)
    with pytest.raises(KeyError):
        compiled.remove(["never kept"], 0, 1)


def test_accounts_match_the_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = campaigns._Accounts()
    monkeypatch.setattr(campaigns, "_STRING_TABLE", None)
    reference = campaigns._Accounts()
    rng = np.random.default_rng(2)
    names = ["a", "é", "Ω", "🚀", "\ud800"]
    for step in range(25):
        batch = [f"{names[i % len(names)]}{i}" for i in rng.integers(0, 400, size=300)]
        assert compiled.numbers(batch).tolist() == reference.numbers(batch).tolist()
        if step % 6 == 5:  # let a third go, the others numbered anew from 0
            size = len(reference)
            renumber = np.where(rng.random(size + 10) < 0.3, -1, 0)
            live = np.flatnonzero(renumber == 0)
            renumber[live] = np.arange(len(live))
            compiled.renumber(renumber)
            reference.renumber(renumber)
        assert compiled.as_dict() == reference.as_dict() and len(compiled) == len(reference)


def test_text_facts_are_pythons(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [*HARD, "RT @a", "RT @", "RT", "rt @a", " RT @a", "RT @🚀", "ＲT @a", "RT\u00a0@a"]
    hashes, retweets = campaigns._text_facts(texts)
    assert hashes.tolist() == [hash(t) for t in texts]
    assert retweets.tolist() == [t.startswith("RT @") for t in texts]
    monkeypatch.setattr(campaigns, "_TEXT_FACTS", None)
    numpy_hashes, numpy_retweets = campaigns._text_facts(texts)
    assert (hashes.tolist(), retweets.tolist()) == (numpy_hashes.tolist(), numpy_retweets.tolist())


def test_compiled_detector_matches_numpy_when_accounts_are_renumbered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """150,000 accounts, one or two posts each, in campaigns that outlive the accounts'
    renumbering (more than 2 * 65,536 accounts known): the pairs follow the new numbers alike."""
    rng = np.random.default_rng(12)
    words = np.array(["moon", "pump", "claim", "airdrop", "free", "gem", "now", "join", "sol"])
    batches = []
    for number in range(16):
        size = 10_000
        templates = rng.integers(0, 30, size)
        texts = [" ".join(np.roll(words, int(t))) + f" ${t} {rng.integers(0, 9)}"
                 for t in templates]  # fmt: skip
        per_account = 2 if number % 4 == 3 else 1
        batches.append(PostColumns(
            [f"{number}-{i}" for i in range(size)],
            [f"{number}-{i // per_account}" for i in range(size)],
            np.full(size, 1e9 + 60.0 * number) + rng.uniform(0, 60, size), texts,
            rng.integers(0, 100, size), np.zeros(size, dtype=bool),
            np.zeros(size, dtype=bool)))  # fmt: skip
    renumbered = []
    forget = CampaignDetector._forget_authors

    def counted(detector: CampaignDetector) -> None:
        renumbered.append(len(detector._author_code))
        forget(detector)

    monkeypatch.setattr(CampaignDetector, "_forget_authors", counted)
    assert_same_streams(batches, {"window": 90.0, "max_posts": 30_000}, monkeypatch)
    assert len(renumbered) >= 2  # once for each detector at least


@pytest.mark.parametrize("path", ["compiled", "numpy"])
def test_a_batch_that_cannot_be_signed_changes_nothing(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone surrogate in a text fails the batch as the signer always has, before the
    detector keeps anything of it (its ids included): the next batches go as if it never came."""
    batches = hard_batches(3)[:6]
    broken = batches[3]._replace(texts=[*batches[3].texts[:-1], "moon \ud83d soon"])
    with monkeypatch.context() as patch:
        if path == "numpy":
            for hook in COMPILED_HOOKS:
                patch.setattr(campaigns, hook, None)
            patch.setattr(campaigns, "_compiled_signer", lambda: None)
        detector, untouched = CampaignDetector(), CampaignDetector()
        for batch_columns in batches[:3]:
            detector.observe_columns(batch_columns)
            untouched.observe_columns(batch_columns)
        with pytest.raises(UnicodeEncodeError):
            detector.observe_columns(broken)
        assert detector_state(detector) == detector_state(untouched)
        for batch_columns in batches[4:]:
            got, want = (
                detector.observe_columns(batch_columns),
                untouched.observe_columns(batch_columns),
            )
            assert (got.spam.tolist(), got.campaign_ids, got.revisions) == (
                want.spam.tolist(), want.campaign_ids, want.revisions)  # fmt: skip
        assert detector_state(detector) == detector_state(untouched)
