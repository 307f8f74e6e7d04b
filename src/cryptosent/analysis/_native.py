"""The compiled sentiment core (``rust/vader_core``, built by ``make vader-core``), if installed.

The core is optional: without it the analyzers run their pure-Python path, with the same numbers.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cryptosent.analysis.vader import Scores

MODULE_NAME = "cryptosent_vader_core"


class NativeEngine(Protocol):
    """What ``cryptosent_vader_core.Engine`` offers (see rust/vader_core/src/lib.rs)."""

    def scores(self, text: str) -> Scores:
        """Score one text."""
        ...

    def scores_many(self, texts: Sequence[str]) -> list[Scores]:
        """Score many texts in order."""
        ...

    def tokens(self, text: str) -> list[str]:
        """The whitespace-separated tokens after emoji substitution."""
        ...

    def cache_size(self) -> int:
        """How many distinct tokens are cached."""
        ...


def load_core() -> ModuleType | None:
    """The compiled module, or None when it is not installed (then Python does the work)."""
    try:
        return importlib.import_module(MODULE_NAME)
    except ImportError:
        return None


CORE = load_core()
