"""Security against the running stack: read-only dashboard role, TLS settings honoured, no
credential in the processor's output, servers listening on 127.0.0.1 only."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from conftest import Pipeline
from faults_support import Background

from cryptosent.config import Settings
from cryptosent.sinks.database import Database, DatabaseUnavailable
from cryptosent.sinks.offsets import OffsetStore
from cryptosent.stack.manager import Stack


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


# ---- the dashboard's role cannot write ----------------------------------------------------------
WRITES = [
    "insert into tweets (id, created_at, text, compound, pos, neu, neg, label, vader_compound,"
    " vader_pos, vader_neu, vader_neg, vader_label, kafka_partition, kafka_offset)"
    " values ('x', now(), 't', 0, 0, 1, 0, 'neutral', 0, 0, 1, 0, 'neutral', 0, 0)",
    "update coin_minute set tweets = 0",
    "delete from kafka_offsets",
    "truncate alerts",
    "create table intruder (x int)",
    "drop table tweets",
    "create role intruder",
]


@pytest.mark.parametrize("statement", WRITES, ids=lambda s: " ".join(s.split()[:2]))
def test_dashboard_reader_role_can_read_but_not_write(
    settings: Settings, database_url: str, statement: str
) -> None:
    assert settings.dashboard_database_url is not None, "stack up sets the reader's URL"
    reader = urlsplit(settings.dashboard_dsn())
    assert reader.username == "cryptosent_reader"
    test_db = urlsplit(database_url).path.lstrip("/")
    for dsn in (settings.dashboard_dsn(), with_database(settings.dashboard_dsn(), test_db)):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("select count(*) from tweets").fetchone()
            conn.execute("select count(*) from coin_minute").fetchone()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


# ---- TLS settings are honoured -------------------------------------------------------------------
def test_sslmode_in_the_database_url_is_honoured(database_url: str) -> None:
    # the local server has no TLS: requiring it must fail, proving the URL's sslmode is used
    offsets = OffsetStore("g", "t")
    required = Database(f"{database_url}?sslmode=require")
    with pytest.raises(DatabaseUnavailable, match="SSL"), required.transaction() as conn:
        offsets.load(conn, "postgres", [0])
    with Database(f"{database_url}?sslmode=disable").transaction() as conn:
        assert offsets.load(conn, "postgres", [0]) == {}


@pytest.mark.timeout(120)
def test_an_https_s3_endpoint_speaks_tls(settings: Settings, tmp_path: Path) -> None:
    from cryptosent.sinks.lake import Lake, LakeUnavailable, open_lake

    assert settings.s3_endpoint_url and settings.aws_access_key_id
    assert settings.aws_secret_access_key
    https = settings.s3_endpoint_url.replace("http://", "https://")
    lake = Lake(
        open_lake(
            f"s3://{settings.stack_s3_bucket}/tls-probe", endpoint_url=https,
            access_key=settings.aws_access_key_id.get_secret_value(),
            secret_key=settings.aws_secret_access_key.get_secret_value(),
        )
    )  # fmt: skip
    # a TLS handshake with the plain-HTTP local server fails: the client did speak TLS (a
    # connection failure, retried by the processor)
    with pytest.raises(LakeUnavailable, match=r"(?i)ssl|tls|handshake|curl"):
        lake.put("probe.txt", b"x")


@pytest.mark.timeout(120)
def test_kafka_security_protocol_is_honoured(pipeline: Pipeline) -> None:
    env = dict(pipeline.env, CRYPTOSENT_KAFKA_SECURITY_PROTOCOL="SSL")
    result = subprocess.run(
        [sys.executable, "-m", "cryptosent", "generate", "--count", "1"],
        capture_output=True, text=True, env=env, timeout=90, check=False,
    )  # fmt: skip
    # plaintext would have worked: an SSL client cannot talk to the plaintext broker
    assert result.returncode == 1
    assert "Kafka unreachable at" in result.stderr and "Traceback" not in result.stderr


# ---- no credential in the processor's output -------------------------------------------------
FAKE_S3_SECRET = "Xk4" + "qB7nT2vR9mLw8sZp3yHd"
FAKE_SASL = "Sa5" + "lP9wQ2eR7tY4uI1oPz"


@pytest.mark.timeout(180)
def test_processor_output_never_shows_credentials(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    real_password = urlsplit(p.database_url).password
    assert real_password
    gen = p.cli("generate", "--count", "500", "--rate", "max")
    assert gen.returncode == 0, gen.stderr
    env_secrets = {
        "AWS_SECRET_ACCESS_KEY": FAKE_S3_SECRET,
        "CRYPTOSENT_KAFKA_SASL_PASSWORD": FAKE_SASL,
    }
    p.env.update(env_secrets)
    # S3 refuses the wrong secret: retrying cannot fix it, the processor (-v: logging
    # everything) stops with one line naming the lake and what to check
    proc = Background(p, "process", "-v", log_dir=tmp_path)
    assert proc.wait(120) == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SIGNATURE_DOES_NOT_MATCH" in errors[0], proc.stderr
    assert "AWS_SECRET_ACCESS_KEY" in errors[0] and "Traceback" not in proc.stderr
    # a wrong database password: one line naming the server, password masked
    bad_db = p.database_url.replace(real_password, "Wr0ngPassw0rdQ9zX7")
    failed = subprocess.run(
        [sys.executable, "-m", "cryptosent", "process", "--until-idle"],
        capture_output=True, text=True, env=dict(p.env, CRYPTOSENT_DATABASE_URL=bad_db),
        timeout=60, check=False,
    )  # fmt: skip
    assert failed.returncode == 1 and "PostgreSQL unreachable at" in failed.stderr
    output = proc.stdout + proc.stderr + failed.stdout + failed.stderr
    for secret in (real_password, FAKE_S3_SECRET, FAKE_SASL, "Wr0ngPassw0rdQ9zX7"):
        assert secret not in output


# ---- 127.0.0.1 only --------------------------------------------------------------------------
def listening_sockets() -> dict[int, str]:
    """socket inode -> "address:port" of every listening TCP socket (IPv4 and IPv6)."""
    found = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            # the kernel prints 32-bit words in host (little-endian) order
            raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, width, 8))
            ip = ipaddress.ip_address(raw)
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped  # Java binds 127.0.0.1 as ::ffff:127.0.0.1
            found[inode] = f"{ip}:{int(port, 16)}"
    return found


def sockets_of(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            inodes.add(int(match[1]))
    return inodes


def test_local_stack_listens_on_127_0_0_1_only(stack: Stack) -> None:
    listening = listening_sockets()
    seen = {}
    for service in (stack.kafka, stack.postgres, stack.s3):
        pid = service.pid()
        assert pid is not None, f"{service.name} not started by cryptosent"
        addresses = sorted(listening[i] for i in sockets_of(pid) if i in listening)
        assert addresses, f"{service.name} listens nowhere?"
        seen[service.name] = addresses
    assert all(a.startswith("127.0.0.1:") for found in seen.values() for a in found), seen
    s = stack.settings
    assert f"127.0.0.1:{s.stack_kafka_port}" in seen["kafka"]
    assert f"127.0.0.1:{s.stack_postgres_port}" in seen["postgres"]
    assert seen["s3"] == [f"127.0.0.1:{s.stack_s3_port}"]
    print(json.dumps(seen))
