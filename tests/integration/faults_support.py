"""Fault-injection helpers: a private stack that tests may stop and kill, and exact-count checks.

Tests that stop Kafka, PostgreSQL or S3 must never touch the shared stack (9092/55432/7070),
which other tests and developers use at the same time: `PrivateStack` runs a second set of the
same real servers from a temporary stack folder on free ports, and `FaultPipeline` drives the
CLI against it with every connection setting in the subprocess environment (real environment
variables win over the `.stack/credentials.env` fallback of the working directory).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

import psycopg
import pyarrow.parquet as pq
from conftest import REPO, Pipeline
from psycopg import sql
from pydantic import SecretStr

from cryptosent.config import Settings
from cryptosent.kafka import admin_config, connection_config
from cryptosent.sinks.migrations import migrate
from cryptosent.stack.manager import Stack, load_or_create_credentials


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (held together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class PrivateStack:
    """Kafka, PostgreSQL and versitygw from their own stack folder on free ports."""

    def __init__(self, root: Path) -> None:
        kafka, controller, postgres, s3 = free_ports(4)
        self.root = root
        self.settings = Settings(
            stack_dir=root,
            stack_kafka_port=kafka,
            stack_kafka_controller_port=controller,
            stack_postgres_port=postgres,
            stack_s3_port=s3,
            stack_kafka_heap="512m",
            kafka_bootstrap=f"127.0.0.1:{kafka}",
            s3_endpoint_url=f"http://127.0.0.1:{s3}",
        )
        self.stack = Stack(self.settings)

    def up(self) -> None:
        """Start all three servers (binaries linked from the shared stack's downloads)."""
        (self.root / "kafka").mkdir(parents=True, exist_ok=True)
        (self.root / "bin").mkdir(parents=True, exist_ok=True)
        (self.root / "kafka" / "libs").symlink_to(REPO / ".stack" / "kafka" / "libs")
        (self.root / "bin" / "versitygw").symlink_to(REPO / ".stack" / "bin" / "versitygw")
        self.stack.up()
        creds = load_or_create_credentials(self.settings)
        self.database_url = (
            f"postgresql://cryptosent:{creds.postgres_password}"
            f"@127.0.0.1:{self.settings.stack_postgres_port}/cryptosent"
        )
        self.access_key, self.secret_key = creds.s3_access_key, creds.s3_secret_key
        self.settings = self.settings.model_copy(
            update={
                "database_url": SecretStr(self.database_url),
                "aws_access_key_id": SecretStr(self.access_key),
                "aws_secret_access_key": SecretStr(self.secret_key),
            }
        )

    def down(self) -> None:
        """Stop the servers and delete their data (also a relocated PostgreSQL folder)."""
        self.stack.down()
        home = self.root / "postgres"
        if home.is_symlink():
            shutil.rmtree(home.resolve(), ignore_errors=True)

    def restart_postgres(self) -> None:
        """Start the stopped PostgreSQL again (same data, same passwords)."""
        creds = load_or_create_credentials(self.settings)
        self.stack.postgres.start(creds.postgres_password, creds.reader_password)

    def restart_s3(self) -> None:
        """Start the stopped S3 server again (same data, same keys)."""
        self.stack.s3.start(self.access_key, self.secret_key)

    def new_topic(self) -> str:
        """A fresh 6-partition topic and its `.dlq` on the private broker."""
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic

        name = f"fault-{uuid.uuid4().hex[:10]}"
        admin = AdminClient(admin_config(self.settings))
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=6), NewTopic(f"{name}.dlq", num_partitions=1)]
        )
        for future in futures.values():
            future.result(timeout=30)

        def led() -> bool:
            # a fresh broker acknowledges the creation before its metadata shows the topic: a
            # `generate` started at once said "topic does not exist" (1 run in about 10)
            topics = admin.list_topics(timeout=5).topics
            return all(
                t in topics and topics[t].error is None and topics[t].partitions
                and all(p.leader >= 0 for p in topics[t].partitions.values())
                for t in (name, f"{name}.dlq")
            )  # fmt: skip

        wait_for(led, timeout=30, what=f"topic {name} to have leaders", step=0.1)
        return name

    def new_database(self) -> str:
        """A fresh migrated database on the private PostgreSQL; its URL."""
        name = f"fault_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.stack.postgres.admin_conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} owner cryptosent").format(sql.Identifier(name))
            )
        url = self.database_url.rsplit("/", 1)[0] + "/" + name
        migrate(url)
        return url

    def pipeline(self, lake: str = "s3") -> FaultPipeline:
        """A pipeline on a new topic and database; lake on the private S3 or a local folder."""
        topic = self.new_topic()
        if lake == "s3":
            lake_url = f"s3://{self.settings.stack_s3_bucket}/{topic}"
        else:
            lake_url = f"file://{self.root / 'lakes' / topic}"
        return FaultPipeline(self, topic, self.new_database(), lake_url)


class FaultPipeline(Pipeline):
    """A `Pipeline` whose subprocesses talk to a private stack only."""

    def __init__(self, private: PrivateStack, topic: str, database_url: str, lake: str) -> None:
        super().__init__(private.settings, topic, database_url, lake)
        s = private.settings
        self.private = private
        self.env.update(
            CRYPTOSENT_KAFKA_BOOTSTRAP=s.kafka_bootstrap,
            CRYPTOSENT_S3_ENDPOINT_URL=s.s3_endpoint_url or "",
            CRYPTOSENT_DASHBOARD_DATABASE_URL=database_url,
            AWS_ACCESS_KEY_ID=private.access_key,
            AWS_SECRET_ACCESS_KEY=private.secret_key,
            CRYPTOSENT_STACK_DIR=str(s.stack_dir),
            CRYPTOSENT_STACK_KAFKA_PORT=str(s.stack_kafka_port),
            CRYPTOSENT_STACK_KAFKA_CONTROLLER_PORT=str(s.stack_kafka_controller_port),
            CRYPTOSENT_STACK_POSTGRES_PORT=str(s.stack_postgres_port),
            CRYPTOSENT_STACK_S3_PORT=str(s.stack_s3_port),
        )


class Background:
    """A CLI subprocess whose output goes to files (a full pipe would stall it)."""

    def __init__(
        self,
        p: Pipeline,
        *args: str,
        log_dir: Path,
        preexec: Callable[[], None] | None = None,
        python_args: tuple[str, ...] = ("-m", "cryptosent"),
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        tag = f"{args[0]}-{uuid.uuid4().hex[:6]}"
        self.out_path, self.err_path = log_dir / f"{tag}.out", log_dir / f"{tag}.err"
        self._out: IO[bytes] = self.out_path.open("wb")
        self._err: IO[bytes] = self.err_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, *python_args, *args],
            stdout=self._out, stderr=self._err, env=p.env, cwd=REPO, preexec_fn=preexec,
        )  # fmt: skip

    @property
    def stdout(self) -> str:
        """What it printed on stdout so far."""
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        """What it printed on stderr so far."""
        return self.err_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Still running."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap."""
        self.proc.send_signal(signal.SIGKILL)
        self.wait(30)

    def wait(self, timeout: float) -> int:
        """Wait for the exit (bounded); its code."""
        code = self.proc.wait(timeout=timeout)
        self._out.close()
        self._err.close()
        return code

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM (graceful: flush and commit) and wait."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)


def wait_for(check: Callable[[], bool], *, timeout: float, what: str, step: float = 0.2) -> None:
    """Poll check until true; fail the test naming what after timeout seconds. A check that
    raises counts as not yet (a topic just created: its partitions' leaders are still being
    elected, and a watermark query says "not leader" or "unknown partition" for a moment)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as err:
            last = err
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


def stored(p: Pipeline) -> int:
    """Rows in `tweets` now."""
    return int(str(p.scalar("select count(*) from tweets")))


def topic_messages(p: Pipeline) -> int:
    """Messages in the topic, counted by kcat (a client outside the project)."""
    result = subprocess.run(
        ["kcat", "-b", p.settings.kafka_bootstrap, "-C", "-t", p.topic, "-o", "beginning",
         "-e", "-q", "-f", "%p:%o\n"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert len(set(lines)) == len(lines)
    return len(lines)


def topic_end(p: Pipeline) -> int:
    """Sum of the topic's high watermarks (messages written so far)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**connection_config(p.settings), "group.id": "fault-probe"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(p.topic, n), timeout=10)[1]
            for n in range(6)
        )
    finally:
        consumer.close()


def lake_counts(p: Pipeline) -> tuple[int, int, set[str]]:
    """(parquet rows, raw lines, distinct ids in parquet) of the whole lake."""
    parquet_rows = 0
    ids: set[str] = set()
    for key in p.live_lake_tables("processed"):
        assert key.endswith(".parquet"), key
        table = pq.read_table(io.BytesIO(p.read_object(key)))
        parquet_rows += table.num_rows
        ids.update(table.column("id").to_pylist())
    raw_lines = sum(
        gzip.decompress(p.read_object(key)).count(b"\n") for key in p.live_lake_tables("raw")
    )
    return parquet_rows, raw_lines, ids


def assert_exact(p: Pipeline, n: int) -> None:
    """Exactly n tweets everywhere: no loss, no duplicate, aggregates recomputable, no intents."""
    assert stored(p) == n
    assert p.scalar("select count(distinct id) from tweets") == n
    assert p.scalar("select coalesce(sum(tweets), 0) from coin_minute where coin = '*'") == n
    assert p.scalar("select count(*) from tweet_coins") == p.scalar(
        "select coalesce(sum(cardinality(coins)), 0) from tweets"
    )
    assert p.coin_minute_mismatches() == 0
    assert p.coin_hour_mismatches() == 0
    assert p.scalar("select count(*) from lake_intents") == 0
    parquet_rows, raw_lines, ids = lake_counts(p)
    assert (parquet_rows, raw_lines, len(ids)) == (n, n, n)
    # nothing half-written that a reader listing the lake would pick up
    leftovers = [k for k in p.lake_tables("raw") + p.lake_tables("processed") if "/.tmp-" in k]
    assert not leftovers


def private_stack_root() -> Path:
    """A folder for a private stack (short path: PostgreSQL's socket path is limited)."""
    root = Path("/tmp") / f"cs-faults-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    root.mkdir(mode=0o700)
    return root


# ---- crashes of the servers themselves --------------------------------------------------------
def descendants(pid: int) -> list[int]:
    """Every process below pid (children, their children...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _gone(pid: int) -> bool:
    # gone means reaped: PostgreSQL refuses to start while its old postmaster's pid still
    # exists, even as a zombie ("lock file postmaster.pid already exists")
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # a server this test process spawned: reap it
    return not Path(f"/proc/{pid}").exists()


def crash(private: PrivateStack, service: str) -> float:
    """SIGKILL one server of the private stack and every process under it (PostgreSQL's
    backends die with their postmaster, as in an OOM kill of the whole service); wait until
    all are gone. The monotonic time of the kill."""
    server = {"kafka": private.stack.kafka, "postgres": private.stack.postgres,
              "s3": private.stack.s3}[service]  # fmt: skip
    pid = server.pid()
    assert pid is not None, f"{service} of the private stack is not running"
    victims = [pid, *descendants(pid)]
    killed_at = time.monotonic()
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not all(_gone(v) for v in victims):
        assert time.monotonic() < deadline, f"{service} still alive 30 s after SIGKILL"
        time.sleep(0.02)
    return killed_at


def restart(private: PrivateStack, service: str) -> float:
    """Start a crashed server of the private stack again (same data); the monotonic time it
    answered."""
    if service == "kafka":
        private.stack.kafka.start()
    elif service == "postgres":
        private.restart_postgres()
    else:
        private.restart_s3()
    return time.monotonic()


def in_transaction(p: Pipeline, application: str = "cryptosent") -> bool:
    """Whether the processor's PostgreSQL sink has a transaction open on the test database."""
    found = p.scalar(
        "select count(*) from pg_stat_activity where datname = current_database() "
        f"and application_name = '{application}' and xact_start is not null "
        "and pid <> pg_backend_pid()"
    )
    return int(str(found)) > 0


def in_flush(p: Pipeline) -> bool:
    """Whether a lake flush is under way (its intent is recorded and not yet cleared)."""
    return int(str(p.scalar("select count(*) from lake_intents"))) > 0


def rss_bytes(pid: int) -> int:
    """The resident set of one process now (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class LatencyProxy:
    """A TCP proxy to 127.0.0.1:port that holds every chunk the server sends delay_s before
    passing it on: a server that answers slowly (``delay_s`` may change while it runs)."""

    def __init__(self, port: int, delay_s: float) -> None:
        self.target = ("127.0.0.1", port)
        self.delay_s = delay_s
        self._listen = socket.socket()
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(64)
        self.port = int(self._listen.getsockname()[1])
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self.chunks = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listen.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b, slow in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(a, b, slow), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        # one direction: chunks keep their order and each waits delay_s after it arrived
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def forward() -> None:
            while True:
                due, data = chunks.get()
                if not data:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    return
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    sink.sendall(data)
                except OSError:
                    return

        threading.Thread(target=forward, daemon=True).start()
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            self.chunks += 1
            chunks.put((time.monotonic() + (self.delay_s if slow else 0.0), data))
            if not data:
                return

    def close(self) -> None:
        """Stop accepting and drop every connection."""
        self._closed.set()
        self._listen.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


POISON_HOOK = """
import sys
from cryptosent.analysis import sentiment

MARK = sys.argv.pop(1)


class Poisoned:
    # VADER that raises on a text holding MARK: a message no analyzer survives (a test hook)
    def __init__(self, inner):
        self.inner = inner

    def scores(self, text):
        if MARK in text:
            raise ValueError("test hook: poisoned text")
        return self.inner.scores(text)

    def scores_many(self, texts):
        return [self.scores(text) for text in texts]


sentiment._ANALYZERS["vader"] = Poisoned(sentiment.get_analyzer("vader"))
from cryptosent.cli import main

main()
"""
"""`python -c POISON_HOOK MARK ARGS...` runs `cryptosent ARGS` with a VADER that raises on
texts containing MARK (pass as ``python_args=("-c", POISON_HOOK, MARK)`` to `Background`)."""
