"""Learned sentiment analyzers: ``learned`` (the fast student) and ``teacher`` (MiniLM).

Both return VADER's four numbers (``Scores``) so every sink and chart keeps working, plus a
label, a calibrated confidence and a short explanation (:class:`Judgement`).
"""

from cryptosent.analysis.learned.judgement import Judgement, scores_from_probs

__all__ = ["Judgement", "scores_from_probs"]
