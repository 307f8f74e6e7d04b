"""The learned analyzers: compiled and Python paths agree, the contract holds, bad files fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosent.analysis.learned import analyzers as learned
from cryptosent.analysis.learned.features import hashed
from cryptosent.analysis.learned.judgement import scores_from_probs
from cryptosent.analysis.learned.languages import scorable, scorable_many
from cryptosent.analysis.learned.student import dense_features
from cryptosent.analysis.sentiment import get_analyzer, label

core = pytest.importorskip("cryptosent_vader_core")
ROOT = Path(__file__).resolve().parents[3]


def labelled_texts() -> list[str]:
    texts = []
    for path in sorted((ROOT / "datasets").glob("*/*.jsonl")):
        texts += [
            json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()
        ]
    return texts


HARD = [
    "",
    "   ",
    "$BTC +12.5% 🚀🚀🚀!!",
    "SOOOO can't $67.4k http://x.y/z @bob www.foo.com −5% $5 1,000,000.5x",
    "İstanbul ΣΑΣ ß ﬁ",
    "''''  $ @ # 🇺🇸 👍🏽 ❤️ 👨‍👩‍👧",
    "ビットコイン爆上げ！ガチホ 比特币 暴跌 비트코인 떡상",
]

# what the compiled student does its own way: words (ASCII and not, long), numbers and their
# shapes, negations, emoji sequences, cashtags, mentions, URLs, squashed runs, apostrophes,
# capitals after Unicode whitespace, and lower-casing (the capital sigma, whose lower form
# depends on its neighbours, dotted I, titlecase digraphs, ligatures)
HARDER = [
    "a" * 300,
    "supercalifragilistic" * 20 + " éééééééé " + "日本語" * 40,
    "I don't think $BTC won't moon, never not going up!!! nah nope cannot wont",
    "isn't it? aren’t we? shouldn't've hasnt-been no-one",
    "-5% +12.5% −3% 1,000,000.5x $1.5k 3.14159 42nd 2x 10m $5 $5.5% 1.2.3 7,",
    "https://example.com/a?b=c www.foo.bar http//no www wwwx.y httpx:z HTTP://UP.COM",
    "😀😀😀😀 👩🏽‍💻 🏳️‍🌈 #️⃣ 🇯🇵 ©® ™ ‼ ⁉ 〰 ↔︎ ⬆ 🀄 \u200b\u200c\u200d\ufe0f",
    "ALL CAPS HERE AB ABC\u00a0BCD x\u1680XYZW \x1cQRS\x1f TUV\u2028WXY ÀBC AB1 ABCé",
    "can’t won’t it’s ’tis ''quoted'' 'a' b'c' d'",
    "heeeello!!!! sooo gooood??? …… ——— $$$ @@@ ###",
    "@user_1 @ $ $$btc $5 @5 $ btc @-x #tag #123 $BTC/USDT BTC-PERP",
    "ΣΑΣ ΟΔΟΣ σοφός ΣΣ aΣ Σa ΑΣ. Σ ὈΔΥΣΣΕΎΣ",
    "ǅemal ǈudi ǋ ẞ ß ﬀ ﬃ İstanbul I ı ŉ ΐ Ⅻ ⓐⒶ Ａｂｃ",
]


def test_compiled_features_equal_python_on_every_labelled_text() -> None:
    texts = labelled_texts() + HARD + HARDER
    assert len(texts) > 4000
    native = core.student_features([(t, t.lower()) for t in texts])
    assert [hashed(t) for t in texts] == native


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_compiled_features_equal_python_on_any_text(text: str) -> None:
    assert core.student_features([(text, text.lower())])[0] == hashed(text)


def test_compiled_student_equals_python_on_mock_posts_and_hard_cases() -> None:
    """Features, probabilities, explanations, and the processor's batch columns."""
    from cryptosent.analysis.learned.analyzers import LABEL_CODES
    from cryptosent.bench.sentiment import generated_tweets

    texts = generated_tweets(20_000, seed=7) + HARD + HARDER
    assert core.student_features([(t, t.lower()) for t in texts]) == [hashed(t) for t in texts]
    native = learned.LearnedAnalyzer(native=True)
    python = learned.LearnedAnalyzer(native=False)
    judged = python.judge_many(texts)
    assert native.judge_many(texts) == judged
    vader = get_analyzer("vader")
    columns = native.columns(texts, [None] * len(texts), vader)
    assert columns is not None
    n = len(texts)
    floats = memoryview(columns.floats).cast("d")
    for i, judgement in enumerate(judged):
        row = [floats[k * n + i] for k in range(5)]
        assert row == [*judgement.scores, judgement.confidence]
        assert LABEL_CODES[columns.labels[i]] == judgement.label


def test_a_batch_scores_each_repeated_text_as_it_scores_it_alone() -> None:
    """Repeated texts (retweets, a bot farm's copies) are scored once a batch and copied: the
    copy is the row the text gets alone, also for a repeat that the learned analyzer may not
    score (another language), one with tokens new to the engines (scored after the GIL is
    back) and one with no UTF-8 form (the Python path's)."""
    vader = get_analyzer("vader")
    native = learned.LearnedAnalyzer(native=True)
    fresh = "ñandú \u05e9\u05dc\u05d5\u05dd $BTC bien"  # tokens no engine has cached yet
    texts = [
        "$ETH to the moon 🚀", "rug pull, I lost everything", "$ETH to the moon 🚀", fresh,
        "$ETH to the moon 🚀", fresh, "moon \ud83d great", "rug pull, I lost everything",
        "moon \ud83d great", "$ETH to the moon 🚀",
    ]  # fmt: skip
    langs = ["en", None, "th", None, None, "en", None, "de", None, "th"]
    columns = native.columns(texts, langs, vader)
    assert columns is not None
    n = len(texts)
    floats = memoryview(columns.floats).cast("d")
    for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
        alone = native.columns([text], [lang], vader)
        assert alone is not None
        one = memoryview(alone.floats).cast("d")
        assert [floats[k * n + i] for k in range(9)] == list(one), (i, text, lang)
        assert (columns.labels[i], columns.vader_labels[i]) == (
            alone.labels[0], alone.vader_labels[0],
        ), (i, text, lang)  # fmt: skip
    # the repeats differ where their languages do: "th" is not scored, "en" and none are
    assert [columns.labels[i] for i in (0, 2, 4, 9)] == [2, 3, 2, 3]
    assert columns.labels[1] == columns.labels[7] != 3


def test_compiled_judgements_equal_python() -> None:
    native = learned.LearnedAnalyzer(native=True)
    python = learned.LearnedAnalyzer(native=False)
    texts = labelled_texts()[::3] + HARD
    assert native.judge_many(texts) == python.judge_many(texts)


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_compound_always_agrees_with_the_label(a: float, b: float, c: float) -> None:
    total = a + b + c
    if total == 0:
        return
    scores, name = scores_from_probs(a / total, b / total, c / total)
    assert label(scores.compound) == name
    assert -1.0 <= scores.compound <= 1.0


def test_judgement_has_label_confidence_and_explanation() -> None:
    analyzer = get_analyzer("learned")
    bull, bear = analyzer.judge_many(  # type: ignore[attr-defined]
        [
            "never been more bullish on $ETH, loading more 🚀",
            "got rekt, this rug drained my wallet 😭",
        ]
    )
    assert bull.label == "positive" and bear.label == "negative"
    assert 0.34 < bull.confidence <= 1.0 and 0.34 < bear.confidence <= 1.0
    assert bull.explanation and bear.explanation
    assert sum(bull.probs) == pytest.approx(1.0, abs=1e-3)


def test_unscored_languages() -> None:
    assert not scorable("บิทคอยน์ขึ้นแล้ว ดีมาก")
    assert not scorable("ביטקוין עולה היום")
    assert scorable("Биткоин улетит") and scorable("비트코인 떡상") and scorable("gm ser 🚀")
    assert not scorable("bitcoin", "th") and scorable("bitcoin", "en-GB") and scorable("btc", "und")


def test_scorable_many_is_scorable_of_each_post() -> None:
    texts = ["gm ser 🚀", "บิทคอยน์ขึ้นแล้ว ดีมาก", "Биткоин улетит", "bitcoin", "btc", "ביטקוין עולה"]
    langs = [None, "und", "", "th", "EN-us", "zxx", "qme", "ja", "fr-CA", "xx"]
    pairs = [(t, lang) for t in texts for lang in langs]
    expected = bytes(scorable(t, lang) for t, lang in pairs)
    assert scorable_many([t for t, _ in pairs], [lang for _, lang in pairs]) == expected
    assert expected.count(1) not in (0, len(pairs))  # both verdicts occur
    # every language decides (no text is read): still each post's own verdict, in order
    assert scorable_many(["ביטקוין", "x", "y"], ["en", "th", "es"]) == bytes([1, 0, 1])
    assert scorable_many([], []) == b""
    thai = get_analyzer("learned").judge_many(["บิทคอยน์ขึ้นแล้ว ดีมาก"])[0]  # type: ignore[attr-defined]
    assert thai.label == "unscored" and thai.confidence == 0.0
    assert thai.scores.compound == 0.0


def test_dense_features_are_the_lexicon_scores_and_labels() -> None:
    vader = get_analyzer("vader").scores("great")
    crypto = get_analyzer("crypto").scores("rekt")
    dense = dense_features(vader, crypto, "great")
    assert dense[:3] == [vader.compound, vader.pos, vader.neg]
    assert dense[6:9] == [0.0, 0.0, 1.0] and dense[9:12] == [1.0, 0.0, 0.0]
    # the crypto gate: the two lexicons disagree on the text, so it speaks crypto
    assert dense[12:] == [0.0, crypto.compound, 1.0]
    plain = get_analyzer("vader").scores("a lovely day")
    same = get_analyzer("crypto").scores("a lovely day")
    assert plain == same
    assert dense_features(plain, same, "a lovely day")[12:] == [plain.compound, 0.0, 0.0]
    assert dense_features(plain, same, "a lovely day $SOL")[12:] == [0.0, same.compound, 1.0]


def test_a_changed_model_file_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "models"
    shutil.copytree(learned.models_dir(), folder)
    blob = bytearray((folder / "student.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (folder / "student.safetensors").write_bytes(bytes(blob))
    monkeypatch.setattr(learned, "models_dir", lambda: folder)
    with pytest.raises(learned.ModelFileError, match="manifest pins"):
        learned.LearnedAnalyzer()
    (folder / "student.safetensors").unlink()
    with pytest.raises(learned.ModelFileError, match="missing"):
        learned.LearnedAnalyzer()
