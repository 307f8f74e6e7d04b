"""The one Settings object: every knob of the pipeline, read from the environment and `.env`.

Nothing else in the package reads the environment. Precedence, highest first: real environment
variables, `.env` in the working directory, `.stack/credentials.env` (written by
`cryptosent stack up` with the local servers' generated passwords), then the defaults below,
which match the local stack.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STACK_CREDENTIALS_FILE = ".stack/credentials.env"
MASK = "****"


class Settings(BaseSettings):
    """Effective configuration of cryptosent (env prefix `CRYPTOSENT_`)."""

    model_config = SettingsConfigDict(
        env_prefix="CRYPTOSENT_",
        # later files win: a user's .env overrides the local stack's generated credentials
        env_file=(STACK_CREDENTIALS_FILE, ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- Kafka -----------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic: str = "tweets"
    dlq_topic: str = "tweets.dlq"
    alerts_topic: str = "alerts"
    topic_partitions: int = Field(default=6, ge=1)
    consumer_group: str = "cryptosent-processor"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None

    # --- PostgreSQL --------------------------------------------------------------------------
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://cryptosent@127.0.0.1:55432/cryptosent"),
        validation_alias=AliasChoices("CRYPTOSENT_DATABASE_URL", "DATABASE_URL"),
    )

    # the dashboard's read-only role (falls back to database_url when unset)
    dashboard_database_url: SecretStr | None = None

    # --- Lake (S3 or a local directory) --------------------------------------------------------
    lake_url: str = "file://.stack/lake"
    s3_endpoint_url: str | None = "http://127.0.0.1:7070"
    aws_access_key_id: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID")
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY")
    )
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "CRYPTOSENT_AWS_REGION"),
    )

    # --- Processor -------------------------------------------------------------------------------
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    lake_flush_seconds: float = Field(default=60.0, gt=0)
    lake_flush_rows: int = Field(default=200_000, ge=1)
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    alert_window_minutes: int = Field(default=30, ge=1)
    alert_min_tweets: int = Field(default=20, ge=1)
    alert_volume_factor: float = Field(default=3.0, gt=1)
    alert_sentiment_swing: float = Field(default=0.35, gt=0, le=2)

    # --- Dashboard -------------------------------------------------------------------------------
    dashboard_port: int = Field(default=8501, ge=1, le=65535)
    dashboard_refresh_seconds: int = Field(default=10, ge=2, le=60)
    dashboard_source: Literal["postgres", "lake"] = "postgres"

    # --- Live sources ----------------------------------------------------------------------------
    x_bearer_token: SecretStr | None = None
    jetstream_url: str = "wss://jetstream2.us-east.bsky.network/subscribe"

    # --- Local stack (cryptosent stack up) -------------------------------------------------------
    stack_dir: Path = Path(".stack")
    stack_kafka_port: int = 9092
    stack_kafka_controller_port: int = 9093
    stack_postgres_port: int = 55432
    stack_s3_port: int = 7070
    stack_s3_bucket: str = "cryptosent"
    stack_kafka_heap: str = "1g"

    @field_validator("s3_endpoint_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # CRYPTOSENT_S3_ENDPOINT_URL= (empty) means "real AWS S3, no custom endpoint"
        return value or None

    def kafka_config(self) -> dict[str, str]:
        """librdkafka connection settings (bootstrap, security) shared by all clients."""
        conf = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = self.kafka_ssl_ca_location
        return conf

    def database_dsn(self) -> str:
        """The PostgreSQL connection URL, password included (never print it)."""
        return self.database_url.get_secret_value()

    def dashboard_dsn(self) -> str:
        """The dashboard's (read-only) connection URL; the main one when none is set."""
        if self.dashboard_database_url is not None:
            return self.dashboard_database_url.get_secret_value()
        return self.database_dsn()

    def public_view(self) -> dict[str, Any]:
        """Every setting with secrets masked, for `cryptosent config`."""
        view: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "database_url":
                value = mask_url_password(self.database_dsn())
            elif name == "dashboard_database_url" and value is not None:
                value = mask_url_password(value.get_secret_value())
            elif isinstance(value, SecretStr):
                value = MASK
            elif isinstance(value, Path):
                value = str(value)
            view[name] = value
        return view


_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_url_password(url: str) -> str:
    """Replace the password in a URL (or a libpq `key=value` string) by ****."""
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(lambda m: m[1] + MASK, url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
