"""A fast, bit-exact reimplementation of VADER (vaderSentiment 3.3.2).

The rules, constants and even the bugs of ``vaderSentiment.SentimentIntensityAnalyzer`` are
reproduced so that :meth:`VaderEngine.scores` returns exactly the same four floats as
``polarity_scores``. Speed comes from doing the per-word work once per distinct token (a bounded
cache of everything the rules ask about a word), from skipping the rule window for the many words
that carry no valence, and from emoji substitution through one ``str.translate`` call.

When the compiled core (``rust/vader_core``, module ``cryptosent_vader_core``) is installed,
:meth:`VaderEngine.use_native` hands it the same tables and ``scores`` runs there; this module
stays the reference it is tested against and the fallback without it.

The lexicon files are read from the installed ``vaderSentiment`` package, never copied.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress
from operator import and_
from pathlib import Path
from typing import Any, NamedTuple, cast

from cryptosent.analysis._native import CORE, MODULE_NAME, NativeEngine

# vaderSentiment's empirically derived constants, unchanged.
B_INCR = 0.293
B_DECR = -0.293
C_INCR = 0.733
N_SCALAR = -0.74

NEGATE = frozenset(
    {
        "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt",
        "ain't", "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't",
        "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither",
        "don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't",
        "neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing", "nowhere",
        "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
        "oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't",
        "without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite",
    }
)  # fmt: skip

BOOSTER_DICT: dict[str, float] = {
    "absolutely": B_INCR, "amazingly": B_INCR, "awfully": B_INCR,
    "completely": B_INCR, "considerable": B_INCR, "considerably": B_INCR,
    "decidedly": B_INCR, "deeply": B_INCR, "effing": B_INCR, "enormous": B_INCR,
    "enormously": B_INCR,
    "entirely": B_INCR, "especially": B_INCR, "exceptional": B_INCR, "exceptionally": B_INCR,
    "extreme": B_INCR, "extremely": B_INCR,
    "fabulously": B_INCR, "flipping": B_INCR, "flippin": B_INCR, "frackin": B_INCR,
    "fracking": B_INCR,
    "fricking": B_INCR, "frickin": B_INCR, "frigging": B_INCR, "friggin": B_INCR, "fully": B_INCR,
    "fuckin": B_INCR, "fucking": B_INCR, "fuggin": B_INCR, "fugging": B_INCR,
    "greatly": B_INCR, "hella": B_INCR, "highly": B_INCR, "hugely": B_INCR,
    "incredible": B_INCR, "incredibly": B_INCR, "intensely": B_INCR,
    "major": B_INCR, "majorly": B_INCR, "more": B_INCR, "most": B_INCR, "particularly": B_INCR,
    "purely": B_INCR, "quite": B_INCR, "really": B_INCR, "remarkably": B_INCR,
    "so": B_INCR, "substantially": B_INCR,
    "thoroughly": B_INCR, "total": B_INCR, "totally": B_INCR, "tremendous": B_INCR,
    "tremendously": B_INCR,
    "uber": B_INCR, "unbelievably": B_INCR, "unusually": B_INCR, "utter": B_INCR, "utterly": B_INCR,
    "very": B_INCR,
    "almost": B_DECR, "barely": B_DECR, "hardly": B_DECR, "just enough": B_DECR,
    "kind of": B_DECR, "kinda": B_DECR, "kindof": B_DECR, "kind-of": B_DECR,
    "less": B_DECR, "little": B_DECR, "marginal": B_DECR, "marginally": B_DECR,
    "occasional": B_DECR, "occasionally": B_DECR, "partly": B_DECR,
    "scarce": B_DECR, "scarcely": B_DECR, "slight": B_DECR, "slightly": B_DECR, "somewhat": B_DECR,
    "sort of": B_DECR, "sorta": B_DECR, "sortof": B_DECR, "sort-of": B_DECR,
}  # fmt: skip

SPECIAL_CASES: dict[str, float] = {
    "the shit": 3,
    "the bomb": 3,
    "bad ass": 1.5,
    "badass": 1.5,
    "bus stop": 0.0,
    "yeah right": -2,
    "kiss of death": -1.5,
    "to die for": 3,
    "beating heart": 3.5,
}

# Only multi-word keys can ever match the idiom n-grams; a word outside these cannot take part.
_IDIOM_WORDS = frozenset(
    w for key in (*SPECIAL_CASES, *BOOSTER_DICT) if " " in key for w in key.split()
)
_PUNCTUATION = string.punctuation
CACHE_LIMIT = 200_000

# What the rules ask about one token, computed once per distinct token: lower-cased word,
# lexicon valence, whether it is scored (in the lexicon, not a booster), ALLCAPS, ALLCAPS that
# counts as emphasis, negation word, part of a multi-word idiom, booster increment.
TokenInfo = tuple[str, float | None, bool, bool, bool, bool, bool, float | None]
_OR_NOR = ("or", "nor")


class Scores(NamedTuple):
    """VADER's four numbers for one text: compound in [-1, 1], proportions in [0, 1]."""

    compound: float
    pos: float
    neu: float
    neg: float


_new_scores = tuple.__new__
EMPTY_SCORES = Scores(0.0, 0.0, 0.0, 0.0)
NEUTRAL_SCORES = Scores(0.0, 0.0, 1.0, 0.0)


def vader_package_dir() -> Path:
    """The directory of the installed vaderSentiment package, which holds its lexicon files."""
    import vaderSentiment.vaderSentiment as module

    return Path(module.__file__).resolve().parent


def load_vader_lexicon(path: Path | None = None) -> dict[str, float]:
    """Read ``vader_lexicon.txt`` exactly as vaderSentiment's ``make_lex_dict`` does."""
    text = (path or vader_package_dir() / "vader_lexicon.txt").read_text(encoding="utf-8")
    lexicon: dict[str, float] = {}
    for line in text.rstrip("\n").split("\n"):
        if not line:
            continue
        word, measure = line.strip().split("\t")[0:2]
        lexicon[word] = float(measure)
    return lexicon


def load_vader_emoji(path: Path | None = None) -> dict[str, str]:
    """Read ``emoji_utf8_lexicon.txt`` exactly as vaderSentiment's ``make_emoji_dict`` does."""
    text = (path or vader_package_dir() / "emoji_utf8_lexicon.txt").read_text(encoding="utf-8")
    emoji: dict[str, str] = {}
    for line in text.rstrip("\n").split("\n"):
        key, description = line.strip().split("\t")[0:2]
        emoji[key] = description
    return emoji


def strip_punc_if_word(token: str) -> str:
    """VADER's token cleaning: strip punctuation unless that leaves two characters or fewer."""
    stripped = token.strip(_PUNCTUATION)
    if len(stripped) <= 2:
        return token
    return stripped


def _negated(word_lower: str) -> bool:
    # vaderSentiment's negated() lower-cases its already lower-cased input once more.
    word = word_lower.lower()
    return word in NEGATE or "n't" in word


def _but_check(values: list[float], positions: list[int], bi: int) -> None:
    # vaderSentiment looks each value up again with list.index(), so with repeated values it
    # rescales the first equal element, possibly several times, and never the later ones; that
    # is reproduced literally (its pop()+insert() at one index is an assignment). Only scored
    # words are walked: unscored ones are zeros, which stay zeros and never equal a non-zero
    # value, so the quadratic index() scan stays small even in a 64 KiB text.
    for sentiment in values:
        si = values.index(sentiment)
        if positions[si] < bi:
            values[si] = sentiment * 0.5
        elif positions[si] > bi:
            values[si] = sentiment * 1.5


def _special_idioms_check(valence: float, lows: Sequence[str], i: int) -> float:
    onezero = f"{lows[i - 1]} {lows[i]}"
    twoonezero = f"{lows[i - 2]} {lows[i - 1]} {lows[i]}"
    twoone = f"{lows[i - 2]} {lows[i - 1]}"
    threetwoone = f"{lows[i - 3]} {lows[i - 2]} {lows[i - 1]}"
    threetwo = f"{lows[i - 3]} {lows[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    n = len(lows)
    if n - 1 > i:
        zeroone = f"{lows[i]} {lows[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
    if n - 1 > i + 1:
        zeroonetwo = f"{lows[i]} {lows[i + 1]} {lows[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


class VaderEngine:
    """VADER's rules over a given lexicon; with vaderSentiment's lexicons it *is* VADER."""

    # Instance attributes rather than methods, so that the compiled core's bound methods are
    # called directly, with no Python frame in between.
    scores: Callable[[str], Scores]
    scores_many: Callable[[Sequence[str]], list[Scores]]

    def __init__(
        self,
        lexicon: Mapping[str, float],
        emoji: Mapping[str, str],
        clean_token: Callable[[str], str] = strip_punc_if_word,
        caps_neutral: Iterable[str] = (),
    ) -> None:
        self.lexicon: dict[str, float] = dict(lexicon)
        # Only single code points are ever matched: vaderSentiment walks the text char by char.
        # A leading space instead of vaderSentiment's "space unless after a space" yields the
        # same tokens and the same '!'/'?' counts, the only two things the text is used for.
        self.emoji_table: dict[int, str] = {
            ord(key): " " + desc for key, desc in emoji.items() if len(key) == 1
        }
        self._emoji_all_ascii_free = all(code >= 128 for code in self.emoji_table)
        self._clean_token = clean_token
        self._caps_neutral = frozenset(caps_neutral)
        self._cache: dict[str, TokenInfo] = {}
        self.native: NativeEngine | None = None
        self.scores = self.python_scores
        self.scores_many = self.python_scores_many

    def use_native(self, required: bool | None = None, crypto: Any = None) -> bool:
        """Score with the compiled core from now on, if it is installed; False if it is not.

        ``required=True`` raises when it is missing; ``False`` keeps the pure-Python path.
        ``crypto`` carries the crypto analyzer's tokenisation tables.
        """
        if required is False:
            return False
        if CORE is None:
            if required:
                raise RuntimeError(
                    f"the compiled sentiment core ({MODULE_NAME}) is not installed: "
                    "run 'make vader-core'"
                )
            return False
        engine: NativeEngine = CORE.Engine(
            list(self.lexicon.items()),
            list(BOOSTER_DICT.items()),
            list(NEGATE),
            list(_IDIOM_WORDS),
            list(SPECIAL_CASES.items()),
            list(self._caps_neutral),
            [(chr(code), text) for code, text in self.emoji_table.items()],
            self.unicode_facts,
            self.python_scores,
            Scores,
            EMPTY_SCORES,
            NEUTRAL_SCORES,
            crypto,
        )
        self.native = engine
        self.scores = engine.scores
        self.scores_many = engine.scores_many
        return True

    def unicode_facts(self, raw: str) -> tuple[Any, ...]:
        """What the compiled core asks Python about a non-ASCII token: Python's own Unicode.

        ``(low, low.lower(), isupper)`` of the cleaned token; ASCII tokens never come here.
        """
        word = self._clean_token(raw)
        low = word.lower()
        return (low, low.lower(), word.isupper())

    def substitute_emoji(self, text: str) -> str:
        """Replace single-code-point emoji by their descriptions, as vaderSentiment does."""
        if self._emoji_all_ascii_free and text.isascii():
            return text
        return text.translate(self.emoji_table)

    def token_info(self, raw: str) -> TokenInfo:
        """Everything the rules ask about one whitespace-separated token, cached."""
        info = self._cache.get(raw)
        if info is None:
            info = self._make_info(self._clean_token(raw))
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[raw] = info
        return info

    def _make_info(self, word: str) -> TokenInfo:
        low = word.lower()
        lex = self.lexicon.get(low)
        boost = BOOSTER_DICT.get(low)
        # Boosters are scored 0 before the lexicon is consulted, even when they are in it.
        scored = lex is not None and boost is None
        upper = word.isupper()
        # Conventionally capitalised words (tickers, ATH) still count for the differential,
        # they are just not shouted.
        emph = upper and low not in self._caps_neutral
        return (low, lex, scored, upper, emph, _negated(low), low in _IDIOM_WORDS, boost)

    def python_scores(self, text: str) -> Scores:
        """Score one text; equal to ``polarity_scores`` when built with VADER's lexicons."""
        if not (self._emoji_all_ascii_free and text.isascii()):
            text = text.translate(self.emoji_table)
        return self.score_words(text.split(), text)

    def python_scores_many(self, texts: Sequence[str]) -> list[Scores]:
        """Score many texts in order with the pure-Python path."""
        scores = self.python_scores
        return [scores(text) for text in texts]

    def score_words(self, words: list[str], text: str) -> Scores:
        """Apply VADER's rules to the whitespace-split ``words`` of ``text``.

        ``text`` itself is only used to count '!' and '?'.
        """
        found = list(map(self._cache.get, words))
        if None in found:
            token_info = self.token_info
            infos = [info or token_info(w) for info, w in zip(found, words, strict=True)]
        else:
            infos = cast(list[TokenInfo], found)
        if not infos:
            return EMPTY_SCORES
        lows, lexs, scored, uppers, emphs, negs, idioms, boosts = zip(*infos, strict=True)
        if True not in scored:
            return NEUTRAL_SCORES
        n = len(lows)
        cap_diff = 0 < sum(uppers) < n
        positions = list(compress(range(n), scored))
        values: list[float] = []
        append = values.append
        idiom_pairs: bool | None = None
        for i in positions:
            low = lows[i]
            if low == "kind" and i < n - 1 and lows[i + 1] == "of":
                append(0)
                continue
            lex = lexs[i]
            valence = lex
            # "no" as a negation of the next lexicon word rather than a word of its own.
            if i:
                w1 = lows[i - 1]
                if low == "no" and i != n - 1 and lexs[i + 1] is not None:
                    valence = 0.0
                if w1 == "no" or (
                    i > 1
                    and (lows[i - 2] == "no" or (i > 2 and lows[i - 3] == "no" and w1 in _OR_NOR))
                ):
                    valence = lex * N_SCALAR
            elif low == "no" and n > 1 and lexs[1] is not None:
                valence = 0.0
            if emphs[i] and cap_diff:
                valence = valence + C_INCR if valence > 0 else valence - C_INCR

            # The three preceding words: boosters, negations, idioms (unrolled for speed).
            if i and lexs[i - 1] is None:
                scalar = 0.0
                boost = boosts[i - 1]
                if boost is not None:
                    scalar = boost
                    if valence < 0:
                        scalar *= -1
                    if emphs[i - 1] and cap_diff:
                        scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
                valence = valence + scalar
                if negs[i - 1]:
                    valence = valence * N_SCALAR
            if i > 1 and lexs[i - 2] is None:
                scalar = 0.0
                boost = boosts[i - 2]
                if boost is not None:
                    scalar = boost
                    if valence < 0:
                        scalar *= -1
                    if emphs[i - 2] and cap_diff:
                        scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
                    if scalar != 0:
                        scalar = scalar * 0.95
                valence = valence + scalar
                w2, w1 = lows[i - 2], lows[i - 1]
                if w2 == "never" and (w1 == "so" or w1 == "this"):
                    valence = valence * 1.25
                elif w2 == "without" and w1 == "doubt":
                    pass
                elif negs[i - 2]:
                    valence = valence * N_SCALAR
            if i > 2 and lexs[i - 3] is None:
                scalar = 0.0
                boost = boosts[i - 3]
                if boost is not None:
                    scalar = boost
                    if valence < 0:
                        scalar *= -1
                    if emphs[i - 3] and cap_diff:
                        scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
                    if scalar != 0:
                        scalar = scalar * 0.9
                valence = valence + scalar
                w3, w2, w1 = lows[i - 3], lows[i - 2], lows[i - 1]
                # vaderSentiment's operator precedence: (never and so/this) or w1 is so/this.
                if (w3 == "never" and (w2 == "so" or w2 == "this")) or (w1 == "so" or w1 == "this"):
                    valence = valence * 1.25
                elif w3 == "without" and (w2 == "doubt" or w1 == "doubt"):
                    pass
                elif negs[i - 3]:
                    valence = valence * N_SCALAR
                # Every idiom and multi-word booster has two adjacent idiom words.
                if idiom_pairs is None:
                    idiom_pairs = any(map(and_, idioms, idioms[1:]))
                if idiom_pairs:
                    valence = _special_idioms_check(valence, lows, i)

            # "least" negates, except in "at least" and "very least".
            if i and lows[i - 1] == "least" and lexs[i - 1] is None:
                if i > 1:
                    if lows[i - 2] != "at" and lows[i - 2] != "very":
                        valence = valence * N_SCALAR
                else:
                    valence = valence * N_SCALAR
            append(valence)
        if "but" in lows:
            _but_check(values, positions, lows.index("but"))
        return _score_valence(values, n, text)


def _score_valence(values: list[float], n: int, text: str) -> Scores:
    # ``values`` are the sentiments of the scored words in text order; the other n - len(values)
    # words are zeros, which change neither sum (x + 0 == x, and a running sum that starts at
    # int 0 is never -0.0) nor the positive/negative sums.
    sum_s = float(sum(values))
    # _punctuation_emphasis(), inlined
    ep_count = text.count("!")
    if ep_count > 4:
        ep_count = 4
    qm_count = text.count("?")
    qm_amplifier: float = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    punct_emph_amplifier = ep_count * 0.292 + qm_amplifier
    if sum_s > 0:
        sum_s += punct_emph_amplifier
    elif sum_s < 0:
        sum_s -= punct_emph_amplifier
    compound = sum_s / math.sqrt((sum_s * sum_s) + 15)
    if compound < -1.0:
        compound = -1.0
    elif compound > 1.0:
        compound = 1.0

    pos_sum = 0.0
    neg_sum = 0.0
    neu_count = n
    for score in values:
        if score > 0:
            pos_sum += float(score) + 1
            neu_count -= 1
        elif score < 0:
            neg_sum += float(score) - 1
            neu_count -= 1
    if pos_sum > math.fabs(neg_sum):
        pos_sum += punct_emph_amplifier
    elif pos_sum < math.fabs(neg_sum):
        neg_sum -= punct_emph_amplifier
    total = pos_sum + math.fabs(neg_sum) + neu_count
    # tuple.__new__ skips NamedTuple's Python-level constructor.
    return _new_scores(
        Scores,
        (
            round(compound, 4),
            round(math.fabs(pos_sum / total), 3),
            round(math.fabs(neu_count / total), 3),
            round(math.fabs(neg_sum / total), 3),
        ),
    )
