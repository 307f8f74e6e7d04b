"""Word-cloud input: what is stripped, what is counted, how words are coloured."""

from __future__ import annotations

from cryptosent.dashboard.words import clean_words, sentiment_colour, word_stats, wordcloud_png


def test_urls_mentions_cashtags_and_stopwords_are_stripped() -> None:
    text = "RT @whale: $BTC and $eth breaking out!! https://t.co/xyz www.example.com #Bullish the"
    assert clean_words(text) == ["breaking", "bullish"]


def test_short_words_and_numbers_are_dropped() -> None:
    assert clean_words("up 10x to 100k ok moon") == ["moon"]


def test_word_stats_counts_tweets_and_averages_their_sentiment() -> None:
    stats = word_stats([("moon moon soon", 0.8), ("moon crash", -0.4), ("crash", -0.6)])
    assert stats["moon"].count == 2  # once per tweet
    assert abs(stats["moon"].mean_compound - 0.2) < 1e-12
    assert stats["crash"].count == 2
    assert abs(stats["crash"].mean_compound + 0.5) < 1e-12
    assert list(stats)[:2] == ["moon", "crash"]


def test_colours_run_from_red_through_slate_to_green() -> None:
    assert sentiment_colour(1.0) == "rgb(34, 197, 94)"
    assert sentiment_colour(-1.0) == "rgb(239, 68, 68)"
    assert sentiment_colour(0.0) == "rgb(148, 163, 184)"


def test_wordcloud_is_a_png() -> None:
    png = wordcloud_png(word_stats([("bitcoin holders hodl", 0.5), ("bitcoin panic", -0.5)]))
    assert png.startswith(b"\x89PNG")
