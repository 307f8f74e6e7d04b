"""Security checks without servers: no secret in the repository, none printed by `config`,
SQL built only from constants, TLS and SASL settings reaching the clients."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from cryptosent.config import Settings
from cryptosent.kafka import connection_config, consumer_config, producer_config
from cryptosent.sinks.lake import open_lake

REPO = Path(__file__).resolve().parents[2]


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


# assembled at run time, so this file does not match its own patterns
PRIVATE_KEY = re.compile("-----BEGIN ([A-Z]+ )?" + "PRIVATE KEY-----")
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
TOKENS = re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36}|xox[abpr]-[A-Za-z0-9-]{10,}|sk_live_\w{20,})")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@")
ASSIGNED = re.compile(
    r"(?i)(secret|passw(or)?d|token|api_?key|access_?key|private_?key)[\w.-]*['\"]?\s*[:=]\s*"
    r"['\"]?([A-Za-z0-9+/_\-=]{20,})"
)


def looks_real(value: str) -> bool:
    """A credential-like value, not a placeholder (PASSWORD, ****, ${VAR}, <secret>, pw)."""
    return len(value) >= 12 and entropy(value) >= 3.5 and not value.isupper()


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = []
    for name in filter(None, names):
        path = REPO / name.decode()
        if path.is_file() and path.stat().st_size < 5_000_000 and b"\0" not in path.read_bytes():
            files.append(path)
    return files


def test_no_secret_in_tracked_files() -> None:
    findings = []
    files = tracked_text_files()
    assert len(files) > 20
    for path in files:
        text = path.read_text(errors="replace")
        where = path.relative_to(REPO)
        for pattern in (PRIVATE_KEY, AWS_KEY_ID, TOKENS):
            findings += [f"{where}: {m.group(0)[:12]}..." for m in pattern.finditer(text)]
        for match in URL_PASSWORD.finditer(text):
            if looks_real(match.group(1)):
                findings.append(f"{where}: password in URL {match.group(0)[:20]}...")
        for match in ASSIGNED.finditer(text):
            if looks_real(match.group(3)) and not match.group(3).startswith(
                ("CRYPTOSENT_", "AWS_")
            ):
                findings.append(f"{where}: {match.group(1)} = {match.group(3)[:6]}...")
    assert findings == []


def test_the_scanner_would_find_each_kind_of_secret() -> None:
    fake = "wJalrXUtnFEMI" + "K7MDENGbPxRfiCYzEXAMPLEKEY"
    assert AWS_KEY_ID.search("id = AKIA" + "IOSFODNN7EXAMPLE")
    assert PRIVATE_KEY.search("-----BEGIN RSA " + "PRIVATE KEY-----")
    assert TOKENS.search("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
    match = URL_PASSWORD.search(f"postgresql://app:{fake}@db:5432/x")
    assert match and looks_real(match.group(1))
    match = ASSIGNED.search(f'aws_secret_access_key = "{fake}"')
    assert match and looks_real(match.group(3))
    assert not looks_real("PASSWORD") and not looks_real("****") and not looks_real("pw")


def test_local_credentials_and_env_files_are_ignored_by_git() -> None:
    for path in (".stack/credentials.env", ".env"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{path} is not git-ignored"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    assert not [n for n in tracked.stdout.splitlines() if n.startswith(".stack/") or n == ".env"]


# ---- nothing printed --------------------------------------------------------------------------
SECRETS = {
    "CRYPTOSENT_DATABASE_URL": "postgresql://app:{0}@db.example:5432/prod?sslmode=require",
    "CRYPTOSENT_DASHBOARD_DATABASE_URL": "postgresql://reader:{0}%40x@db.example/prod",
    "AWS_ACCESS_KEY_ID": "{0}",
    "AWS_SECRET_ACCESS_KEY": "{0}",
    "CRYPTOSENT_KAFKA_SASL_PASSWORD": "{0}",
    "CRYPTOSENT_X_BEARER_TOKEN": "{0}",
}


def secret_env(tmp_path: Path) -> tuple[dict[str, str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOSENT_", "AWS_"))}
    values = []
    for number, (name, template) in enumerate(SECRETS.items()):
        value = f"Zq{number}xV7pLmN3rT9wKe"
        values.append(value)
        env[name] = template.format(value)
    env["COLUMNS"] = "300"
    return env, values


@pytest.mark.parametrize("args", [["config"], ["config", "--json"]])
def test_config_masks_every_credential(tmp_path: Path, args: list[str]) -> None:
    env, values = secret_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "cryptosent", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert [v for v in values if v in output] == []
    assert "****" in output
    if "--json" in args:
        view = json.loads(result.stdout)
        assert view["database_url"] == "postgresql://app:****@db.example:5432/prod?sslmode=require"
        assert view["aws_secret_access_key"] == view["kafka_sasl_password"] == "****"
        assert {"kafka_bootstrap", "topic", "database_url", "lake_url", "s3_endpoint_url"} <= set(
            view
        )


# ---- SQL only through parameters or COPY --------------------------------------------------------
SQL_CALLS = {"execute", "executemany", "copy"}


def unsafe_sql(node: ast.expr, constants: set[str]) -> bool:
    """Whether a statement is built here by formatting in something that is not a constant."""

    def constant(part: ast.expr) -> bool:
        return isinstance(part, ast.Constant) or (
            isinstance(part, ast.Name) and part.id in constants
        )

    if isinstance(node, ast.JoinedStr):  # f"... {x} ..."
        return not all(
            constant(part.value) for part in node.values if isinstance(part, ast.FormattedValue)
        )
    if isinstance(node, ast.BinOp):  # "..." + x, "..." % x
        built = (ast.BinOp, ast.JoinedStr)
        return any(
            not constant(side) and not (isinstance(side, built) and not unsafe_sql(side, constants))
            for side in (node.left, node.right)
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "encode":
            return unsafe_sql(node.func.value, constants)
        # "...".format(x) builds text; psycopg's sql.SQL(...).format(...) quotes what it adds
        return node.func.attr == "format" and not _is_sql_composed(node.func.value)
    return False


def _is_sql_composed(node: ast.expr) -> bool:
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Attribute) and node.attr == "SQL":
            return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def test_the_sql_check_flags_formatted_statements() -> None:
    def flagged(code: str) -> bool:
        call = ast.parse(code).body[0].value  # type: ignore[attr-defined]
        return unsafe_sql(call.args[0], {"_COLUMNS"})

    assert flagged('c.execute(f"select * from t where id = {user_id}")')
    assert flagged('c.execute("select * from t where id = " + user_id)')
    assert flagged('c.execute("select * from %s" % table)')
    assert flagged('c.execute("select * from {}".format(table))')
    assert not flagged('c.execute(f"copy staging ({_COLUMNS}) from stdin")')
    assert not flagged('c.execute("select %s", [x])')
    assert not flagged('c.execute(sql.SQL("drop database {}").format(sql.Identifier(n)))')


def test_sql_statements_are_built_from_constants_only() -> None:
    offenders = []
    for path in sorted((REPO / "src" / "cryptosent").rglob("*.py")):
        tree = ast.parse(path.read_text())
        constants = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign | ast.AnnAssign)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name) and target.id.lstrip("_").isupper()
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
                and node.args
                and isinstance(node.args[0], ast.JoinedStr | ast.BinOp | ast.Call)
                and unsafe_sql(node.args[0], constants)
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


# ---- TLS and SASL through configuration --------------------------------------------------------
def test_kafka_sasl_and_ssl_settings_reach_librdkafka() -> None:
    s = Settings(
        kafka_bootstrap="broker.example:9096",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="pipeline",
        kafka_sasl_password="not-a-real-one",  # type: ignore[arg-type]
        kafka_ssl_ca_location="/etc/ssl/certs/ca-certificates.crt",
    )
    assert connection_config(s) == {
        "bootstrap.servers": "broker.example:9096",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "pipeline",
        "sasl.password": "not-a-real-one",
        "ssl.ca.location": "/etc/ssl/certs/ca-certificates.crt",
    }
    from confluent_kafka import Consumer, Producer

    Producer(producer_config(s))  # librdkafka accepts every key
    Consumer(consumer_config(s))


def test_postgres_sslmode_in_the_url_reaches_libpq() -> None:
    s = Settings(database_url="postgresql://u:p@db.example/x?sslmode=verify-full&sslrootcert=/ca")  # type: ignore[arg-type]
    params = psycopg.conninfo.conninfo_to_dict(s.database_dsn())
    assert params["sslmode"] == "verify-full" and params["sslrootcert"] == "/ca"


def test_an_https_s3_endpoint_is_used_with_tls() -> None:
    location = open_lake("s3://bucket/prefix", endpoint_url="https://s3.example:9000")
    described = repr(location.fs.__reduce__())
    assert "'scheme': 'https'" in described and "s3.example:9000" in described
    plain = open_lake("s3://bucket/prefix", endpoint_url="http://127.0.0.1:7070")
    assert "'scheme': 'http'" in repr(plain.fs.__reduce__())
