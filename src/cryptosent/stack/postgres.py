"""PostgreSQL from Debian's package: a private cluster under .stack/postgres on 127.0.0.1.

PostgreSQL refuses to run as root, and sessions and CI run as root: then every server command
runs as the `postgres` system user through runuser, and the cluster's folder is owned by it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from cryptosent.config import Settings
from cryptosent.stack.process import StackError, port_open, read_pid, wait_until

START_TIMEOUT_S = 60.0
APP_ROLE = "cryptosent"
APP_DATABASE = "cryptosent"
READER_ROLE = "cryptosent_reader"
SERVER_CONF = """\
# written by `cryptosent stack up`; edits are overwritten
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 200
shared_buffers = '512MB'
work_mem = '32MB'
maintenance_work_mem = '256MB'
max_wal_size = '4GB'
checkpoint_timeout = '15min'
log_min_messages = warning
log_line_prefix = '%m [%p] %u@%d '
"""


def pg_bin_dir() -> Path:
    """The newest installed PostgreSQL server's bin folder (Debian layout)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise StackError(
        "PostgreSQL server not installed: run `make setup` (apt-get install postgresql)"
    )


class PostgresServer:
    """The local cluster: data in .stack/postgres/data, socket in .stack/postgres/run."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.stack_dir / "postgres"
        self.port = settings.stack_postgres_port
        self.as_root = os.geteuid() == 0

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        """Folder of the server's Unix socket (admin connections go through it)."""
        return (self.home / "run").resolve()

    @property
    def log_file(self) -> Path:
        """The server log (inside the postgres-owned folder, so the server can write it)."""
        return self.home / "postgres.log"

    @property
    def address(self) -> str:
        """Where clients connect."""
        return f"127.0.0.1:{self.port}"

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise StackError(f"PostgreSQL: `{Path(argv[-1]).name}` failed: {' '.join(detail)}")
        return result

    def _prepare_home(self) -> None:
        """Create .stack/postgres owned by `postgres`, relocating it if postgres cannot reach it."""
        if self.home.exists() or self.home.is_symlink():
            return
        self.home.parent.mkdir(parents=True, exist_ok=True)
        if not self.as_root:
            self.home.mkdir()
            return
        self.home.mkdir()
        shutil.chown(self.home, "postgres", "postgres")
        reachable = subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-w", str(self.home.resolve())],
            check=False,
        )
        if reachable.returncode != 0:
            # e.g. a clone under /root (mode 700): keep the data where postgres can reach it,
            # and leave a symlink under .stack so every path stays the same
            self.home.rmdir()
            key = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
            target = Path("/var/lib/postgresql") / f"cryptosent-{key}"
            target.mkdir(parents=True, exist_ok=True)
            shutil.chown(target, "postgres", "postgres")
            self.home.symlink_to(target)

    def pid(self) -> int | None:
        """Pid of this cluster's postmaster, if it runs."""
        return read_pid(self.data / "postmaster.pid")

    def admin_conninfo(self) -> str:
        """Superuser connection through the private socket (local trust, never over TCP)."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"

    def healthy(self) -> bool:
        """The server accepts connections."""
        import psycopg

        try:
            with psycopg.connect(self.admin_conninfo(), connect_timeout=2) as conn:
                conn.execute("select 1")
        except psycopg.Error:
            return False
        return True

    def start(self, app_password: str, reader_password: str) -> str:
        """Create the cluster if needed, start it (idempotent), ensure role and database."""
        bin_dir = pg_bin_dir()
        if self.pid() is not None:
            wait_until(self.healthy, timeout=START_TIMEOUT_S, what="PostgreSQL",
                       log_file=self.log_file)  # fmt: skip
            outcome = "already running"
        else:
            if port_open(self.port):
                raise StackError(
                    f"port {self.port} on 127.0.0.1 is taken by a process cryptosent did not "
                    "start: stop it or set CRYPTOSENT_STACK_POSTGRES_PORT"
                )
            self._prepare_home()
            if not (self.data / "PG_VERSION").exists():
                self._run([str(bin_dir / "initdb"), "-D", str(self.data.resolve()),
                           "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                           "--auth-local=trust", "--auth-host=scram-sha-256"])  # fmt: skip
            self._write_conf()
            self._run(["mkdir", "-p", str(self.socket_dir)])
            self._run([str(bin_dir / "pg_ctl"), "-D", str(self.data.resolve()),
                       "-l", str(self.log_file.resolve()), "-w", "-t", str(int(START_TIMEOUT_S)),
                       "start"])  # fmt: skip
            wait_until(self.healthy, timeout=START_TIMEOUT_S, what="PostgreSQL",
                       log_file=self.log_file)  # fmt: skip
            outcome = "started"
        self.ensure_role_and_database(app_password, reader_password)
        return outcome

    def _write_conf(self) -> None:
        conf = SERVER_CONF.format(port=self.port, socket_dir=self.socket_dir)
        include = "include_if_exists = 'cryptosent.conf'\n"
        main_conf = self.data / "postgresql.conf"
        self._write_as_owner(self.data / "cryptosent.conf", conf)
        text = main_conf.read_text()
        if include not in text:
            self._write_as_owner(main_conf, text + "\n" + include)

    def _write_as_owner(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self.as_root:
            shutil.chown(path, "postgres", "postgres")

    def ensure_role_and_database(self, app_password: str, reader_password: str) -> None:
        """Create the application role (allowed to create roles, for the migrations' read-only
        role), the dashboard's read-only role and the database; (re)set their passwords."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            for role, password, extra in (
                (APP_ROLE, app_password, " createrole"),
                (READER_ROLE, reader_password, ""),
            ):
                exists = conn.execute(
                    "select 1 from pg_roles where rolname = %s", [role]
                ).fetchone()
                verb = "alter" if exists else "create"
                conn.execute(
                    sql.SQL(verb + " role {} with login" + extra + " password {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            has_db = conn.execute(
                "select 1 from pg_database where datname = %s", [APP_DATABASE]
            ).fetchone()
            if not has_db:
                conn.execute(
                    sql.SQL("create database {} owner {}").format(
                        sql.Identifier(APP_DATABASE), sql.Identifier(APP_ROLE)
                    )
                )

    def stop(self) -> str:
        """Stop the cluster (fast shutdown) if it runs."""
        if self.pid() is None:
            return "not running"
        with contextlib.suppress(StackError):
            self._run([str(pg_bin_dir() / "pg_ctl"), "-D", str(self.data.resolve()),
                       "-m", "fast", "-w", "-t", "60", "stop"])  # fmt: skip
        return "stopped"
