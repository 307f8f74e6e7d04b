"""Settings: prefix, DATABASE_URL, .env, masking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from cryptosent.config import Settings, mask_url_password
from cryptosent.kafka import connection_config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("CRYPTOSENT_", "AWS_")) or key == "DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env / .stack of the developer's


def test_defaults_match_the_local_stack() -> None:
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.topic == "tweets"
    assert s.database_dsn() == "postgresql://cryptosent@127.0.0.1:55432/cryptosent"
    assert s.s3_endpoint_url == "http://127.0.0.1:7070"


def test_prefixed_variables_and_heroku_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOSENT_KAFKA_BOOTSTRAP", "broker:29092")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db.example:5432/d")
    s = Settings()
    assert s.kafka_bootstrap == "broker:29092"
    assert s.database_dsn() == "postgres://u:pw@db.example:5432/d"
    monkeypatch.setenv("CRYPTOSENT_DATABASE_URL", "postgresql://x@h/y")
    assert Settings().database_dsn() == "postgresql://x@h/y"


def test_dotenv_overrides_stack_credentials_and_env_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".stack").mkdir()
    (tmp_path / ".stack" / "credentials.env").write_text("AWS_ACCESS_KEY_ID=from-stack\n")
    assert Settings().aws_access_key_id.get_secret_value() == "from-stack"  # type: ignore[union-attr]
    (tmp_path / ".env").write_text("AWS_ACCESS_KEY_ID=from-dotenv\nCRYPTOSENT_TOPIC=t2\n")
    s = Settings()
    assert s.aws_access_key_id.get_secret_value() == "from-dotenv"  # type: ignore[union-attr]
    assert s.topic == "t2"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    assert Settings().aws_access_key_id.get_secret_value() == "from-env"  # type: ignore[union-attr]


def test_empty_s3_endpoint_means_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOSENT_S3_ENDPOINT_URL", "")
    assert Settings().s3_endpoint_url is None


def test_sasl_settings_reach_the_kafka_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOSENT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CRYPTOSENT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CRYPTOSENT_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("CRYPTOSENT_KAFKA_SASL_PASSWORD", "s3cret-value")
    conf = connection_config(Settings())
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == "s3cret-value"


def test_mask_url_password() -> None:
    assert mask_url_password("postgresql://u:pw@h:1/d") == "postgresql://u:****@h:1/d"
    assert mask_url_password("postgresql://u@h/d") == "postgresql://u@h/d"
    assert mask_url_password("postgres://u:p%40ss@h/d?sslmode=require") == (
        "postgres://u:****@h/d?sslmode=require"
    )
    # libpq keyword strings too, quoted or not
    assert mask_url_password("host=db user=u password=s3cr3t dbname=d") == (
        "host=db user=u password=**** dbname=d"
    )
    assert mask_url_password("host=db password = 'a b\\' c' port=5432") == (
        "host=db password = **** port=5432"
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptosent", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_config_json_has_the_brief_keys_and_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2-pw@db:5432/prod")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-123")
    monkeypatch.setenv("CRYPTOSENT_X_BEARER_TOKEN", "bearer-token-value-456")
    result = run_cli("config", "--json")
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    for key in ("kafka_bootstrap", "topic", "database_url", "lake_url", "s3_endpoint_url"):
        assert key in view
    assert view["database_url"] == "postgresql://app:****@db:5432/prod"
    for secret in ("hunter2-pw", "aws-secret-value-123", "bearer-token-value-456"):
        assert secret not in result.stdout
    table = run_cli("config")
    assert table.returncode == 0
    assert "hunter2-pw" not in table.stdout and "aws-secret-value-123" not in table.stdout


def test_unreachable_database_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CRYPTOSENT_DATABASE_URL", f"postgresql://u:pw@127.0.0.1:{port}/d")
    result = run_cli("db", "migrate")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"PostgreSQL unreachable at postgresql://u:****@127.0.0.1:{port}/d" in lines[0]
    assert "cryptosent stack up" in lines[0]
    assert "Traceback" not in result.stderr


def test_env_example_documents_every_setting() -> None:
    repo = Path(__file__).resolve().parents[2]
    documented = (repo / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = list(alias.choices) if alias is not None else [f"CRYPTOSENT_{name.upper()}"]  # type: ignore[union-attr]
        assert any(str(n) in documented for n in names), f"{names} missing from .env.example"


def test_settings_file_wins_over_environment_and_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptosent.config import configure, get_settings, settings_file, write_settings_file

    (tmp_path / ".env").write_text("CRYPTOSENT_TOPIC=from-dotenv\nCRYPTOSENT_BATCH_SIZE=7\n")
    monkeypatch.setenv("CRYPTOSENT_TOPIC", "from-env")
    path = write_settings_file(
        tmp_path / "child.env",
        {"topic": "from-file", "database_url": SecretStr("postgresql://u:p@h/d"),
         "AWS_REGION": "eu-west-1", "lake_flush_seconds": 30.0},
    )  # fmt: skip
    assert path.stat().st_mode & 0o777 == 0o600
    try:
        configure(settings_file=path, dashboard_source="lake", batch_size=None)
        s = get_settings()
        assert (s.topic, s.database_dsn(), s.aws_region) == ("from-file", "postgresql://u:p@h/d",
                                                             "eu-west-1")  # fmt: skip
        assert s.lake_flush_seconds == 30.0 and s.dashboard_source == "lake"
        assert s.batch_size == 7  # not in the file: .env still counts
        assert settings_file() == path
    finally:
        configure()
    assert get_settings().topic == "from-env"


def test_missing_settings_file_is_one_clear_error(tmp_path: Path) -> None:
    from cryptosent.config import SettingsFileMissing, configure
    from cryptosent.errors import FatalError

    with pytest.raises(SettingsFileMissing, match=r"nope\.env does not exist") as caught:
        configure(settings_file=tmp_path / "nope.env")
    assert isinstance(caught.value, FatalError)


def test_stack_credentials_follow_the_stack_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "repo" / ".stack"
    elsewhere.mkdir(parents=True)
    (elsewhere / "credentials.env").write_text("AWS_ACCESS_KEY_ID=from-that-stack\n")
    assert Settings().aws_access_key_id is None
    monkeypatch.setenv("CRYPTOSENT_STACK_DIR", str(elsewhere))
    assert Settings().s3_credentials() == ("from-that-stack", None)


def test_demo_sets_only_what_the_user_did_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptosent.demo import demo_settings

    assert demo_settings(Settings()) == {
        "lake_url": "s3://cryptosent/lake", "lake_flush_seconds": 30.0,
    }  # fmt: skip
    (tmp_path / ".env").write_text("CRYPTOSENT_LAKE_URL=file:///data/lake\n")
    assert demo_settings(Settings()) == {"lake_flush_seconds": 30.0}
    monkeypatch.setenv("CRYPTOSENT_LAKE_FLUSH_SECONDS", "5")
    assert demo_settings(Settings()) == {}


def test_dashboard_app_options_after_the_double_dash(tmp_path: Path) -> None:
    from cryptosent.config import configure, get_settings
    from cryptosent.dashboard import data

    path = tmp_path / "s.env"
    path.write_text("CRYPTOSENT_TOPIC=t9\n")
    try:
        data.use_command_line(["--settings", str(path), "--source", "lake", "--refresh", "4"])
        s = get_settings()
        assert (s.topic, s.dashboard_source, s.dashboard_refresh_seconds) == ("t9", "lake", 4)
        data.use_command_line(["-q", "tests/unit"])  # pytest's own argv: nothing to apply
        assert get_settings().dashboard_source == "lake"
    finally:
        configure()


def test_a_child_environment_is_this_one_with_the_extra_variables_on_top() -> None:
    from cryptosent.config import child_environment

    env = child_environment(PYTHONHASHSEED="0", PATH="/nowhere")
    assert env["PYTHONHASHSEED"] == "0" and env["PATH"] == "/nowhere"
    assert child_environment()["PATH"] != "/nowhere"  # the process's own stays as it was
