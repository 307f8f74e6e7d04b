"""What a learned analyzer says about one post, and how its class probabilities become Scores."""

from __future__ import annotations

from dataclasses import dataclass

from cryptosent.analysis.vader import Scores

CLASSES = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Judgement:
    """Scores, label, the probability of each class, and the phrases that drove the label."""

    scores: Scores
    label: str
    probs: tuple[float, float, float]  # negative, neutral, positive
    explanation: tuple[str, ...] = ()

    @property
    def confidence(self) -> float:
        """The calibrated probability of the chosen label."""
        return max(self.probs)


def scores_from_probs(neg: float, neu: float, pos: float) -> tuple[Scores, str]:
    """VADER-shaped scores whose compound agrees with the most probable class.

    ``pos``/``neu``/``neg`` are the class probabilities; ``compound`` is ``pos - neg`` moved, if
    needed, just inside the band that VADER's thresholds (+-0.05) give the chosen class, so
    ``label(compound)`` is always the model's own decision.
    """
    polarity = pos - neg
    if pos >= neu and pos >= neg:
        name, compound = "positive", max(polarity, 0.05)
    elif neg >= neu:
        name, compound = "negative", min(polarity, -0.05)
    else:
        name, compound = "neutral", min(max(polarity, -0.0499), 0.0499)
    return Scores(round(compound, 4), round(pos, 4), round(neu, 4), round(neg, 4)), name
