"""Redshift Data API sink: stage the chunk to S3, COPY into a temp table, replace by key."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from async_jobs.config import RedshiftConfig
from async_jobs.sinks.base import Row, SinkError, load_statements, qualified_table, staged_ndjson
from async_jobs.store import JobStore, Keys

_DONE = ("FINISHED",)
_BROKEN = ("FAILED", "ABORTED")


class RedshiftDataSink:
    def __init__(
        self,
        client: Any,
        store: JobStore,
        config: RedshiftConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._store = store
        self._config = config
        self._sleep = sleep
        self._clock = clock

    def results_location(self, job_id: str) -> str:
        return (
            f"redshift://{self._config.database}/{self._config.schema}.{self._config.table}?job_id={job_id}"
        )

    def _target(self) -> dict[str, str]:
        config = self._config
        target: dict[str, str] = {"Database": str(config.database)}
        if config.workgroup_name:
            target["WorkgroupName"] = config.workgroup_name
        else:
            target["ClusterIdentifier"] = str(config.cluster_identifier)
        if config.secret_arn:
            target["SecretArn"] = config.secret_arn
        elif config.db_user:
            target["DbUser"] = config.db_user
        return target

    def write(self, job_id: str, chunk: int, rows: Sequence[Row]) -> None:
        if not rows:
            return
        key = Keys.staging(job_id, chunk)
        self._store.put(key, staged_ndjson(job_id, rows))
        target = qualified_table(self._config.schema, self._config.table)
        sqls = load_statements(target, chunk, f"s3://{self._store.bucket}/{key}", self._config.copy_role_arn)
        statement = self._client.batch_execute_statement(
            Sqls=sqls, StatementName=f"async-jobs-{chunk}", **self._target()
        )
        self.wait(str(statement["Id"]))

    def wait(self, statement_id: str) -> None:
        """Poll until the statement finishes; a failure or the timeout (after a cancel) is a
        SinkError, so SQS retries the chunk."""
        deadline = self._clock() + self._config.timeout_seconds
        while True:
            described = self._client.describe_statement(Id=statement_id)
            status = described.get("Status")
            if status in _DONE:
                return
            if status in _BROKEN:
                raise SinkError(f"redshift statement {statement_id} {status}: {described.get('Error', '')}")
            if self._clock() > deadline:
                self._client.cancel_statement(Id=statement_id)
                raise SinkError(f"redshift statement {statement_id} timed out")
            self._sleep(self._config.poll_seconds)
