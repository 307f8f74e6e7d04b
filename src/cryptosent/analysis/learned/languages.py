"""Which posts the learned analyzers may score: the languages they were trained on.

The training corpus covers English and 16 other languages (datasets/README.md). A post in
another language is ``unscored`` instead of being scored confidently wrong. The decision is
made from the language the source declares (X and Bluesky send one) or, when there is none,
from the post's writing systems: letters mostly in a script that no trained language uses
(Thai, Hebrew, Greek, Bengali, Tamil, Georgian, ...) make it unscored. Cheap enough for the
stream; ``detect_language`` (py3langid, a model shipped in its package) names the language for
``cryptosent score`` and the per-language report.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, cast

SUPPORTED = frozenset(
    [
        "en",
        "es",
        "pt",
        "de",
        "fr",
        "it",
        "tr",
        "ru",
        "ko",
        "ja",
        "zh",
        "id",
        "vi",
        "ar",
        "hi",
        "nl",
        "pl",
        "uk",
    ]
)
# Words of these scripts (unicodedata names begin with them) belong to trained languages.
_TRAINED_SCRIPTS = (
    "LATIN",
    "CYRILLIC",
    "HANGUL",
    "HIRAGANA",
    "KATAKANA",
    "CJK",
    "ARABIC",
    "DEVANAGARI",
)


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0]


def scorable(text: str, declared: str | None = None) -> bool:
    """True when the post is in a language the learned analyzers were trained on."""
    verdict = _declared_verdict(declared)
    return verdict if verdict is not None else _scorable_text(text)


def scorable_many(texts: Sequence[str], langs: Sequence[str | None]) -> bytes:
    """``scorable`` of each (text, declared language), one byte each (1: scorable). A batch
    declares few distinct languages: each is judged once, and only the texts whose declaration
    decides nothing (none, ``und``, ...) are read."""
    verdicts = {lang: _declared_verdict(lang) for lang in set(langs)}
    if None not in verdicts.values():
        decided = cast(dict[str | None, bool], verdicts)
        return bytes(map(decided.__getitem__, langs))
    return bytes(
        _scorable_text(text) if verdict is None else verdict
        for text, verdict in zip(texts, map(verdicts.__getitem__, langs), strict=True)
    )


def _declared_verdict(declared: str | None) -> bool | None:
    """What a declared language says alone: scorable (true), not (false), or nothing (None:
    no declaration, or one that names no language)."""
    if declared:
        code = declared.lower().split("-")[0]
        if code in SUPPORTED:
            return True
        if code not in ("und", "qme", "qht", "zxx", "art", "qam", "qct"):
            return False
    return None


def _scorable_text(text: str) -> bool:
    """Whether the text's letters are mostly in a script the analyzers were trained on."""
    if text.isascii():
        return True
    foreign = trained = 0
    for ch in text:
        if ch.isascii():
            trained += ch.isalpha()
        elif ch.isalpha():
            if _script(ch).startswith(_TRAINED_SCRIPTS):
                trained += 1
            else:
                foreign += 1
    return foreign <= trained


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str, float]:
    """The most likely language (ISO 639-1) and its probability, by py3langid's model."""
    code, prob = _identifier().classify(text)
    return str(code), float(prob)
