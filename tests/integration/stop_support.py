"""Helpers for the stop tests: servers that refuse or never answer, a TCP proxy that can go
silent, and a CLI run that is stopped (a signal, or its own --duration) and timed.

When a command installed its signal handlers is read from /proc/<pid>/status (SIGTERM becomes a
caught signal): that is when its StopSignal, and so its --duration deadline, starts, so the
measured stop times do not include the interpreter's start-up.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO

BOUND_S = 2.0
"""Every long-running command stops within this after Ctrl-C, SIGTERM or its deadline."""


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SilentServer:
    """Accepts TCP connections and never says a word (a hung server, a black-holed proxy)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._sock.close()
        for conn in self.accepted:
            conn.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Proxy:
    """A TCP proxy to target; `silence()` keeps every connection open but forwards nothing more
    and accepts new ones without answering: a server that hangs, or a network partition."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listen = socket.socket()
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(64)
        self.port = int(self._listen.getsockname()[1])
        self.silent = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        """From now on nothing is forwarded, in either direction."""
        self.silent.set()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listen.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.silent.is_set():
                continue
            upstream = socket.create_connection(self.target)
            self._sockets.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while not self._closed.is_set():
            for key, _ in selector.select(timeout=0.1):
                if self.silent.is_set():
                    return  # stop reading: the peers wait forever on their sockets
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    return
                if not data:
                    return
                key.data.sendall(data)

    def close(self) -> None:
        self._closed.set()
        self._listen.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def handlers_installed(pid: int) -> bool:
    """Whether the process catches SIGTERM (cryptosent's StopSignal is installed)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


@dataclass
class Stopped:
    """How a command ended: exit status, output, and the seconds from the stop to the exit."""

    code: int
    stdout: str
    stderr: str
    after_stop: float

    @property
    def last_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


class Command:
    """A CLI subprocess (output to files: a full pipe would stall it)."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        tag = f"{args[0]}-{time.monotonic_ns()}"
        self._out_path, self._err_path = log_dir / f"{tag}.out", log_dir / f"{tag}.err"
        with self._out_path.open("wb") as out, self._err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cryptosent", *args],
                stdout=out, stderr=err, env=dict(env), cwd=REPO,
            )  # fmt: skip
        self.ready_at = self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if handlers_installed(self.proc.pid):
                return time.monotonic()
            if self.proc.poll() is not None:
                raise AssertionError(f"exited before its stop was installed: {self._result(0)}")
            time.sleep(0.01)
        self.proc.kill()
        raise AssertionError("the command never installed its signal handlers")

    def stop_with(self, sig: int, after: float) -> Stopped:
        """Send sig `after` s after the command got ready; wait for the exit."""
        time.sleep(max(0.0, self.ready_at + after - time.monotonic()))
        assert self.proc.poll() is None, f"ended before the signal: {self._result(0)}"
        self.proc.send_signal(sig)
        return self.wait(time.monotonic())

    def wait(self, stopped_at: float, timeout: float = 120) -> Stopped:
        """Wait for the exit; seconds counted from stopped_at (the signal or the deadline)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise AssertionError(f"still running {timeout} s later: {self._result(0)}") from None
        return self._result(time.monotonic() - stopped_at)

    def wait_deadline(self, duration: float) -> Stopped:
        """Wait for a command run with --duration; seconds counted from its deadline."""
        stopped = self.wait(self.ready_at + duration)
        return stopped

    def _result(self, after_stop: float) -> Stopped:
        return Stopped(
            self.proc.returncode if self.proc.returncode is not None else -1,
            self._out_path.read_text(errors="replace"),
            self._err_path.read_text(errors="replace"),
            after_stop,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return False


def children(pid: int) -> list[int]:
    """Direct children of a process (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found
