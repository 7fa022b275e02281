"""redshift-connector sink for clusters in a VPC: the same staged COPY and replace by key."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from async_jobs.config import RedshiftConfig
from async_jobs.sinks.base import (
    Row,
    copy_statement,
    qualified_table,
    replace_statements,
    stage_table,
    staged_ndjson,
)
from async_jobs.store import JobStore, Keys

Connect = Callable[..., Any]
# Loads the staged object (its s3:// URI) into the stage table on the load's cursor. On
# Redshift: COPY ... FROM 's3://...' IAM_ROLE ...; tests swap in a COPY FROM STDIN of the same
# NDJSON so the rest of the SQL runs unchanged against PostgreSQL.
CopySource = Callable[[Any, str, str], None]


def connection_settings(config: RedshiftConfig, secrets: Any | None) -> dict[str, Any]:
    """host/port/database/user/password from REDSHIFT_* and, when set, the Secrets Manager secret."""
    settings: dict[str, Any] = {"host": config.host, "port": config.port, "database": config.database}
    if config.db_user:
        settings["user"] = config.db_user
    if config.secret_arn:
        if secrets is None:
            raise ValueError("a Secrets Manager client is needed for REDSHIFT_SECRET_ARN")
        secret = json.loads(secrets.get_secret_value(SecretId=config.secret_arn)["SecretString"])
        settings["user"] = secret.get("username", settings.get("user"))
        settings["password"] = secret.get("password")
        settings["host"] = settings["host"] or secret.get("host")
        settings["database"] = settings["database"] or secret.get("dbname")
        if "port" in secret and not config.host:
            settings["port"] = int(secret["port"])
    missing = [name for name in ("host", "database", "user", "password") if not settings.get(name)]
    if missing:
        raise ValueError(f"redshift connection settings missing: {', '.join(missing)}")
    return settings


class RedshiftSink:
    def __init__(
        self,
        connect: Connect,
        store: JobStore,
        config: RedshiftConfig,
        settings: dict[str, Any],
        *,
        copy_source: CopySource | None = None,
    ) -> None:
        self._connect = connect
        self._copy = copy_source or self._redshift_copy
        self._store = store
        self._config = config
        self._settings = settings
        self._connection: Any | None = None

    def results_location(self, job_id: str) -> str:
        return f"redshift://{self._settings.get('database')}/{self._config.schema}.{self._config.table}?job_id={job_id}"

    def _conn(self) -> Any:
        if self._connection is None:
            self._connection = self._connect(**self._settings)
        return self._connection

    def _redshift_copy(self, cursor: Any, stage: str, s3_uri: str) -> None:
        cursor.execute(copy_statement(stage, s3_uri, self._config.copy_role_arn))

    def write(self, job_id: str, chunk: int, rows: Sequence[Row]) -> None:
        if not rows:
            return
        key = Keys.staging(job_id, chunk)
        self._store.put(key, staged_ndjson(job_id, rows))
        target = qualified_table(self._config.schema, self._config.table)
        stage = stage_table(chunk)
        connection = self._conn()
        cursor = connection.cursor()
        try:
            # the server cancels a load that would outlive the worker (REDSHIFT_TIMEOUT_SECONDS)
            cursor.execute(f"SET statement_timeout TO {int(self._config.timeout_seconds) * 1000}")
            cursor.execute(f"CREATE TEMP TABLE {stage} (LIKE {target})")
            self._copy(cursor, stage, f"s3://{self._store.bucket}/{key}")
            for sql in replace_statements(target, stage):
                cursor.execute(sql)
            connection.commit()
        except Exception:
            try:
                connection.rollback()
            finally:
                self._connection = None  # reconnect next time: the session may be broken
            raise
        finally:
            cursor.close()
