"""The stop every long-running command waits on (signals, deadline, code), blocking calls bounded
by it, and the retry loop that reads the error kinds."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

import pytest
from confluent_kafka import KafkaError

from cryptosent.errors import TransientError
from cryptosent.runtime import (
    Backoff,
    ForeignRaise,
    Retry,
    StopSignal,
    Unanswered,
    until_stopped,
)


class Down(TransientError):
    def __init__(self) -> None:
        super().__init__("the server is down", service="server")


def later(seconds: float, action: object) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()  # type: ignore[operator]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_returns_at_once_when_the_stop_comes() -> None:
    stop = StopSignal()
    assert not stop.is_set and stop.reason is None and stop.grace_left() is None
    later(0.1, stop.set)
    started = time.monotonic()
    assert stop.wait(30) is True
    assert time.monotonic() - started < 1.0
    assert stop.reason == "stopped" and stop.interrupted


def test_the_deadline_is_a_stop_that_is_not_an_interruption() -> None:
    stop = StopSignal(0.2)
    assert stop.remaining() is not None and 0 < (stop.remaining() or 0) <= 0.2
    started = time.monotonic()
    assert stop.wait(30) is True
    assert 0.15 < time.monotonic() - started < 1.0
    assert stop.reason == StopSignal.DEADLINE == "duration"
    assert not stop.interrupted
    assert stop.remaining() == 0.0


def test_wait_without_a_stop_sleeps_its_time() -> None:
    stop = StopSignal()
    started = time.monotonic()
    assert stop.wait(0.1) is False
    assert time.monotonic() - started >= 0.09


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_set_it_while_installed_and_handlers_are_restored(sig: int) -> None:
    before = signal.getsignal(sig)
    with StopSignal() as stop:
        os.kill(os.getpid(), sig)
        assert stop.wait(5)
        assert stop.reason == signal.Signals(sig).name and stop.interrupted
    assert signal.getsignal(sig) is before


def test_signals_arriving_while_the_main_thread_waits_never_deadlock() -> None:
    # the handler runs between two bytecodes of the main thread, which may hold the event's
    # lock inside Event.wait: setting the event from the handler could deadlock
    for _ in range(50):
        with StopSignal() as stop:
            sender = later(0.001, lambda: os.kill(os.getpid(), signal.SIGINT))
            started = time.monotonic()
            while not stop.wait(0.0001):
                pass
            assert time.monotonic() - started < 5
            sender.join()


def test_a_child_stops_with_its_parent_and_can_stop_alone() -> None:
    parent = StopSignal(60)
    alone, with_parent = parent.child(), parent.child()
    alone.set("closed")
    assert alone.is_set and alone.reason == "closed" and not parent.is_set
    parent.set("SIGTERM")
    assert with_parent.is_set and with_parent.reason == "SIGTERM"
    assert parent.child().is_set  # made after the stop: stopped already
    short = StopSignal(0.1).child()
    assert short.wait(10) and short.reason == "duration"


def test_grace_counts_from_the_stop() -> None:
    stop = StopSignal()
    stop.set()
    first = stop.grace_left()
    assert first is not None and StopSignal.GRACE_S - 0.2 < first <= StopSignal.GRACE_S
    time.sleep(0.1)
    second = stop.grace_left()
    assert second is not None and second < first


def test_until_stopped_returns_the_result_or_the_error() -> None:
    stop = StopSignal()
    assert until_stopped(stop, lambda: 42, stopped=RuntimeError) == 42
    with pytest.raises(ZeroDivisionError):
        until_stopped(stop, lambda: 1 // 0, stopped=RuntimeError)


def test_until_stopped_reports_a_raised_object_that_is_no_exception() -> None:
    # confluent-kafka's C code can raise its KafkaError, which is no BaseException: the call
    # once died with it unseen, and `process --until-idle` waited for ever on it
    set_error = ctypes.pythonapi.PyErr_SetObject
    set_error.argtypes, set_error.restype = [ctypes.py_object, ctypes.py_object], None
    stop = StopSignal()
    with pytest.raises(ForeignRaise, match=r"^close the consumer failed: KafkaError: KafkaError"):
        until_stopped(
            stop, lambda: set_error(KafkaError, KafkaError(KafkaError._DESTROY)),
            stopped=RuntimeError, what="close the consumer",
        )  # fmt: skip


def test_until_stopped_gives_up_a_hanging_call_after_the_grace() -> None:
    stop = StopSignal()
    release = threading.Event()
    discarded: list[str] = []

    def hangs() -> str:
        release.wait(10)
        return "connection"

    later(0.1, stop.set)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no answer"):
        until_stopped(
            stop, hangs, stopped=lambda: TimeoutError("no answer"), discard=discarded.append
        )
    took = time.monotonic() - started
    assert 0.1 + StopSignal.GRACE_S - 0.1 < took < 0.1 + StopSignal.GRACE_S + 0.5
    release.set()  # the abandoned call finishes later: its result is handed to discard
    deadline = time.monotonic() + 5
    while not discarded and time.monotonic() < deadline:
        time.sleep(0.01)
    assert discarded == ["connection"]


def test_until_stopped_lets_a_quick_call_finish_after_the_stop() -> None:
    stop = StopSignal()
    stop.set()
    assert until_stopped(stop, lambda: time.sleep(0.05) or "done", stopped=RuntimeError) == "done"


def test_retry_waits_on_the_stop_and_reraises_the_last_outage() -> None:
    stop = StopSignal()
    attempts: list[float] = []

    def failing() -> None:
        attempts.append(time.monotonic())
        raise Down()

    retry = Retry(Backoff.exponential(initial=30.0, maximum=60.0), stop=stop)
    later(0.2, stop.set)
    started = time.monotonic()
    with pytest.raises(Down):
        retry("write", failing)
    assert time.monotonic() - started < 1.0
    assert len(attempts) == 1


def test_retry_gives_up_an_attempt_that_hangs_when_the_stop_comes() -> None:
    # a server that accepts and never answers: the attempt itself cannot watch the stop
    stop = StopSignal()
    release = threading.Event()
    retry = Retry(Backoff.exponential(initial=0.5, maximum=30.0), stop=stop)
    later(0.2, stop.set)
    started = time.monotonic()
    with pytest.raises(Unanswered, match="write: no answer before the stop") as err:
        retry("write", lambda: release.wait(30))
    assert time.monotonic() - started < 0.2 + StopSignal.GRACE_S + StopSignal.ABANDON_AFTER_S + 0.5
    assert isinstance(err.value, TransientError) and err.value.service == "write"
    release.set()


def test_settle_gc_freezes_what_exists_and_collects_less_often() -> None:
    import gc

    from cryptosent.runtime import GC_THRESHOLD, settle_gc

    before = gc.get_threshold()
    try:
        kept = [[i] for i in range(1000)]  # containers that exist before: frozen, not walked
        settle_gc()
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == GC_THRESHOLD
        walked = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
        assert not any(id(k) in walked for k in kept)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


_REUSE = """
import resource, sys
from cryptosent.runtime import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def batch():  # what a batch allocates and frees: 64 MiB in 8 MiB buffers, every page written
    return [b"x" * (8 << 20) for _ in range(8)]
batch()
before = faults()
for _ in range(10):
    batch()
print(faults() - before)
"""


@pytest.mark.skipif(
    not hasattr(os, "confstr") or "glibc" not in (os.confstr("CS_GNU_LIBC_VERSION") or ""),
    reason="glibc's mallopt",
)
def test_keep_freed_memory_lets_the_next_batch_reuse_the_pages_of_the_last() -> None:
    import subprocess
    import sys

    def faults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", _REUSE, mode], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    # glibc's own thresholds hand the 64 MiB back after each batch: 10 batches fault 16,384
    # pages each in again; kept, the pages of the first batch serve every later one
    assert faults("default") > 10 * 8 * 2048 * 0.9
    assert faults("keep") < 2048


def test_keep_freed_memory_is_a_no_op_without_mallopt(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptosent import runtime

    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.setattr(runtime.ctypes, "CDLL", NoMallopt)
    assert runtime.keep_freed_memory() is False
