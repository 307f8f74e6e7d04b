"""Speed of the learned analyzers on 50,000 mock posts (docs/sentiment.md, "Speed").

The same figures as the ``sentiment`` stage of ``cryptosent bench`` (texts per CPU second of
one thread, so that other jobs on a shared machine do not count):
``.venv/bin/python benchmarks/learned_speed.py``.
"""

from __future__ import annotations

from cryptosent.bench.sentiment import generated_tweets, measure_learned


def main() -> None:
    """Print texts per CPU second of the student core, of ``learned`` and of ``teacher``."""
    figures = measure_learned(generated_tweets(50_000, seed=42), rounds=3, teacher_texts=1000)
    for name, value in figures.items():
        print(f"{name}: {value:,.0f} texts/s")


if __name__ == "__main__":
    main()
