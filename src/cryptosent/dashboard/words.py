"""Word-cloud input: word frequencies of tweet texts, with what says nothing stripped.

URLs, @mentions, cashtags ($BTC: the coin chart already counts them), numbers, stopwords and
very short words are dropped; hashtags keep their word. Each word also gets the mean sentiment
of the tweets it appears in, which colours it in the cloud.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from wordcloud import STOPWORDS

_URL: Final = re.compile(r"(?:https?://|www\.)\S+|\b[\w.-]+\.(?:com|io|org|net|xyz|ly)/\S*", re.I)
_MENTION: Final = re.compile(r"@\w+")
_CASHTAG: Final = re.compile(r"\$[A-Za-z][A-Za-z0-9]*")
_WORD: Final = re.compile(r"[a-z][a-z'’]*[a-z]")

# crypto-Twitter filler on top of WordCloud's English stopwords
EXTRA_STOPWORDS: Final = frozenset(
    [
        "rt",
        "amp",
        "via",
        "just",
        "now",
        "get",
        "got",
        "today",
        "will",
        "one",
        "new",
        "still",
        "going",
        "lol",
        "im",
        "dont",
        "cant",
        "thats",
        "ive",
        "youre",
        "gonna",
        "wanna",
        "really",
        "every",
        "much",
        "many",
        "also",
        "us",
        "see",
        "know",
        "think",
    ]
)
STOP: Final = frozenset(w.lower() for w in STOPWORDS) | EXTRA_STOPWORDS


@dataclass(frozen=True)
class WordStats:
    """How often a word occurs and the mean compound of the tweets holding it."""

    count: int
    mean_compound: float


def clean_words(text: str) -> list[str]:
    """The words of one tweet worth a place in the cloud, lower-cased, in order."""
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _CASHTAG.sub(" ", text)
    words = _WORD.findall(text.lower().replace("#", " "))
    return [w for w in words if len(w) > 2 and w not in STOP]


def word_stats(tweets: Iterable[tuple[str, float]], top: int = 150) -> dict[str, WordStats]:
    """The `top` most frequent words of (text, compound) pairs with their mean compound."""
    counts: Counter[str] = Counter()
    sums: dict[str, float] = {}
    for text, compound in tweets:
        for word in set(clean_words(text)):
            counts[word] += 1
            sums[word] = sums.get(word, 0.0) + compound
    return {w: WordStats(n, sums[w] / n) for w, n in counts.most_common(top)}


def sentiment_colour(compound: float) -> str:
    """A colour from red (negative) through slate (neutral) to green (positive)."""
    c = max(-1.0, min(1.0, compound * 2.5))
    neutral = (148, 163, 184)
    end = (34, 197, 94) if c >= 0 else (239, 68, 68)
    r, g, b = (round(n + (e - n) * abs(c)) for n, e in zip(neutral, end, strict=True))
    return f"rgb({r}, {g}, {b})"


def wordcloud_png(stats: dict[str, WordStats], width: int = 900, height: int = 420) -> bytes:
    """The cloud drawn with WordCloud and Matplotlib, as PNG bytes (transparent background)."""
    from matplotlib.figure import Figure
    from wordcloud import WordCloud

    def colour(word: str, **_: Any) -> str:
        found = stats.get(word)
        return sentiment_colour(found.mean_compound if found else 0.0)

    cloud = WordCloud(
        width=width, height=height, background_color=None, mode="RGBA", max_words=len(stats),
        prefer_horizontal=0.95, min_font_size=9, margin=3, random_state=7, color_func=colour,
    ).generate_from_frequencies({w: s.count for w, s in stats.items()})  # fmt: skip
    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.imshow(cloud.to_array(), interpolation="bilinear")
    axes.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", transparent=True)
    return buffer.getvalue()
