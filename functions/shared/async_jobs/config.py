"""Function settings from environment variables, parsed and validated once at cold start.

Each config class declares the variables it reads (`env_vars()`, a tuple of `EnvVar`), taken
from the module's contract (contract.json: the function's groups of variables); its parser
reads through an `_Env` bound to that declaration, which refuses an undeclared variable and
takes "required" from the declaration alone. A setting (a tunable number such as CHUNK_SIZE)
takes its default and bounds from the contract too, the same ones Terraform's variables
default to and validate against, so a function refuses exactly what Terraform refuses. The
plan tests hold Terraform's planned environments to these declarations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from async_jobs.callbacks import allow_list_entry
from async_jobs.contract import Setting, contract

API_TYPES = ("rest", "http")
AUTHORIZATIONS = ("AWS_IAM", "JWT", "COGNITO", "API_KEY", "NONE")
SINKS = ("s3", "redshift_data", "redshift", "postgres")
REDSHIFT_SINKS = ("redshift_data", "redshift")
POSTGRES_AUTHS = ("iam", "secret")
# `require` encrypts without checking the server's certificate; `verify-full` also checks it
# against POSTGRES_SSLROOTCERT (e.g. the RDS CA bundle packaged with the worker) or, with
# `system`, the operating system's trust store. Plain text is not offered.
POSTGRES_SSLMODES = ("require", "verify-ca", "verify-full")
# Redshift's limit on an identifier, in bytes of UTF-8.
MAX_IDENTIFIER_BYTES = 127


class ConfigError(ValueError):
    """An environment variable is missing or holds a value the function cannot use."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"environment variable {name}: {problem}")
        self.name = name


@dataclass(frozen=True)
class EnvVar:
    """One environment variable a parser reads; `required` is enforced by `_Env`."""

    name: str
    required: bool = False
    description: str = ""


Declaration = tuple[EnvVar, ...]


class _Env:
    """Reads an environment on behalf of a parser, held to that parser's declaration."""

    def __init__(self, environ: Mapping[str, str], declared: Declaration) -> None:
        self._environ = environ
        self._declared = {var.name: var for var in declared}

    def _raw(self, name: str) -> str | None:
        var = self._declared.get(name)
        if var is None:
            # A defect in the parser, not in the configuration: reading means declaring.
            raise LookupError(f"{name} is read but not declared")
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            if var.required:
                raise ConfigError(name, "is required")
            return None
        return value.strip()

    def required(self, name: str) -> str:
        if name in self._declared and not self._declared[name].required:
            raise LookupError(f"{name} is read as required but declared optional")
        value = self._raw(name)
        assert value is not None  # _raw raised for a missing required variable
        return value

    def optional(self, name: str, default: str | None = None) -> str | None:
        value = self._raw(name)
        return default if value is None else value

    def setting(self, name: str) -> Any:
        """A setting of the contract: its default when unset, refused outside its bounds."""
        setting = contract().settings[name]
        if setting.type == "integer":
            return self.integer(
                setting.variable,
                int(setting.default),
                int(setting.minimum),
                None if setting.maximum is None else int(setting.maximum),
            )
        return self.number(setting.variable, float(setting.default), setting.minimum, _maximum(setting))

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

    def identifier(self, name: str, default: str | None = None) -> str | None:
        """A database identifier: quoted when used, so only its length and characters are checked."""
        value = self.optional(name, default)
        if value is None:
            return None
        if len(value.encode()) > MAX_IDENTIFIER_BYTES or not value.isprintable():
            raise ConfigError(
                name, f"expected at most {MAX_IDENTIFIER_BYTES} bytes of printable text, got {value!r}"
            )
        return value


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _maximum(setting: Setting) -> float:
    if setting.maximum is None:
        raise LookupError(f"setting {setting.name} is a number without a maximum in the contract")
    return setting.maximum


def declared(*groups: str) -> Declaration:
    """The contract's environment variables of ``groups``, in order."""
    environment = contract().environment
    return tuple(EnvVar(v.name, v.required, v.description) for group in groups for v in environment[group])


def function_env(function: str) -> Declaration:
    """What the contract lists for ``function`` (a worker's sink adds its own group)."""
    return declared(*contract().functions[function])


################################################################################
# API functions (submit, status)
################################################################################


@dataclass(frozen=True)
class NotifyConfig:
    events_enabled: bool = False
    callback_allowed_hosts: tuple[str, ...] = ()
    events_bus_name: str | None = None
    events_source: str = "async-jobs"
    callback_secret_arn: str | None = None
    callback_max_attempts: int = field(
        default_factory=lambda: int(contract().settings["callback_max_attempts"].default)
    )
    callback_timeout_seconds: float = field(
        default_factory=lambda: float(contract().settings["callback_timeout_seconds"].default)
    )
    callback_allow_private_addresses: bool = False
    callback_ca_bundle: str | None = None
    # lifetime of the presigned links.errors an event's or a callback's job resource carries
    errors_url_ttl_seconds: int | None = None

    @classmethod
    def from_env(cls, env: _Env, *, worker: bool) -> NotifyConfig:
        """Notification settings (notify.py, callbacks.py): submit checks callback URLs and queues
        a cancelled job's notifications (the contract's notify_api group); the worker publishes
        them (notify_worker, errors_link)."""
        listed = (env.optional("CALLBACK_ALLOWED_HOSTS") or "").split(",")
        hosts = tuple(host.strip().lower() for host in listed if host.strip())
        for host in hosts:
            try:
                allow_list_entry(host)
            except ValueError as exc:
                raise ConfigError("CALLBACK_ALLOWED_HOSTS", str(exc)) from None
        api = cls(events_enabled=env.boolean("EVENTS_ENABLED", False), callback_allowed_hosts=hosts)
        if not worker:
            return api
        secret = env.optional("CALLBACK_SECRET_ARN")
        if hosts and secret is None:
            raise ConfigError("CALLBACK_SECRET_ARN", "is required when CALLBACK_ALLOWED_HOSTS is set")
        return cls(
            events_enabled=api.events_enabled,
            callback_allowed_hosts=hosts,
            events_bus_name=env.optional("EVENTS_BUS_NAME"),
            events_source=env.optional("EVENTS_SOURCE", "async-jobs") or "async-jobs",
            callback_secret_arn=secret,
            callback_max_attempts=env.setting("callback_max_attempts"),
            callback_timeout_seconds=env.setting("callback_timeout_seconds"),
            callback_allow_private_addresses=env.boolean("CALLBACK_ALLOW_PRIVATE_ADDRESSES", False),
            callback_ca_bundle=env.optional("CALLBACK_CA_BUNDLE"),
            errors_url_ttl_seconds=env.setting("errors_url_ttl_seconds"),
        )


@dataclass(frozen=True)
class ApiConfig:
    """Settings shared by the two HTTP functions."""

    state_bucket: str
    api_type: str
    authorization: str
    retry_after_seconds: int


@dataclass(frozen=True)
class SubmitConfig(ApiConfig):
    queue_url: str
    queue_fifo: bool
    max_records_per_job: int
    max_body_bytes: int
    upload_url_ttl_seconds: int
    max_upload_bytes: int
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    ENV = function_env("submit")

    @classmethod
    def env_vars(cls, environ: Mapping[str, str] | None = None) -> Declaration:
        return cls.ENV

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SubmitConfig:
        env = _Env(_environ(environ), cls.env_vars(environ))
        return cls(
            **_api_fields(env),
            queue_url=env.required("QUEUE_URL"),
            queue_fifo=env.boolean("QUEUE_FIFO", False),
            max_records_per_job=env.setting("max_records_per_job"),
            max_body_bytes=env.setting("max_body_bytes"),
            upload_url_ttl_seconds=env.setting("upload_url_ttl_seconds"),
            max_upload_bytes=env.setting("max_upload_bytes"),
            notify=NotifyConfig.from_env(env, worker=False),
        )


@dataclass(frozen=True)
class StatusConfig(ApiConfig):
    errors_url_ttl_seconds: int

    ENV = function_env("status")

    @classmethod
    def env_vars(cls, environ: Mapping[str, str] | None = None) -> Declaration:
        return cls.ENV

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StatusConfig:
        env = _Env(_environ(environ), cls.env_vars(environ))
        return cls(
            **_api_fields(env),
            errors_url_ttl_seconds=env.setting("errors_url_ttl_seconds"),
        )


def _api_fields(env: _Env) -> dict[str, Any]:
    """The ApiConfig fields every API function reads, validated."""
    return asdict(
        ApiConfig(
            state_bucket=env.required("STATE_BUCKET"),
            api_type=env.choice("API_TYPE", "rest", API_TYPES),
            authorization=env.choice("AUTHORIZATION", "AWS_IAM", AUTHORIZATIONS, upper=True),
            retry_after_seconds=env.setting("retry_after_seconds"),
        )
    )


################################################################################
# Worker
################################################################################


@dataclass(frozen=True)
class RedshiftConfig:
    """Where the redshift sinks load: REDSHIFT_* variables (secrets by ARN, never by value).

    The target is `schema.table`, each part quoted when the SQL is built. Without a COPY role
    ARN, COPY uses the cluster's default IAM role (`IAM_ROLE default`).
    """

    table: str
    copy_role_arn: str | None
    database: str | None
    schema: str = "public"
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    db_user: str | None = None
    secret_arn: str | None = None
    host: str | None = None
    port: int = 5439
    poll_seconds: float = 0.5
    timeout_seconds: int = 600

    @staticmethod
    def env_vars(sink: str) -> Declaration:
        """What each Redshift sink reads: the Data API addresses a cluster or workgroup by name,
        the connector a host and port."""
        common = tuple(
            # the Data API takes no database from a secret
            replace(var, required=True)
            if var.name == "REDSHIFT_DATABASE" and sink == "redshift_data"
            else var
            for var in declared("redshift")
        )
        return common + declared("redshift_data" if sink == "redshift_data" else "redshift_connector")

    @classmethod
    def from_env(cls, env: _Env, sink: str) -> RedshiftConfig:
        table = env.identifier("REDSHIFT_TABLE")
        assert table is not None  # declared required
        if "." in table:
            raise ConfigError(
                "REDSHIFT_TABLE",
                f"expected a table name without schema, got {table!r}; set the schema in "
                "REDSHIFT_SCHEMA (sink.redshift.schema)",
            )
        common: dict[str, Any] = {
            "table": table,
            "schema": env.identifier("REDSHIFT_SCHEMA", "public"),
            "copy_role_arn": env.optional("REDSHIFT_COPY_ROLE_ARN"),
            "database": env.optional("REDSHIFT_DATABASE"),
            "db_user": env.optional("REDSHIFT_DB_USER"),
            "secret_arn": env.optional("REDSHIFT_SECRET_ARN"),
            "timeout_seconds": env.integer("REDSHIFT_TIMEOUT_SECONDS", 600, 1, 900),
        }
        if sink == "redshift_data":
            config = cls(
                **common,
                cluster_identifier=env.optional("REDSHIFT_CLUSTER_IDENTIFIER"),
                workgroup_name=env.optional("REDSHIFT_WORKGROUP_NAME"),
            )
            if not (config.cluster_identifier or config.workgroup_name):
                raise ConfigError(
                    "REDSHIFT_CLUSTER_IDENTIFIER", "or REDSHIFT_WORKGROUP_NAME is required for redshift_data"
                )
            return config
        config = cls(
            **common,
            host=env.optional("REDSHIFT_HOST"),
            port=env.integer("REDSHIFT_PORT", 5439, 1, 65535),
        )
        if config.host is None and config.secret_arn is None:
            raise ConfigError("REDSHIFT_HOST", "or REDSHIFT_SECRET_ARN (with host) is required for redshift")
        return config


@dataclass(frozen=True)
class PostgresConfig:
    """Where the postgres sink upserts: POSTGRES_* variables (credentials by IAM or secret ARN)."""

    host: str
    database: str
    user: str
    table: str
    schema: str = "public"
    port: int = 5432
    auth: str = "iam"
    secret_arn: str | None = None
    sslmode: str = "require"
    sslrootcert: str | None = None
    timeout_seconds: int = 600
    connect_timeout_seconds: int = 10

    ENV = declared("postgres")

    @classmethod
    def from_env(cls, env: _Env) -> PostgresConfig:
        table = env.identifier("POSTGRES_TABLE")
        assert table is not None  # declared required
        if "." in table:
            raise ConfigError(
                "POSTGRES_TABLE",
                f"expected a table name without schema, got {table!r}; set the schema in "
                "POSTGRES_SCHEMA (sink.postgres.schema)",
            )
        config = cls(
            host=env.required("POSTGRES_HOST"),
            port=env.integer("POSTGRES_PORT", 5432, 1, 65535),
            database=env.required("POSTGRES_DATABASE"),
            user=env.required("POSTGRES_USER"),
            table=table,
            schema=env.identifier("POSTGRES_SCHEMA", "public") or "public",
            auth=env.choice("POSTGRES_AUTH", "iam", POSTGRES_AUTHS),
            secret_arn=env.optional("POSTGRES_SECRET_ARN"),
            sslmode=env.choice("POSTGRES_SSLMODE", "require", POSTGRES_SSLMODES),
            sslrootcert=env.optional("POSTGRES_SSLROOTCERT"),
            timeout_seconds=env.integer("POSTGRES_TIMEOUT_SECONDS", 600, 1, 900),
        )
        if config.auth == "secret" and not config.secret_arn:
            raise ConfigError("POSTGRES_SECRET_ARN", "is required when POSTGRES_AUTH is secret")
        if config.auth == "iam" and config.secret_arn:
            raise ConfigError(
                "POSTGRES_SECRET_ARN", "is set but POSTGRES_AUTH is iam: set POSTGRES_AUTH=secret or drop it"
            )
        return config


@dataclass(frozen=True)
class WorkerConfig:
    state_bucket: str
    queue_url: str
    queue_fifo: bool
    chunk_size: int
    tolerated_failure_percent: float
    max_receive_count: int
    sink: str = "s3"
    record_schema_key: str | None = None
    record_processor: str | None = None
    dead_letter_queue_arn: str | None = None
    redshift: RedshiftConfig | None = field(default=None)
    postgres: PostgresConfig | None = field(default=None)
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    ENV = function_env("worker")

    @classmethod
    def env_vars(cls, environ: Mapping[str, str] | None = None) -> Declaration:
        """The worker's variables, with the chosen sink's (SINK decides which apply)."""
        sink = _Env(_environ(environ), cls.ENV).choice("SINK", "s3", SINKS)
        if sink == "postgres":
            return cls.ENV + PostgresConfig.ENV
        return cls.ENV + (RedshiftConfig.env_vars(sink) if sink in REDSHIFT_SINKS else ())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        env = _Env(_environ(environ), cls.env_vars(environ))
        sink = env.choice("SINK", "s3", SINKS)
        processor = env.optional("RECORD_PROCESSOR")
        if processor is not None and (processor.count(":") != 1 or not all(processor.split(":"))):
            raise ConfigError("RECORD_PROCESSOR", f"expected 'module:function', got {processor!r}")
        return cls(
            state_bucket=env.required("STATE_BUCKET"),
            queue_url=env.required("QUEUE_URL"),
            queue_fifo=env.boolean("QUEUE_FIFO", False),
            chunk_size=env.setting("chunk_size"),
            tolerated_failure_percent=env.setting("tolerated_failure_percent"),
            max_receive_count=env.setting("max_receive_count"),
            sink=sink,
            record_schema_key=env.optional("RECORD_SCHEMA_KEY"),
            record_processor=processor,
            dead_letter_queue_arn=env.optional("DEAD_LETTER_QUEUE_ARN"),
            redshift=RedshiftConfig.from_env(env, sink) if sink in REDSHIFT_SINKS else None,
            postgres=PostgresConfig.from_env(env) if sink == "postgres" else None,
            notify=NotifyConfig.from_env(env, worker=True),
        )


# The parser of each function's environment, by function name (as in functions/<name>/).
CONFIGS: dict[str, type[SubmitConfig] | type[StatusConfig] | type[WorkerConfig]] = {
    "submit": SubmitConfig,
    "status": StatusConfig,
    "worker": WorkerConfig,
}
