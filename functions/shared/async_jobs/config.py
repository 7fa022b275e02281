"""Function settings from environment variables, parsed and validated once at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

API_TYPES = ("rest", "http")
AUTHORIZATIONS = ("AWS_IAM", "JWT", "COGNITO", "API_KEY", "NONE")
SINKS = ("s3", "redshift_data", "redshift")


class ConfigError(ValueError):
    """An environment variable is missing or holds a value the function cannot use."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"environment variable {name}: {problem}")
        self.name = name


class _Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def required(self, name: str) -> str:
        value = self._raw(name)
        if value is None:
            raise ConfigError(name, "is required")
        return value

    def optional(self, name: str, default: str | None = None) -> str | None:
        value = self._raw(name)
        return default if value is None else value

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            parsed = int(value)
        except ValueError:
            raise ConfigError(name, f"expected an integer, got {value!r}") from None
        if parsed < minimum or (maximum is not None and parsed > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise ConfigError(name, f"must be {bounds}, got {parsed}")
        return parsed

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            parsed = float(value)
        except ValueError:
            raise ConfigError(name, f"expected a number, got {value!r}") from None
        if not minimum <= parsed <= maximum:
            raise ConfigError(name, f"must be between {minimum:g} and {maximum:g}, got {parsed:g}")
        return parsed

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(name, f"expected true or false, got {value!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
        value = self._raw(name)
        if value is None:
            return default
        normalized = value.upper() if upper else value.lower()
        if normalized not in choices:
            raise ConfigError(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return normalized


@dataclass(frozen=True)
class ApiConfig:
    """Settings shared by the two HTTP functions."""

    state_bucket: str
    api_type: str
    authorization: str
    retry_after_seconds: int


@dataclass(frozen=True)
class SubmitConfig(ApiConfig):
    queue_url: str = ""
    queue_fifo: bool = False
    max_records_per_job: int = 100_000
    max_body_bytes: int = 5 * 1024 * 1024
    upload_url_ttl_seconds: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SubmitConfig:
        env = _Env(os.environ if environ is None else environ)
        return cls(
            **_api_fields(env),
            queue_url=env.required("QUEUE_URL"),
            queue_fifo=env.boolean("QUEUE_FIFO", False),
            max_records_per_job=env.integer("MAX_RECORDS_PER_JOB", 100_000, 1),
            max_body_bytes=env.integer("MAX_BODY_BYTES", 5 * 1024 * 1024, 1),
            upload_url_ttl_seconds=env.integer("UPLOAD_URL_TTL_SECONDS", 3600, 1, 7 * 24 * 3600),
        )


@dataclass(frozen=True)
class StatusConfig(ApiConfig):
    errors_url_ttl_seconds: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StatusConfig:
        env = _Env(os.environ if environ is None else environ)
        return cls(
            **_api_fields(env),
            errors_url_ttl_seconds=env.integer("ERRORS_URL_TTL_SECONDS", 3600, 1, 7 * 24 * 3600),
        )


def _api_fields(env: _Env) -> dict[str, Any]:
    """The ApiConfig fields every API function reads, validated."""
    return asdict(
        ApiConfig(
            state_bucket=env.required("STATE_BUCKET"),
            api_type=env.choice("API_TYPE", "rest", API_TYPES),
            authorization=env.choice("AUTHORIZATION", "AWS_IAM", AUTHORIZATIONS, upper=True),
            retry_after_seconds=env.integer("RETRY_AFTER_SECONDS", 5, 0, 3600),
        )
    )


@dataclass(frozen=True)
class RedshiftConfig:
    """Where the redshift sinks load: REDSHIFT_* variables (secrets by ARN, never by value)."""

    table: str
    iam_role_arn: str | None
    database: str | None
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    db_user: str | None = None
    secret_arn: str | None = None
    host: str | None = None
    port: int = 5439
    poll_seconds: float = 0.5
    timeout_seconds: int = 600

    @classmethod
    def from_env(cls, env: _Env, sink: str) -> RedshiftConfig:
        table = env.required("REDSHIFT_TABLE")
        if not all(part.replace("_", "").isalnum() for part in table.split(".")) or table.count(".") > 1:
            raise ConfigError(
                "REDSHIFT_TABLE", f"expected [schema.]table of letters, digits and _, got {table!r}"
            )
        config = cls(
            table=table,
            iam_role_arn=env.optional("REDSHIFT_IAM_ROLE_ARN"),
            database=env.optional("REDSHIFT_DATABASE"),
            cluster_identifier=env.optional("REDSHIFT_CLUSTER_IDENTIFIER"),
            workgroup_name=env.optional("REDSHIFT_WORKGROUP_NAME"),
            db_user=env.optional("REDSHIFT_DB_USER"),
            secret_arn=env.optional("REDSHIFT_SECRET_ARN"),
            host=env.optional("REDSHIFT_HOST"),
            port=env.integer("REDSHIFT_PORT", 5439, 1, 65535),
            timeout_seconds=env.integer("REDSHIFT_TIMEOUT_SECONDS", 600, 1, 900),
        )
        if config.iam_role_arn is None:
            raise ConfigError("REDSHIFT_IAM_ROLE_ARN", "is required for COPY from the state bucket")
        if sink == "redshift_data":
            if not (config.cluster_identifier or config.workgroup_name):
                raise ConfigError(
                    "REDSHIFT_CLUSTER_IDENTIFIER", "or REDSHIFT_WORKGROUP_NAME is required for redshift_data"
                )
            if config.database is None:
                raise ConfigError("REDSHIFT_DATABASE", "is required for redshift_data")
        if sink == "redshift" and config.host is None and config.secret_arn is None:
            raise ConfigError("REDSHIFT_HOST", "or REDSHIFT_SECRET_ARN (with host) is required for redshift")
        return config


@dataclass(frozen=True)
class WorkerConfig:
    state_bucket: str
    queue_url: str
    queue_fifo: bool = False
    chunk_size: int = 500
    progress_every: int = 100
    tolerated_failure_percent: float = 0.0
    max_receive_count: int = 5
    sink: str = "s3"
    record_schema_key: str | None = None
    record_processor: str | None = None
    redshift: RedshiftConfig | None = field(default=None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        env = _Env(os.environ if environ is None else environ)
        sink = env.choice("SINK", "s3", SINKS)
        processor = env.optional("RECORD_PROCESSOR")
        if processor is not None and (processor.count(":") != 1 or not all(processor.split(":"))):
            raise ConfigError("RECORD_PROCESSOR", f"expected 'module:function', got {processor!r}")
        return cls(
            state_bucket=env.required("STATE_BUCKET"),
            queue_url=env.required("QUEUE_URL"),
            queue_fifo=env.boolean("QUEUE_FIFO", False),
            chunk_size=env.integer("CHUNK_SIZE", 500, 1, 1_000_000),
            progress_every=env.integer("PROGRESS_EVERY", 100, 0),
            tolerated_failure_percent=env.number("TOLERATED_FAILURE_PERCENT", 0.0, 0.0, 100.0),
            max_receive_count=env.integer("MAX_RECEIVE_COUNT", 5, 1, 1000),
            sink=sink,
            record_schema_key=env.optional("RECORD_SCHEMA_KEY"),
            record_processor=processor,
            redshift=RedshiftConfig.from_env(env, sink) if sink != "s3" else None,
        )
