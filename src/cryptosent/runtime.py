"""What every long-running part shares at run time: the stop (`StopSignal`: Ctrl-C, SIGTERM,
`--duration`), blocking calls bounded by it (`until_stopped`), retry delays (`Backoff`) and the
retry loop that reads the error kinds (`Retry`).

`Backoff` is pure bookkeeping (no sleeping): a caller asks for the next delay and sleeps with its
own injectable sleep function, so tests can assert the exact sequence of delays.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final, TypeVar

from cryptosent.errors import FatalError, TransientError

GC_THRESHOLD: Final = (50_000, 20, 20)
"""The garbage collector's thresholds in a long-running stream (Python's: 700, 10, 10)."""


def settle_gc() -> None:
    """Tune the cyclic garbage collector for a process that streams from here on: collect once,
    freeze what exists (modules, lexicons, the coin catalogue, the models: they live as long as
    the process, and a full collection walked them again and again), and collect the young
    generation every 50,000 container allocations instead of 700 (a batch of 20,000 tweets
    allocates about 50,000 more than it frees). A processor over 300,000 mock tweets spent
    0.82 CPU s in collections, 0.14 after (docs/benchmarks.md, round five)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


# glibc's mallopt parameters (malloc.h) and the values `keep_freed_memory` gives them
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
KEPT_MEMORY: Final = {
    _M_MMAP_THRESHOLD: 32 << 20,  # glibc's largest: blocks up to 32 MiB come from the heap
    _M_TRIM_THRESHOLD: 256 << 20,  # free memory the heap keeps before giving it back
    _M_TOP_PAD: 64 << 20,  # address space asked for at once (pages are only used when touched)
}


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep the memory a batch frees for the next batch, instead of handing
    it back to the kernel and faulting fresh zeroed pages in again: a stream allocates the same
    large buffers (a fetch's messages, a batch's texts and columns, a rendered object) every
    batch. glibc's own thresholds adapt only up to a few MiB, and a processor over 300,000 mock
    tweets took 190,000 page faults, the kernel's zeroing of pages 3 % of its CPU; with these,
    0.0138-0.0140 CPU s per 1,000 against 0.0141-0.0155 (docs/benchmarks.md, round eight).
    Whether it applied: not on a C library without ``mallopt`` (musl, macOS)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(mallopt(param, value) == 1 for param, value in KEPT_MEMORY.items())


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
    """The one thing every long-running command, loop and source waits on.

    It is set by Ctrl-C or SIGTERM (while the signal handlers are installed: ``with stop:``), by
    its deadline (``--duration``: ``StopSignal(duration_s)``) or by code (`set`). Whatever waits
    (a backoff, pacing, a retry, a live feed's next post) waits with `wait(seconds)`, which
    returns at once when the stop comes, so a command stops within a fraction of a second in any
    state. Work that must finish after the stop (flushing a producer, committing a batch) gets
    `GRACE_S` more (`grace_left`), and a blocking call that cannot watch the stop itself runs
    through `until_stopped`. A `child()` stops with its parent and can also be stopped alone (a
    source closed at the end of its command).
    """

    GRACE_S: float = 1.0
    """How long work in hand may still take once the stop came (what it has is flushed)."""
    ABANDON_AFTER_S: float = 0.2
    """What a `Retry` attempt gets beyond the grace before it is given up, so that work inside
    it which watches the stop itself (a flush) ends first, with its own error."""
    DEADLINE = "duration"
    """The reason of a stop that came from the deadline."""

    def __init__(
        self,
        duration_s: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.event = threading.Event()
        self._clock = clock
        self._deadline = None if duration_s is None else clock() + duration_s
        self._stopped_at: float | None = None
        self._reason: str | None = None
        self._children: list[StopSignal] = []
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # A handler runs between two bytecodes of the main thread, which may hold the event's
        # lock just then (inside Event.wait): setting the event here could deadlock, so the
        # flag is raised now and the event set from a helper thread.
        self._mark(signal.Signals(signum).name)
        threading.Thread(target=self.set, name="stop-signal", daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _mark(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
            self._stopped_at = self._clock()

    @property
    def reason(self) -> str | None:
        """Why it stopped: 'SIGINT', 'SIGTERM', DEADLINE or what `set` was given; None yet."""
        return self._reason if self.is_set else None

    @property
    def interrupted(self) -> bool:
        """Stopped before its time: by Ctrl-C, SIGTERM or code, not by reaching the deadline."""
        return self.is_set and self._reason != self.DEADLINE

    @property
    def is_set(self) -> bool:
        """Whether a stop was requested (or the deadline passed)."""
        if self._reason is not None or self.event.is_set():
            return True
        if self._deadline is not None and self._clock() >= self._deadline:
            self._reason = self.DEADLINE
            self._stopped_at = self._deadline
            return True
        return False

    def set(self, reason: str = "stopped") -> None:
        """Request a stop (what a signal does; code and tests call it too), children included."""
        self._mark(reason)
        self.event.set()
        with self._lock:
            children = list(self._children)
        for child in children:
            child.set(self._reason or reason)

    def remaining(self) -> float | None:
        """Seconds until the deadline (None without one); 0 once stopped."""
        if self.is_set:
            return 0.0
        return None if self._deadline is None else max(0.0, self._deadline - self._clock())

    def wait(self, seconds: float) -> bool:
        """Sleep up to seconds, waking early on a stop or at the deadline; whether stopped."""
        left = self.remaining()
        if left is not None:
            seconds = min(seconds, left)
        if seconds > 0:
            self.event.wait(seconds)
        return self.is_set

    def grace_left(self) -> float | None:
        """Seconds left to finish work in hand since the stop (None while not stopped)."""
        if not self.is_set:
            return None
        stopped_at = self._stopped_at if self._stopped_at is not None else self._clock()
        return max(0.0, stopped_at + self.GRACE_S - self._clock())

    def child(self) -> StopSignal:
        """A stop set with this one (and its deadline), which can also be set alone."""
        child = StopSignal(clock=self._clock)
        child._deadline = self._deadline
        with self._lock:
            self._children.append(child)
        if self.is_set:
            child.set(self._reason or "stopped")
        return child


class ForeignRaise(FatalError):
    """A call raised an object that is not an exception: confluent-kafka's C code raises its
    `KafkaError` (a plain object) from `Consumer.close()` when the client is torn down under it.
    No `except BaseException` catches that; `until_stopped` turns it into this, so its caller
    gets an error instead of waiting for ever on a thread that died. Fatal: no retry is known to
    cure a library that raises so; a caller that can go on (closing a consumer) logs it."""

    def __init__(self, what: str, raised: object) -> None:
        super().__init__(f"{what} failed: {type(raised).__name__}: {raised}")


def until_stopped(
    stop: StopSignal,
    action: Callable[[], T],
    *,
    stopped: Callable[[], BaseException],
    discard: Callable[[T], object] | None = None,
    what: str = "blocking call",
    extra_s: float = 0.0,
) -> T:
    """The result of a blocking call that cannot watch the stop itself (connecting to a server
    that does not answer, a DNS lookup), run on a daemon thread. Once the stop comes and its
    grace (plus extra_s while the grace lasts) has passed, the call is abandoned: `stopped()` is
    raised here, and a result that still arrives later is handed to `discard` (e.g. to close a
    connection)."""
    lock = threading.Lock()
    outcome: list[_Result | BaseException] = []
    abandoned = False
    done = threading.Event()

    def run() -> None:
        try:
            result: _Result | BaseException = _Result(action())
        except BaseException as err:  # handed over to the caller's thread
            result = err
        except:  # noqa: E722 - what no `except BaseException` matches: see `ForeignRaise`
            result = ForeignRaise(what, sys.exc_info()[1])
        with lock:
            late = abandoned
            if not late:
                outcome.append(result)
        done.set()
        if late and discard is not None and isinstance(result, _Result):
            discard(result.value)

    threading.Thread(target=run, name=what, daemon=True).start()
    while not done.wait(0.05):
        grace = stop.grace_left()
        # the margin only while the grace lasts: afterwards cooperative waits are over too
        if grace is not None and not done.wait(grace + extra_s if grace else 0.0):
            with lock:
                if not outcome:
                    abandoned = True
                    raise stopped()
            break
    first = outcome[0]
    if isinstance(first, _Result):
        return first.value  # type: ignore[no-any-return]
    raise first


@dataclass(frozen=True)
class _Result:
    value: Any


class Unanswered(TransientError):
    """An attempt still waiting for a server when the stop came (and its grace passed)."""

    def __init__(self, what: str, stop: StopSignal) -> None:
        super().__init__(
            f"{what}: no answer before the stop ({stop.reason}); the work in hand was given up",
            service=what,
            reason=f"no answer before the stop ({stop.reason})",
        )


class Retry:
    """Run an action until it works: a `TransientError` waits with backoff and tries again, any
    other error propagates. A stop requested while waiting re-raises the last transient error, so
    the command can report what was unavailable when it was stopped. With a stop, each attempt
    runs through `until_stopped`: a server that accepts and never answers (a hung database, a
    black-holed S3) cannot hold a stopping command either (`Unanswered`)."""

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
        stop = self.stop
        while True:
            try:
                if stop is None:
                    result = action()
                else:
                    result = until_stopped(
                        stop, action, what=what, stopped=lambda: Unanswered(what, stop),
                        extra_s=stop.ABANDON_AFTER_S,
                    )  # fmt: skip
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
