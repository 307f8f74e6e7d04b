"""The compiled sentiment core (rust/vader_core): Python's semantics, exactly, on any text.

Each property compares the compiled core with the pure-Python path and, for ``vader``, with
vaderSentiment itself, on random Unicode and on texts built from the characters and words
where the rules and tokenisation are most fragile.
"""

from __future__ import annotations

import gc
import string
import sys
import threading

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

# pytest puts this folder on sys.path (rootdir-relative imports, no __init__.py).
from test_sentiment import (
    _CRYPTO_WORDS,
    _FILLER,
    _RULE_WORDS,
    _expected,
    crypto_on,
    vader_on,
)

from cryptosent.analysis import _native, vader
from cryptosent.analysis.sentiment import CryptoAnalyzer, Scores, VaderAnalyzer, score_batch
from cryptosent.analysis.vader import load_vader_emoji

CORE = _native.CORE


def test_compiled_core_is_installed() -> None:
    assert CORE is not None, "cryptosent_vader_core is not installed: run 'make vader-core'"
    assert VaderAnalyzer().native is not None
    assert CryptoAnalyzer().native is not None
    assert CORE.CACHE_LIMIT == vader.CACHE_LIMIT


def test_whitespace_is_pythons_str_isspace_on_every_code_point() -> None:
    assert CORE is not None
    python = {chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()}
    assert set(CORE.whitespace()) == python


def test_tokens_split_as_str_split_around_every_code_point_sharing_a_lead_byte() -> None:
    # the engine splits byte by byte and decodes only characters whose UTF-8 starts as a
    # multi-byte whitespace's does (0xC2, 0xE1 to 0xE3): every code point of those blocks, and
    # ASCII, between words and in runs
    engine = VaderAnalyzer().native
    emoji = load_vader_emoji()
    blocks = [range(0x80), range(0x80, 0xC0), range(0x1000, 0x4000)]
    for code in (c for block in blocks for c in block):
        char = chr(code)
        if char in emoji or 0xD800 <= code <= 0xDFFF:
            continue
        text = f"a{char}b {char}{char}c{char}"
        assert engine.tokens(text) == text.split(), hex(code)


_TIES = [k / 2**m for m in range(1, 12) for k in range(-64, 65, 1)]


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=-2, max_value=2, allow_nan=False),
        st.sampled_from(_TIES),
        st.integers(-(10**6), 10**6).map(lambda k: k / 10**5),
        st.integers(-(10**7), 10**7).map(lambda k: k / 2**12),
    ),
    st.sampled_from([0, 1, 2, 3, 4]),
)
@example(0.03125, 4)
@example(-0.03125, 4)
@example(0.00005, 4)
@example(-0.00001, 4)
@example(0.0625, 3)
@example(0.5, 0)
@example(2.5, 0)
def test_round_is_pythons_round(x: float, ndigits: int) -> None:
    assert CORE is not None
    got = CORE.py_round(x, ndigits)
    expected = round(x, ndigits)
    assert got == expected and str(got) == str(expected), (x, ndigits, got, expected)


def _assert_same(text: str) -> None:
    expected = _expected(text)
    assert vader_on(True).scores(text) == expected, text
    assert vader_on(False).scores(text) == expected, text
    assert crypto_on(True).scores(text) == crypto_on(False).scores(text), text


@settings(max_examples=1500, deadline=None)
@given(st.text(max_size=200))
def test_random_unicode_text_scores_like_python_and_vadersentiment(text: str) -> None:
    _assert_same(text)


_EMOJI = sorted(load_vader_emoji())
_SPECIAL = [
    "\u200d", "\ufe0f", "\ufe0e", "\u20e3", "\U000e0067", "\U000e007f", "\U0001f3fb",
    "\U0001f3fd", "\U0001f1fa", "\U0001f1f8", "\U0001f1e6", "İ", "ß", "ﬁ", "ǅ", "Σ", "ς",
    "\u212a", "\u0130", "\u0301", "ΑΣ", "ΣΑ", "\x85", "\xa0", "\u2028", "\u3000", "\u1680",
    "\u200b", "\x1c", "\x0b", "\t", "\n", " ", "'", "!", "?", "!!", "??", ",", ".", "#", "$",
]  # fmt: skip
_WORDS = _RULE_WORDS + _FILLER + _CRYPTO_WORDS + [
    "good", "GOOD", "bad", "Bad", "love", "hate", "moon", "rekt", "pump", "dump", "and", "&",
    "n", "buy", "dip", "rug", "pull", "pulls", "diamond", "hands", "we're", "so", "back",
    "all", "time", "high", "all-time", "highs", "HODL", "FUD", "ATH", "gm", "GM,", "(to",
    "moon!!", "🚀!!", "😀", "👍🏽", "👨‍💻", "👩🏽‍💻", "❤️", "🇺🇸", "#️⃣",
    "🏴\U000e0067\U000e0062\U000e007f",
]  # fmt: skip
_PIECES = st.one_of(
    st.sampled_from(_WORDS),
    st.sampled_from(_SPECIAL),
    st.sampled_from(_EMOJI),
    st.text(max_size=3),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(_PIECES, st.sampled_from(["", " ", " ", "  ", "\t", "\u3000"]))))
def test_rule_and_emoji_heavy_texts_score_like_python_and_vadersentiment(
    parts: list[tuple[str, str]],
) -> None:
    text = "".join(piece + sep for piece, sep in parts)
    _assert_same(text)
    _assert_same(text.upper())


@settings(max_examples=800, deadline=None)
@given(st.lists(st.tuples(_PIECES, st.sampled_from(["", " ", "\u3000"]))))
def test_tokens_are_pythons(parts: list[tuple[str, str]]) -> None:
    text = "".join(piece + sep for piece, sep in parts)
    for native, python in ((vader_on(True), vader_on(False)), (crypto_on(True), crypto_on(False))):
        assert native.native is not None
        assert native.native.tokens(text) == python.substitute_emoji(text).split()


def test_lone_surrogates_fall_back_to_python() -> None:
    for text in ("good \ud800 day", "\udcff", "love 😀 \udc80!!"):
        expected = _expected(text)
        assert vader_on(True).scores(text) == expected
        assert crypto_on(True).scores(text) == crypto_on(False).scores(text)
        assert vader_on(True).scores_many([text, "good"])[0] == expected


def test_batch_accepts_any_sequence_and_rejects_non_strings() -> None:
    analyzer = vader_on(True)
    texts = ["good", "bad", "", "meh 🚀"]
    expected = [analyzer.scores(text) for text in texts]
    assert analyzer.scores_many(texts) == expected
    assert analyzer.scores_many(tuple(texts)) == expected
    assert analyzer.scores_many(iter(texts)) == expected  # type: ignore[arg-type]
    assert score_batch(analyzer, texts) == expected
    with pytest.raises(TypeError):
        analyzer.scores_many(["good", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        analyzer.scores(None)  # type: ignore[arg-type]


def test_scores_are_scores_and_untracked_by_the_gc() -> None:
    scores = vader_on(True).scores("I love it, great!!")
    assert type(scores) is Scores
    assert scores.compound == scores[0] > 0
    assert scores._asdict()["pos"] == scores.pos
    assert not gc.is_tracked(scores)
    assert vader_on(True).scores("") is vader.EMPTY_SCORES


def test_threads_share_an_engine() -> None:
    # Non-ASCII tokens call back into Python (str.lower), where threads can switch.
    texts = [f"Straße{i} LÄUFT gut {i} 😀 to the moon" for i in range(3000)]
    expected = crypto_on(False).scores_many(texts) + vader_on(False).scores_many(texts)
    crypto, vader_native = CryptoAnalyzer(), VaderAnalyzer()
    results: list[list[Scores]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(crypto.scores_many(texts) + vader_native.scores_many(texts))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(result == expected for result in results)


def test_without_the_core_the_python_path_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vader, "CORE", None)
    analyzer = VaderAnalyzer()
    assert analyzer.native is None
    assert analyzer.scores == analyzer.python_scores
    assert analyzer.scores("good") == vader_on(True).scores("good")
    with pytest.raises(RuntimeError, match="make vader-core") as error:
        VaderAnalyzer(native=True)
    assert "\n" not in str(error.value)


def test_punctuation_is_string_punctuation() -> None:
    # The core strips exactly ASCII punctuation (Rust's is_ascii_punctuation).
    text = " ".join(f"{p}good{p}" for p in string.punctuation)
    _assert_same(text)
    _assert_same(string.punctuation + "ok" + string.punctuation)
