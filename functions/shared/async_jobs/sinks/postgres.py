"""PostgreSQL sink (RDS, Aurora or any server): COPY each chunk into a temporary table and upsert.

One transaction per chunk: COPY into a temporary table dropped on commit, then
``INSERT ... ON CONFLICT (job_id, record_index) DO UPDATE``. A chunk delivered twice, or
re-delivered after a worker died before COMMIT, leaves exactly one row per key, and a chunk is
either all in the table or not at all. The target needs a unique constraint on
(job_id, record_index); its other columns may have defaults.

One connection per worker instance, opened lazily and reused across invocations: a worker
concurrency of N holds at most N connections, the number the database is protected with.
psycopg is imported by the wiring only when this sink is chosen.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from async_jobs.config import PostgresConfig
from async_jobs.sinks.base import Row, SinkError, qualified_table

Connect = Callable[[], Any]
# Called with the load's cursor inside the chunk's transaction after COPY and the upsert,
# before COMMIT: a seam for tests that kill the writer there or make the load outlast its
# statement timeout.
Hook = Callable[[Any], None]


def connection_settings(
    config: PostgresConfig, *, secrets: Any | None = None, rds: Any | None = None
) -> dict[str, Any]:
    """libpq keyword arguments, with the password read fresh: an IAM auth token lives 15
    minutes, so each new connection asks for one (it is only checked when connecting)."""
    settings: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "dbname": config.database,
        "user": config.user,
        "sslmode": config.sslmode,
        "connect_timeout": config.connect_timeout_seconds,
        "application_name": "async-jobs-worker",
    }
    if config.sslrootcert:
        settings["sslrootcert"] = config.sslrootcert
    if config.auth == "iam":
        if rds is None:
            raise ValueError("an RDS client is needed for POSTGRES_AUTH=iam")
        settings["password"] = rds.generate_db_auth_token(
            DBHostname=config.host, Port=config.port, DBUsername=config.user
        )
        return settings
    if secrets is None:
        raise ValueError("a Secrets Manager client is needed for POSTGRES_AUTH=secret")
    secret = secrets.get_secret_value(SecretId=config.secret_arn)["SecretString"]
    try:
        parsed = json.loads(secret)
    except ValueError:
        parsed = None
    # An RDS-managed secret is JSON with username/password; a plain string is the password.
    settings["password"] = parsed.get("password") if isinstance(parsed, dict) else secret
    if not settings["password"]:
        raise ValueError(f"secret {config.secret_arn} holds no password")
    return settings


class PostgresSink:
    def __init__(
        self,
        connect: Connect,
        config: PostgresConfig,
        *,
        before_commit: Hook | None = None,
    ) -> None:
        self._connect = connect
        self._config = config
        self._before_commit = before_commit
        self._connection: Any | None = None

    def results_location(self, job_id: str) -> str:
        config = self._config
        return f"postgresql://{config.host}:{config.port}/{config.database}?table={config.schema}.{config.table}&job_id={job_id}"

    def _conn(self) -> Any:
        connection = self._connection
        if connection is not None and (connection.closed or connection.broken):
            connection = None  # the server or a network hop closed it while the instance was idle
        if connection is None:
            connection = self._connection = self._connect()
        return connection

    def write(self, job_id: str, chunk: int, rows: Sequence[Row]) -> None:
        if not rows:
            return
        import psycopg  # noqa: PLC0415 - loaded with this sink only

        for attempt in (1, 2):
            connection = self._conn()
            try:
                self._load(connection, job_id, rows)
                return
            except psycopg.OperationalError as error:
                if connection.broken:
                    self._connection = None
                    # A connection that died between invocations fails on first use: one fresh
                    # connection is worth a try; the transaction never committed, so it is safe.
                    if attempt == 1:
                        continue
                raise SinkError(f"postgres chunk {chunk}: {error}") from error
            except psycopg.Error as error:
                raise SinkError(f"postgres chunk {chunk}: {error}") from error

    def _load(self, connection: Any, job_id: str, rows: Sequence[Row]) -> None:
        target = qualified_table(self._config.schema, self._config.table)
        # A fixed name is safe: temporary tables are per session and dropped at COMMIT/ROLLBACK.
        stage = "async_jobs_stage"
        with connection.transaction(), connection.cursor() as cursor:
            # SET LOCAL: the server cancels a load that would outlive the worker, this one only
            cursor.execute(f"SET LOCAL statement_timeout = {int(self._config.timeout_seconds) * 1000}")
            cursor.execute(f"CREATE TEMP TABLE {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
            with cursor.copy(f"COPY {stage} (job_id, record_index, record) FROM STDIN") as copy:
                for index, record in rows:
                    copy.write_row(
                        (job_id, index, json.dumps(record, separators=(",", ":"), ensure_ascii=False))
                    )
            cursor.execute(
                f"INSERT INTO {target} (job_id, record_index, record) "
                f"SELECT job_id, record_index, record FROM {stage} "
                "ON CONFLICT (job_id, record_index) DO UPDATE SET record = EXCLUDED.record"
            )
            if self._before_commit is not None:
                self._before_commit(cursor)
