"""What every long-running part shares at run time: the stop signal (Ctrl-C, SIGTERM), retry
delays (`Backoff`) and the retry loop that reads the error kinds (`Retry`).

`Backoff` is pure bookkeeping (no sleeping): a caller asks for the next delay and sleeps with its
own injectable sleep function, so tests can assert the exact sequence of delays.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeVar

from cryptosent.errors import TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")


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


class StopSignal:
    """Set by SIGINT/SIGTERM so a loop can stop, flush and report instead of dying."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def is_set(self) -> bool:
        """Whether a stop was requested."""
        return self.event.is_set()

    def set(self) -> None:
        """Request a stop (what the signal handler does; tests and embedding code call it)."""
        self.event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to seconds, waking early on a stop; whether a stop was requested."""
        return self.event.wait(seconds)


class Retry:
    """Run an action until it works: a `TransientError` waits with backoff and tries again, any
    other error propagates. A stop requested while waiting re-raises the last transient error, so
    the command can report what was unavailable when it was stopped."""

    def __init__(
        self,
        backoff: Backoff,
        *,
        stop: StopSignal | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str, TransientError, float], None] | None = None,
    ) -> None:
        self.backoff = backoff
        self.stop = stop
        self._sleep = sleep
        self._on_retry = on_retry

    def __call__(self, what: str, action: Callable[[], T]) -> T:
        """The result of action(); `what` names the step in logs and metrics."""
        while True:
            try:
                result = action()
            except TransientError as err:
                delay = self.backoff.next_delay()
                log.warning(
                    "%s unavailable (%s); retrying in %.1f s", err.service, err.reason, delay
                )
                if self._on_retry is not None:
                    self._on_retry(what, err, delay)
                if self.stop is not None:
                    if self.stop.wait(delay):
                        raise
                else:
                    self._sleep(delay)
                continue
            self.backoff.reset()
            return result
