"""The one Settings object: every knob of the pipeline, read from the environment and `.env`.

Nothing else in the package reads the environment. Precedence, highest first: values given on
the command line (`cryptosent --settings FILE`, options such as `dashboard --source`; see
`configure`), real environment variables, `.env` in the working directory,
`<stack dir>/credentials.env` (written by `cryptosent stack up` with the local servers' generated
passwords; the stack dir is `.stack` unless `CRYPTOSENT_STACK_DIR` says otherwise), then the
defaults below, which match the local stack.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from cryptosent.errors import FatalError

DEFAULT_STACK_DIR = Path(".stack")
STACK_CREDENTIALS_NAME = "credentials.env"
MASK = "****"
_Source = PydanticBaseSettingsSource


class Settings(BaseSettings):
    """Effective configuration of cryptosent (env prefix `CRYPTOSENT_`)."""

    model_config = SettingsConfigDict(
        env_prefix="CRYPTOSENT_",
        # the local stack's generated credentials come after .env (see settings_customise_sources)
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- Kafka -----------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic: str = "tweets"
    dlq_topic: str = "tweets.dlq"
    alerts_topic: str = "alerts"
    prices_topic: str = "prices"
    prices_dlq_topic: str = "prices.dlq"
    topic_partitions: int = Field(default=6, ge=1)
    consumer_group: str = "cryptosent-processor"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    # a processor that dies is dropped from the group after this, and its partitions move (to a
    # restarted member too); the broker accepts 6,000 to 1,800,000 by default
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000, le=3_600_000)
    # how long generate/replay/stream wait at the end for Kafka's acknowledgements before the
    # rest counts as failed (a stop shortens it to the stop's grace)
    producer_flush_seconds: float = Field(default=60.0, gt=0)

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
    # a batch is one PostgreSQL transaction (and one aggregate upsert per coin-minute): 20,000
    # drained 30 % faster than 5,000, 40,000 another 8 % than 20,000 (docs/benchmarks.md); a
    # slower stream makes smaller batches, since a poll returns what arrived within its timeout
    batch_size: int = Field(default=40_000, ge=1, le=100_000)
    # how long a poll waits for a full batch: what arrived by then is the batch (freshness waits
    # on it; the bench's instruction count stretches it as callgrind stretches the processor)
    poll_timeout_seconds: float = Field(default=0.25, gt=0, le=60)
    lake_flush_seconds: float = Field(default=60.0, gt=0)
    lake_flush_rows: int = Field(default=200_000, ge=1)
    # lake compaction (`cryptosent lake compact`, docs/storage.md): size of a compacted object,
    # and how long the objects it replaces stay for readers that listed them just before
    lake_compact_target_mb: float = Field(default=128.0, gt=0)
    lake_compact_grace_seconds: float = Field(default=30.0, ge=0)
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    alert_window_minutes: int = Field(default=30, ge=1)
    alert_min_tweets: int = Field(default=20, ge=1)
    alert_volume_factor: float = Field(default=3.0, gt=1)
    alert_sentiment_swing: float = Field(default=0.35, gt=0, le=2)
    # webhooks the alerts are posted to (docs/market.md#alerts-that-reach-people); URLs are secrets
    alert_slack_webhook_url: SecretStr | None = None
    alert_discord_webhook_url: SecretStr | None = None
    alert_webhook_url: SecretStr | None = None  # generic JSON: the alert's fields + idempotency_key
    alert_telegram_bot_token: SecretStr | None = None
    alert_telegram_chat_id: str | None = None
    alert_telegram_api_url: str = "https://api.telegram.org"
    alert_webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    alert_webhook_attempts: int = Field(default=5, ge=1, le=20)
    alert_webhook_rate_per_minute: float = Field(default=20.0, gt=0)
    # > 0: an alert also needs the coin's close to move that many percent over the alert window
    alert_price_move_percent: float = Field(default=0.0, ge=0, le=100)
    # a post dated more than this after its message reached Kafka is dead-lettered
    future_margin_seconds: float = Field(default=600.0, ge=0)
    # spam and campaign flags (docs/campaigns.md): on or off, and the seconds within which a
    # campaign's posts count together (flags stay revisable that long)
    campaign_detection: bool = True
    campaign_window_seconds: float = Field(default=900.0, gt=0, le=86_400)
    # days of raw rows (tweets, tweet_coins) PostgreSQL keeps, dropped a whole day at a time;
    # 0 keeps them for good. The aggregates, alerts and prices are always kept (docs/storage.md)
    retention_days: int = Field(default=30, ge=0)

    # --- Dashboard -------------------------------------------------------------------------------
    dashboard_port: int = Field(default=8501, ge=1, le=65535)
    dashboard_refresh_seconds: int = Field(default=10, ge=2, le=60)
    dashboard_source: Literal["postgres", "lake"] = "postgres"

    # --- Live sources ----------------------------------------------------------------------------
    x_bearer_token: SecretStr | None = None
    x_api_url: str = "https://api.x.com"
    jetstream_url: str = "wss://jetstream2.us-east.bsky.network/subscribe"

    # --- Mock feed (cryptosent generate) --------------------------------------------------------
    # share of generated posts that belong to coordinated shill campaigns (docs/campaigns.md)
    mock_campaign_share: float = Field(default=0.05, ge=0, le=0.5)

    # --- Prices (cryptosent prices) --------------------------------------------------------------
    # coins the live exchange feeds subscribe to, comma-separated tickers of the coin catalogue
    price_coins: str = "BTC,ETH,SOL,XRP,DOGE,ADA,AVAX,LINK,LTC,DOT"
    coinbase_url: str = "wss://ws-feed.exchange.coinbase.com"
    kraken_url: str = "wss://ws.kraken.com/v2"
    binance_url: str = "wss://stream.binance.com:9443/stream"
    # the mock market that moves both mock posts and mock prices (docs/market.md)
    mock_market_seed: int = 2026
    mock_sentiment_lead_minutes: float = Field(default=10.0, ge=0, le=120)
    mock_price_lead_minutes: float = Field(default=5.0, ge=0, le=120)

    # --- Local stack (cryptosent stack up) -------------------------------------------------------
    stack_dir: Path = DEFAULT_STACK_DIR
    stack_kafka_port: int = 9092
    stack_kafka_controller_port: int = 9093
    stack_postgres_port: int = 55432
    stack_s3_port: int = 7070
    stack_s3_bucket: str = "cryptosent"
    stack_kafka_heap: str = "1g"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: _Source,
        env_settings: _Source,
        dotenv_settings: _Source,
        file_secret_settings: _Source,
    ) -> tuple[_Source, ...]:
        """Command-line values, environment, `.env`, then the local stack's credentials file."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _StackCredentials(settings_cls),
            file_secret_settings,
        )

    @field_validator("s3_endpoint_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # CRYPTOSENT_S3_ENDPOINT_URL= (empty) means "real AWS S3, no custom endpoint"
        return value or None

    def s3_credentials(self) -> tuple[str | None, str | None]:
        """(access key id, secret key) for S3, unwrapped; (None, None) when unset."""
        key, secret = self.aws_access_key_id, self.aws_secret_access_key
        return (
            key.get_secret_value() if key else None,
            secret.get_secret_value() if secret else None,
        )

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


class _StackCredentials(PydanticBaseSettingsSource):
    """`<stack dir>/credentials.env`, the stack dir as the sources before it (or the default)
    say: a command run outside the repository finds the local stack's passwords with
    CRYPTOSENT_STACK_DIR alone."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: the values come from the credentials file as a whole (see __call__)."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        stack_dir = self.current_state.get("stack_dir") or DEFAULT_STACK_DIR
        path = Path(stack_dir) / STACK_CREDENTIALS_NAME
        if not path.is_file():
            return {}
        return DotEnvSettingsSource(self.settings_cls, env_file=path)()


class SettingsFileMissing(FatalError):
    """`--settings FILE` names a file that does not exist."""


def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings in an env file (`CRYPTOSENT_TOPIC=...` lines, like `.env`), by field name."""
    if not path.is_file():
        raise SettingsFileMissing(f"settings file {path} does not exist (check --settings)")
    return DotEnvSettingsSource(Settings, env_file=path)()


# Values given on the command line: a settings file and options. They win over the environment.
_settings_file: Path | None = None
_options: dict[str, Any] = {}


def configure(settings_file: Path | None = None, **options: Any) -> None:
    """Make `get_settings()` use a settings file and option values on top of the environment
    (the command line wins over the environment, which wins over `.env`); None values are
    ignored. Raises SettingsFileMissing for a settings file that does not exist."""
    global _settings_file
    if settings_file is not None:
        read_settings_file(settings_file)  # fail now, with the file's name
    _settings_file = settings_file
    _options.clear()
    _options.update({key: value for key, value in options.items() if value is not None})
    get_settings.cache_clear()


def settings_file() -> Path | None:
    """The settings file given on the command line (a child process gets it passed on)."""
    return _settings_file


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra`` on top, for a child that needs a variable of
    its own (the bench's callgrind runs fix Python's hash salt); read here, as nothing else in
    the package reads the environment."""
    return {**os.environ, **extra}


def write_settings_file(path: Path, values: dict[str, Any]) -> Path:
    """Write settings (field name -> value) as an env file a child reads with `--settings`;
    mode 600, as it may hold credentials."""
    lines = ["# written by cryptosent for a child process; read with `cryptosent --settings`"]
    for name, value in values.items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None:
            continue
        text = str(value)
        if "\n" in text or "'" in text:
            raise ValueError(f"setting {name} cannot be written to a settings file: {text!r}")
        lines.append(f"{_env_name(name)}='{text}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _env_name(key: str) -> str:
    field = Settings.model_fields.get(key)
    if field is None:
        return key  # already a variable name (an alias such as AWS_REGION)
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    return f"CRYPTOSENT_{key.upper()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (see `configure` for command-line values)."""
    explicit = read_settings_file(_settings_file) if _settings_file is not None else {}
    return Settings(**{**explicit, **_options})
