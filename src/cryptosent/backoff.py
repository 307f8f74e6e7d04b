"""Retry delays: linear or exponential growth, capped, resettable (live sources, sink retries).

Pure bookkeeping (no sleeping): the source asks for the next delay and sleeps with its own
injectable sleep function, so tests can assert the exact sequence of delays.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``initial, initial+step, ...`` (linear) or ``initial, initial*factor, ...``.

    Exactly one of ``step`` (linear) or ``factor`` (exponential) is set; every delay is capped at
    ``maximum`` (``None`` means no cap).
    """

    initial: float
    maximum: float | None
    step: float | None = None
    factor: float | None = None
    _attempt: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if (self.step is None) == (self.factor is None):
            raise ValueError("Backoff needs exactly one of `step` or `factor`")

    @classmethod
    def linear(cls, initial: float, step: float, maximum: float | None) -> Backoff:
        """Backoff growing by ``step`` seconds per attempt."""
        return cls(initial=initial, maximum=maximum, step=step)

    @classmethod
    def exponential(cls, initial: float, maximum: float | None, factor: float = 2.0) -> Backoff:
        """Backoff multiplying by ``factor`` per attempt."""
        return cls(initial=initial, maximum=maximum, factor=factor)

    @property
    def attempts(self) -> int:
        """Growing delays handed out since the last reset (capped ones are not counted)."""
        return self._attempt

    def next_delay(self) -> float:
        """The delay to wait before the next attempt (and count the attempt)."""
        if self.step is not None:
            delay = self.initial + self.step * self._attempt
        else:
            assert self.factor is not None
            delay = self.initial * self.factor**self._attempt
        if self.maximum is not None and delay >= self.maximum:
            # stop counting once capped, so a long outage cannot overflow factor**attempt
            return self.maximum
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` (after a connection that worked)."""
        self._attempt = 0
