"""One PostgreSQL connection for one component (a sink, a job), opened on first use and again
after a failure, with psycopg's connection errors turned into the error kinds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg

from cryptosent.config import mask_url_password
from cryptosent.errors import TransientError, one_line
from cryptosent.runtime import StopSignal, until_stopped

Connection = psycopg.Connection[tuple[object, ...]]

log = logging.getLogger(__name__)


# The statements of every batch are short, but their estimated costs pass PostgreSQL's
# `jit_above_cost` (and its inlining and optimizing thresholds) as tables grow: JIT then compiles
# each one anew, 1.4 s of the server's CPU for a revision statement that runs in 12 ms without
# it (docs/benchmarks.md, round five). The processor's connections turn it off.
NO_JIT = "set jit = off"


class DatabaseUnavailable(TransientError):
    """PostgreSQL cannot be reached (or dropped the connection); ``str()`` names it and the fix.

    A refused password at start-up is reported by the start-up migration as this same line;
    a long-running processor retries it like an outage (a password may be rotated back)."""

    def __init__(self, dsn: str, reason: str) -> None:
        super().__init__(
            f"PostgreSQL unreachable at {mask_url_password(dsn)}: {reason} "
            "(start the local stack with `cryptosent stack up`, or set CRYPTOSENT_DATABASE_URL)",
            service="PostgreSQL",
            reason=reason,
        )


def unavailable(err: psycopg.OperationalError, dsn: str) -> DatabaseUnavailable:
    """The error kind of a psycopg connection failure."""
    return DatabaseUnavailable(dsn, one_line(err))


class Database:
    """A reconnectable connection; `transaction()` commits, or rolls back and re-raises.

    With a ``stop``, connecting to a server that does not answer ends at the stop (after its
    grace) as `DatabaseUnavailable`, instead of after the connect timeout."""

    def __init__(
        self,
        dsn: str,
        *,
        setup: Sequence[str] = (),
        application_name: str = "cryptosent",
        stop: StopSignal | None = None,
    ) -> None:
        self.dsn = dsn
        self._setup = tuple(setup)
        self._application_name = application_name
        self._stop = stop
        self._conn: Connection | None = None
        # held while a transaction runs: close() must not free a connection another thread
        # still uses (a call given up at the stop, see runtime.until_stopped)
        self._busy = threading.RLock()

    def connection(self) -> Connection:
        """The open connection (opened on first use, and again after a failure)."""
        if self._conn is None or self._conn.closed:
            stop = self._stop
            if stop is None:
                self._conn = self._connect()
            else:
                self._conn = until_stopped(
                    stop, self._connect, what="connect to PostgreSQL",
                    stopped=lambda: DatabaseUnavailable(
                        self.dsn, f"no answer before the stop ({stop.reason})"
                    ),
                    discard=lambda conn: conn.close(),
                )  # fmt: skip
        return self._conn

    def _connect(self) -> Connection:
        try:
            conn = psycopg.connect(
                self.dsn, connect_timeout=5, application_name=self._application_name
            )
            conn.execute("set time zone 'UTC'")
            for statement in self._setup:
                conn.execute(statement.encode())
            conn.commit()
        except psycopg.OperationalError as err:
            raise unavailable(err, self.dsn) from err
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The connection, committed at the end of the block; any error rolls back, and a
        connection failure closes it (the next use reconnects) as `DatabaseUnavailable`."""
        with self._busy:
            conn = self.connection()
            try:
                yield conn
                conn.commit()
            except psycopg.OperationalError as err:
                self.reset()
                raise unavailable(err, self.dsn) from err
            except BaseException:
                if not conn.closed:
                    conn.rollback()
                raise

    def reset(self) -> None:
        """Drop the connection so the next use opens a new one."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back); one still in use by a
        call given up at the stop is left to the end of the process."""
        if not self._busy.acquire(blocking=False):
            log.info("PostgreSQL connection still in use by a call given up at the stop: left open")
            return
        try:
            self.reset()
        finally:
            self._busy.release()
