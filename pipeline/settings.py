"""Every tunable of the pipeline, read from the environment (and an optional ``.env`` file).

Each field below is one environment variable: the field name upper-cased. ``docs/configuration.md``
documents every one of them, and a test keeps the two in step.

A bad value stops start-up with :class:`SettingsError`, whose message names each offending variable and
the reason, so an operator never has to guess which of forty variables is wrong.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.redaction import redact
from pipeline.scheduling.cron import CronError, normalize_cron

__all__ = [
    "CompaniesFilter",
    "CronExpression",
    "Settings",
    "SettingsError",
    "Unit",
    "get_settings",
    "load_settings",
    "rabbitmq_vhost",
    "refuse_weak_secrets",
    "split_urls",
]

#: RabbitMQ closes a channel whose delivery stays unacknowledged longer than this (its default).
RABBITMQ_DEFAULT_CONSUMER_TIMEOUT_MS = 30 * 60 * 1000

#: Where the embedded mode keeps its database when ``DATABASE_URL`` is unset.
DEFAULT_SQLITE_URL = "sqlite:///livedash.sqlite3"


def _validate_cron(expression: str) -> str:
    try:
        return normalize_cron(expression)
    except CronError as exc:
        raise ValueError(str(exc)) from None


def _validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


@dataclass(frozen=True)
class CompaniesFilter:
    """``CSV_COMPANIES_FILTER`` parsed: the companies of one region, or the companies with these ids."""

    region: str | None = None
    ids: tuple[uuid.UUID, ...] = ()

    def __str__(self) -> str:
        return f"region:{self.region}" if self.region is not None else "id:" + ",".join(map(str, self.ids))


def _parse_companies_filter(value: object) -> CompaniesFilter | None:
    """``region:<name>`` or ``id:<uuid>[,<uuid>...]``, read once at start-up."""
    if value is None or isinstance(value, CompaniesFilter):
        return value
    text = str(value).strip()
    if not text:
        return None
    kind, _, argument = text.partition(":")
    argument = argument.strip()
    if kind == "region" and argument:
        return CompaniesFilter(region=argument)
    if kind == "id" and argument:
        return CompaniesFilter(ids=tuple(_company_id(part) for part in argument.split(",") if part.strip()))
    raise ValueError(f"expected 'region:<name>' or 'id:<uuid>[,<uuid>...]', got {text!r}")


def _company_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a company id (a UUID)") from None


def split_urls(value: str) -> list[str]:
    """The addresses of a setting that takes one URL or several, comma-separated (one per cluster node)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _validate_amqp_urls(value: str) -> str:
    urls = split_urls(value)
    if not urls:
        raise ValueError("expected one AMQP URL or several, comma-separated")
    for url in urls:
        if not url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"{redact(url)!r} is not an amqp:// or amqps:// URL")
    return value


def _validate_http_urls(value: str) -> str:
    urls = split_urls(value)
    if not urls:
        raise ValueError("expected one HTTP URL or several, comma-separated")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{redact(url)!r} is not an http:// or https:// URL")
    return value


def _parse_key_list(value: object) -> object:
    """``SECRET_KEY_FALLBACKS``: comma-separated keys, newest first (a key cannot contain a comma)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CronExpression = Annotated[str, AfterValidator(_validate_cron)]
TimeZoneName = Annotated[str, AfterValidator(_validate_timezone)]
PositiveInt = Annotated[int, Field(ge=1)]


@dataclass(frozen=True)
class Unit:
    """The unit of a duration setting; ``docs/configuration.md`` states it in the setting's row (tested)."""

    name: Literal["ms", "seconds", "hours", "days"]


Milliseconds = Annotated[int, Field(ge=1), Unit("ms")]
Seconds = Annotated[int, Field(ge=1), Unit("seconds")]
SecondsOrZero = Annotated[int, Field(ge=0), Unit("seconds")]
Hours = Annotated[int, Field(ge=1), Unit("hours")]
Days = Annotated[int, Field(ge=1), Unit("days")]


def rabbitmq_vhost(amqp_url: str) -> str:
    """The virtual host of an AMQP URL (``/`` when the path is empty), as pika reads it."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class SettingsError(Exception):
    """Raised when the environment holds a value the pipeline cannot start with."""


class Settings(BaseSettings):
    """The pipeline's configuration. Field ``foo_bar`` is read from ``FOO_BAR``."""

    # An empty variable means "not set" (its default), as in `OPENAI_BASE_URL=` in an env file.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    # Storage and transport
    database_url: str = DEFAULT_SQLITE_URL
    database_pool_size: PositiveInt = 5
    rabbitmq_url: Annotated[str, AfterValidator(_validate_amqp_urls)] = (
        "amqp://guest:guest@127.0.0.1:5672/%2F"
    )
    broker: Literal["rabbitmq", "memory"] = "rabbitmq"
    rabbitmq_consumer_timeout_ms: Milliseconds = RABBITMQ_DEFAULT_CONSUMER_TIMEOUT_MS
    rabbitmq_queue_type: Literal["classic", "quorum"] = "classic"
    rabbitmq_delivery_limit: PositiveInt = 10

    # Actor defaults: every limit stays below RabbitMQ's consumer timeout (checked below).
    actor_time_limit_ms: Milliseconds = 10 * 60 * 1000
    actor_max_retries: Annotated[int, Field(ge=0)] = 5
    actor_min_backoff_ms: Milliseconds = 1_000
    actor_max_backoff_ms: Milliseconds = 5 * 60 * 1000
    # Claims and sweeps (docs/configuration.md): a claim's lease is its work's time limit plus this grace;
    # a pending item is swept again once it waited this long. Short only for test and chaos runs.
    claim_lease_grace_ms: Milliseconds = 2 * 60 * 1000
    sweep_grace_ms: Milliseconds = 2 * 60 * 1000

    # Schedulers
    scheduler_enabled: bool = True
    scheduler_auto_restart: bool = True
    scheduler_instance_id: str = Field(default_factory=_default_instance_id, min_length=1)
    scheduler_timezone: TimeZoneName = "UTC"
    scheduler_catchup_window: SecondsOrZero = 3600
    scheduler_overlap_timeout: Seconds = 3600
    scheduler_history_days: Days = 30
    csv_fetch_retention_days: Days = 30
    csv_row_error_retention_days: Days = 30
    ai_request_retention_days: Days = 90
    batch_file_retention_days: Days = 30
    scheduler_max_restarts: Annotated[int, Field(ge=0)] = 5
    scheduler_restart_backoff_ms: Milliseconds = 1_000
    scheduler_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9192
    csv_import_interval: CronExpression = "*/10 * * * *"
    csv_import_batch_size: PositiveInt = 10
    csv_import_max_concurrent: PositiveInt = 5
    csv_import_timeout: Milliseconds = 300_000
    csv_import_max_bytes: PositiveInt = 1024 * 1024 * 1024
    csv_max_record_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    import_processing_interval: CronExpression = "*/2 * * * *"
    import_processing_batch_size: PositiveInt = 50
    import_processing_timeout: Milliseconds = 300_000
    import_processing_max_attempts: PositiveInt = 5
    import_processing_backoff_ms: Milliseconds = 60_000
    import_processing_max_backoff_ms: Milliseconds = 60 * 60 * 1000
    transcript_fetch_concurrency: PositiveInt = 8
    transcript_fetch_timeout: Milliseconds = 30_000
    transcript_max_bytes: PositiveInt = 5 * 1024 * 1024
    transcript_max_messages: PositiveInt = 1000
    import_processing_max_chunk_bytes: PositiveInt = 32 * 1024 * 1024
    session_processing_interval: CronExpression = "*/5 * * * *"
    session_processing_batch_size: PositiveInt = 50
    session_processing_concurrency: PositiveInt = 5
    batch_processing_interval: CronExpression = "*/5 * * * *"
    batch_processing_check_interval: CronExpression = "*/2 * * * *"

    # Tenancy
    region: str | None = None
    csv_companies_filter: Annotated[
        CompaniesFilter | None, NoDecode, BeforeValidator(_parse_companies_filter)
    ] = None
    csv_allow_private_networks: bool = False

    # AI
    ai_processing_mode: Literal["batch", "sync"] = "batch"
    openai_api_key: SecretStr = SecretStr("")
    openai_base_url: str | None = None
    openai_model: str = Field(default="gpt-4o", min_length=1)
    openai_timeout_ms: Milliseconds = 60_000
    openai_max_attempts: PositiveInt = 4
    openai_max_retry_wait_ms: Milliseconds = 60_000
    # The instructions alone are about 800 estimated tokens.
    openai_max_prompt_tokens: Annotated[int, Field(ge=2000)] = 16_000
    # At most 4 bytes a character: 600 stays below the 2,704 bytes the unique index on question.content takes.
    ai_question_max_chars: Annotated[int, Field(ge=20, le=600)] = 500
    eur_per_usd: Annotated[float, Field(gt=0)] = 0.85
    batch_min_requests: PositiveInt = 10
    batch_max_wait: Seconds = 30 * 60
    batch_max_requests: Annotated[int, Field(ge=1, le=50_000)] = 1000
    batch_max_attempts: PositiveInt = 3
    batch_timeout_hours: Hours = 24
    batch_sync_fallback: bool = False
    openai_batch_enqueued_token_limit: PositiveInt = 20_000_000
    ai_monthly_budget_default_eur: Annotated[Decimal | None, Field(ge=0, decimal_places=2)] = None

    # Worker pools (`livedash worker`, `livedash run`)
    worker_processes: PositiveInt = 2
    worker_threads: PositiveInt = 4
    worker_shutdown_grace_seconds: Seconds = 600
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9191
    metrics_host: str = "0.0.0.0"  # noqa: S104  Prometheus scrapes the pools and the scheduler from outside

    # Health aggregator and admin API (`livedash health`)
    health_host: str = "0.0.0.0"  # noqa: S104  in a container the probes and Prometheus come from outside
    health_port: Annotated[int, Field(ge=0, le=65535)] = 3000
    health_metrics_targets: str = ""
    prometheus_url: str | None = None
    rabbitmq_management_url: Annotated[str, AfterValidator(_validate_http_urls)] = (
        "http://guest:guest@127.0.0.1:15672"
    )
    health_source_timeout_ms: Milliseconds = 3_000
    health_success_interval_factor: Annotated[float, Field(gt=0)] = 3.0
    health_max_consecutive_failures: PositiveInt = 3
    health_max_lag_seconds: Seconds = 3600
    health_cache_ms: Annotated[int, Field(ge=0), Unit("ms")] = 2_000
    admin_api_max_body_bytes: PositiveInt = 16 * 1024

    # Security and operations
    admin_api_token: SecretStr = SecretStr("")
    secret_key: SecretStr = SecretStr("")
    secret_key_fallbacks: Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_parse_key_list)] = ()
    development_mode: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _limits_below_consumer_timeout(self) -> Settings:
        timeout = self.rabbitmq_consumer_timeout_ms
        for name in (
            "actor_time_limit_ms",
            "actor_max_backoff_ms",
            "csv_import_timeout",
            "import_processing_timeout",
        ):
            if getattr(self, name) >= timeout:
                raise ValueError(
                    f"{name.upper()}={getattr(self, name)} must stay below "
                    f"RABBITMQ_CONSUMER_TIMEOUT_MS={timeout}, or RabbitMQ redelivers the message forever"
                )
        if self.actor_min_backoff_ms > self.actor_max_backoff_ms:
            raise ValueError("ACTOR_MIN_BACKOFF_MS must not exceed ACTOR_MAX_BACKOFF_MS")
        if self.transcript_max_bytes > self.import_processing_max_chunk_bytes:
            # A transcript larger than a chunk may hold would be deferred from every chunk, forever.
            raise ValueError("TRANSCRIPT_MAX_BYTES must not exceed IMPORT_PROCESSING_MAX_CHUNK_BYTES")
        return self

    @property
    def rabbitmq_urls(self) -> list[str]:
        """Every node's AMQP URL, in the order connections try them (``RABBITMQ_URL``, comma-separated)."""
        return split_urls(self.rabbitmq_url)

    @property
    def rabbitmq_management_urls(self) -> list[str]:
        """Every node's management API, tried in turn (``RABBITMQ_MANAGEMENT_URL``, comma-separated)."""
        return split_urls(self.rabbitmq_management_url)

    @property
    def rabbitmq_vhost(self) -> str:
        """The virtual host of ``RABBITMQ_URL`` (of its first node; every node serves the same): the one the
        health aggregator reads, and the ``vhost`` label of RabbitMQ's series that dashboards and alerts
        select (docs/operations.md)."""
        return rabbitmq_vhost(self.rabbitmq_urls[0])

    @property
    def claim_lease_grace(self) -> timedelta:
        """How long a claim's lease outlives its work's time limit (``CLAIM_LEASE_GRACE_MS``)."""
        return timedelta(milliseconds=self.claim_lease_grace_ms)

    @property
    def sweep_grace(self) -> timedelta:
        """How long a pending item waits for its message before it is swept again (``SWEEP_GRACE_MS``)."""
        return timedelta(milliseconds=self.sweep_grace_ms)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        # A URL may carry a password: the message names the variable and the reason, never its value.
        hidden = isinstance(value, dict) or location == "" or location.endswith("_URL")
        shown = "" if hidden else f" (got {value!r})"
        lines.append(f"{location}: {message}{shown}" if location else message)
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment; ``overrides`` win over it (tests, the demo)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


#: The shortest ``ADMIN_API_TOKEN`` and ``SECRET_KEY`` a process starts with outside development mode.
MIN_SECRET_LENGTH = 32
#: Words of the example files' placeholders: a value containing one was never meant to be used.
PLACEHOLDER_WORDS = ("change-me", "changeme", "replace-me", "placeholder")


def _weakness(value: str) -> str | None:
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS):
        return "is a placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def refuse_weak_secrets(settings: Settings) -> None:
    """Raise :class:`SettingsError` when ``ADMIN_API_TOKEN`` or ``SECRET_KEY`` is set to a placeholder or
    a short value, unless ``DEVELOPMENT_MODE`` is on. Empty is allowed (the admin API is off; no password
    can be stored). The message names the variable, never the value."""
    if settings.development_mode:
        return
    problems = []
    for name in ("admin_api_token", "secret_key"):
        value = getattr(settings, name).get_secret_value()
        weakness = _weakness(value) if value else None
        if weakness is not None:
            problems.append(f"{name.upper()} {weakness}")
    if problems:
        raise SettingsError(
            "refusing to start with weak secrets:\n  "
            + "\n  ".join(problems)
            + "\n  generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            + " (or set DEVELOPMENT_MODE=true on a development machine)"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
