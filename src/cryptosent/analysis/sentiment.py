"""Sentiment of one post: the ``vader`` analyzer (exactly VADER) and the ``crypto`` analyzer.

``crypto`` (the default) is VADER's rules over VADER's lexicon extended by
``data/crypto_lexicon.tsv`` (crypto words, multi-word phrases, crypto emoji), with emoji read as
whole sequences (variation selectors, skin tones and ZWJ sequences included). Both analyzers are
built once per process and are pure: no I/O after construction. Both run on the compiled core
(``rust/vader_core``) when it is installed, and in Python otherwise. See docs/sentiment.md.
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from cryptosent.analysis.vader import (
    CACHE_LIMIT,
    Scores,
    TokenInfo,
    VaderEngine,
    load_vader_emoji,
    load_vader_lexicon,
    strip_punc_if_word,
)

__all__ = [
    "ANALYZERS",
    "DEFAULT_ANALYZER",
    "Analyzer",
    "CryptoAnalyzer",
    "Scores",
    "VaderAnalyzer",
    "get_analyzer",
    "label",
    "score_batch",
]

ANALYZERS = ("learned", "teacher", "crypto", "vader")
DEFAULT_ANALYZER = "learned"
"""The analyzer the processor stores in ``compound``/``label`` and ``cryptosent score`` uses."""

# The presentation selectors and the five Fitzpatrick skin tones change how an emoji looks, not
# what it means: "❤️" must read like "❤" and "👍🏽" like "👍".
_EMOJI_MODIFIERS = {0xFE0E: None, 0xFE0F: None, **dict.fromkeys(range(0x1F3FB, 0x1F400))}
_ZWJ = "\u200d"
_PUNCTUATION = string.punctuation


class Analyzer(Protocol):
    """Anything that scores a text; get one with :func:`get_analyzer`."""

    name: str

    def scores(self, text: str) -> Scores:
        """Score one text. Never raises on a str; all four numbers are in range."""
        ...


def label(compound: float) -> str:
    """VADER's standard three classes: positive if compound >= 0.05, negative if <= -0.05."""
    if compound >= 0.05:
        return "positive"
    if compound <= -0.05:
        return "negative"
    return "neutral"


def score_batch(analyzer: Analyzer, texts: Sequence[str]) -> list[Scores]:
    """Score many texts with one analyzer, in order (one call into the compiled core)."""
    many = getattr(analyzer, "scores_many", None)
    if many is not None:
        return list(many(texts))
    scores = analyzer.scores
    return [scores(text) for text in texts]


_ANALYZERS: dict[str, Analyzer] = {}
_BUILD_LOCK = threading.Lock()


def get_analyzer(name: str = DEFAULT_ANALYZER) -> Analyzer:
    """The shared analyzer called ``name`` (one of :data:`ANALYZERS`), built on first use."""
    analyzer = _ANALYZERS.get(name)
    if analyzer is None:
        if name not in ANALYZERS:
            raise ValueError(
                f"unknown sentiment analyzer {name!r}: use one of {', '.join(ANALYZERS)}"
            )
        with _BUILD_LOCK:
            analyzer = _ANALYZERS.get(name)
            if analyzer is None:
                analyzer = _build(name)
                _ANALYZERS[name] = analyzer
    return analyzer


def _build(name: str) -> Analyzer:
    if name == "crypto":
        return CryptoAnalyzer()
    if name == "vader":
        return VaderAnalyzer()
    from cryptosent.analysis.learned.analyzers import LearnedAnalyzer, TeacherAnalyzer

    return LearnedAnalyzer() if name == "learned" else TeacherAnalyzer()


class VaderAnalyzer(VaderEngine):
    """VADER exactly: same numbers as vaderSentiment 3.3.2's ``polarity_scores``, faster.

    ``native``: None uses the compiled core when installed, True requires it, False never.
    """

    name: str = "vader"

    def __init__(self, native: bool | None = None) -> None:
        super().__init__(load_vader_lexicon(), load_vader_emoji())
        self.use_native(native)


@dataclass(frozen=True)
class LexiconEntry:
    """One line of a crypto lexicon file."""

    token: str
    valence: float
    note: str


def read_lexicon(text: str, source: str = "crypto_lexicon.tsv") -> list[LexiconEntry]:
    """Parse ``token<TAB>valence<TAB>note`` lines; '#' comments and blank lines are skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        try:
            valence = float(fields[1])
        except (IndexError, ValueError):
            raise ValueError(
                f"{source}:{number}: expected token<TAB>valence<TAB>note, got {line!r}"
            ) from None
        if not -4.0 <= valence <= 4.0:
            raise ValueError(f"{source}:{number}: valence {valence} is outside -4..4")
        token = " ".join(fields[0].split()).lower().translate(_EMOJI_MODIFIERS)
        entries.append(LexiconEntry(token, valence, fields[2].strip() if len(fields) > 2 else ""))
    return entries


def _read_data(name: str) -> str:
    return resources.files("cryptosent").joinpath("data", name).read_text(encoding="utf-8")


def _words(text: str) -> Iterator[str]:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.strip().lower()


def _is_emoji(token: str) -> bool:
    return all(ord(char) >= 0x2000 for char in token)


def _phrase_key(phrase: str) -> str:
    # A phrase is merged into one token joined by "_", which str.split() keeps whole.
    return phrase.replace(" ", "_")


def _char_class(chars: set[str]) -> str:
    # As ranges of consecutive code points: re keeps each code point above U+FFFF of a class
    # as its own literal and tries them one by one at every position of the text (~1,000
    # emoji made the pure-Python crypto analyzer spend ~60 us per non-ASCII post).
    codes = sorted(map(ord, chars))
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return (
        "["
        + "".join(
            re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
            for a, b in ranges
        )
        + "]"
    )


class CryptoAnalyzer(VaderEngine):
    """VADER's rules with a crypto lexicon, crypto emoji and multi-word crypto phrases.

    ``native``: None uses the compiled core when installed, True requires it, False never.
    """

    name: str = "crypto"

    def __init__(
        self,
        lexicon_tsv: str | None = None,
        acronyms: str | None = None,
        native: bool | None = None,
    ) -> None:
        entries = read_lexicon(
            lexicon_tsv if lexicon_tsv is not None else _read_data("crypto_lexicon.tsv")
        )
        emoji_valences = {e.token: e.valence for e in entries if _is_emoji(e.token)}
        phrases = {e.token for e in entries if " " in e.token}
        lexicon = load_vader_lexicon()
        for entry in entries:
            lexicon[_phrase_key(entry.token)] = entry.valence
        self._crypto_tokens = frozenset(_phrase_key(e.token) for e in entries)
        caps_neutral = _words(
            acronyms if acronyms is not None else _read_data("crypto_acronyms.txt")
        )
        vader_emoji = load_vader_emoji()
        super().__init__(lexicon, vader_emoji, self._clean_crypto_token, caps_neutral)

        # Emoji are matched as whole sequences after dropping modifiers; a description keyed by
        # the bare emoji wins over one keyed by a skin-toned variant.
        self._emoji_text: dict[str, str] = {}
        for key, description in sorted(
            vader_emoji.items(), key=lambda kv: kv[0] != kv[0].translate(_EMOJI_MODIFIERS)
        ):
            self._emoji_text.setdefault(key.translate(_EMOJI_MODIFIERS), description)
        for emoji in emoji_valences:
            self._emoji_text[emoji] = emoji
        starts = {key[0] for key in self._emoji_text if key and ord(key[0]) >= 128}
        self._emoji_re = re.compile(
            "[\U0001f1e6-\U0001f1ff]{2}"  # flags are pairs of regional indicators
            f"|{_char_class(starts)}[\u20e3\U000e0020-\U000e007f]*"
            f"(?:{_ZWJ}[^\\s\\x00-\\x7f][\u20e3\U000e0020-\U000e007f]*)*"
        )

        # Phrases by first word, longest first, so "pump and dump" wins over a shorter one.
        self._phrases: dict[str, list[tuple[str, ...]]] = {}
        for phrase in sorted(phrases, key=lambda p: -len(p.split(" "))):
            parts = tuple(phrase.split(" "))
            self._phrases.setdefault(parts[0], []).append(parts)
        # Raw tokens seen so far that can start a phrase (filled as tokens enter the cache).
        self._phrase_start_tokens: dict[str, list[tuple[str, ...]]] = {}
        self.use_native(
            native,
            crypto=(
                list(self._crypto_tokens),
                list(self._emoji_text.items()),
                [
                    (first, [list(parts) for parts in lists])
                    for first, lists in self._phrases.items()
                ],
            ),
        )

    def _clean_crypto_token(self, token: str) -> str:
        # VADER keeps a token unstripped when stripping leaves <= 2 chars (to save emoticons),
        # which would hide "🚀!!" or "gm," from the lexicon; crypto terms are always stripped.
        stripped = token.strip(_PUNCTUATION)
        if stripped.lower() in self._crypto_tokens:
            return stripped
        return strip_punc_if_word(token)

    def unicode_facts(self, raw: str) -> tuple[Any, ...]:
        """VADER's facts for the compiled core, plus the lower-cased forms phrases compare."""
        tail = raw.rstrip(_PUNCTUATION)
        # A phrase starts at a word that may have leading punctuation only: "(to the moon".
        lead = raw.lstrip(_PUNCTUATION).lower() if tail == raw else None
        return (*super().unicode_facts(raw), lead, raw.lower(), tail.lower())

    def token_info(self, raw: str) -> TokenInfo:
        """VADER's per-token facts, also noting tokens that may start a crypto phrase."""
        info = self._cache.get(raw)
        if info is None:
            if len(self._cache) >= CACHE_LIMIT:
                self._phrase_start_tokens.clear()
            # A phrase starts at a word that may have leading punctuation only: "(to the moon".
            candidates = self._phrases.get(raw.lstrip(_PUNCTUATION).lower())
            if candidates is not None and raw.rstrip(_PUNCTUATION) == raw:
                self._phrase_start_tokens[raw] = candidates
            info = super().token_info(raw)
        return info

    def _describe_emoji(self, match: re.Match[str]) -> str:
        sequence = match.group()
        if "\U0001f1e6" <= sequence[0] <= "\U0001f1ff":
            # A flag names a country ("flag: United States"), which says nothing about mood.
            return " "
        text = self._emoji_text.get(sequence)
        if text is None:
            # An unknown ZWJ sequence reads as its parts ("👨‍🚀" unknown -> man, rocket).
            text = " ".join(self._emoji_text.get(part, part) for part in sequence.split(_ZWJ))
        return f" {text} "

    def _merge_phrases(self, words: list[str]) -> list[str]:
        # Inner words must match exactly (no punctuation between phrase words), the last one
        # may carry trailing punctuation: "to the moon!!" yes, "rug, pull" no.
        starts = self._phrase_start_tokens
        merged: list[str] = []
        i, n = 0, len(words)
        while i < n:
            word = words[i]
            step = 1
            for parts in starts.get(word, ()):
                k = len(parts)
                if (
                    i + k <= n
                    and all(words[i + j].lower() == parts[j] for j in range(1, k - 1))
                    and words[i + k - 1].rstrip(_PUNCTUATION).lower() == parts[-1]
                ):
                    word, step = "_".join(words[i : i + k]), k
                    break
            merged.append(word)
            i += step
        return merged

    def substitute_emoji(self, text: str) -> str:
        """Replace whole emoji sequences by their crypto valence token or description."""
        if text.isascii():
            return text
        return self._emoji_re.sub(self._describe_emoji, text.translate(_EMOJI_MODIFIERS))

    def python_scores(self, text: str) -> Scores:
        """Score one text with VADER's rules and the crypto lexicon."""
        text = self.substitute_emoji(text)
        words = text.split()
        if None in map(self._cache.get, words):
            for word in words:
                self.token_info(word)
        # Phrases are rare: words are only walked when one of them can start a phrase.
        if not self._phrase_start_tokens.keys().isdisjoint(words):
            words = self._merge_phrases(words)
        return self.score_words(words, text)
