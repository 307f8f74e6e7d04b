"""The sinks a processor writes to, by name. Adding a sink: write its module (a `Sink` and an
`open_sink(settings, retry)`), then add one line here."""

from __future__ import annotations

from collections.abc import Callable

from cryptosent.config import Settings
from cryptosent.runtime import Retry
from cryptosent.sinks import lake, postgres
from cryptosent.sinks.base import Sink

SinkFactory = Callable[[Settings, Retry], Sink]

# in checkpoint order: a flush goes through them in this order
SINKS: dict[str, SinkFactory] = {
    "postgres": postgres.open_sink,
    "lake": lake.open_sink,
}


def open_sinks(
    settings: Settings, retry: Callable[[], Retry], names: list[str] | None = None
) -> list[Sink]:
    """The named sinks (default: all) configured from settings, each with its own retry."""
    chosen = list(SINKS) if names is None else names
    unknown = [name for name in chosen if name not in SINKS]
    if unknown:
        raise ValueError(f"unknown sink(s) {unknown}: choose from {list(SINKS)}")
    return [SINKS[name](settings, retry()) for name in chosen]
