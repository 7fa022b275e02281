"""The sink interface and the SQL shared by the Redshift sinks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

Row = tuple[int, dict[str, Any]]


class SinkError(Exception):
    """The sink refused a write; the chunk is retried by SQS."""


class Sink(Protocol):
    def results_location(self, job_id: str) -> str: ...

    def write(self, job_id: str, chunk: int, rows: Sequence[Row]) -> None: ...


def staged_ndjson(job_id: str, rows: Sequence[Row]) -> bytes:
    return b"".join(
        json.dumps(
            {"job_id": job_id, "record_index": index, "record": record},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        + b"\n"
        for index, record in rows
    )


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """A delimited identifier: whatever the name holds, it stays one name in the SQL."""
    return '"' + name.replace('"', '""') + '"'


def qualified_table(schema: str, table: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


def stage_table(chunk: int) -> str:
    return f"async_jobs_stage_{chunk}"


def copy_statement(stage: str, s3_uri: str, copy_role_arn: str | None) -> str:
    """Redshift's COPY of a staged NDJSON object; without a role ARN, the cluster's default role."""
    role = "default" if copy_role_arn is None else _literal(copy_role_arn)
    return (
        f"COPY {stage} (job_id, record_index, record) FROM {_literal(s3_uri)} "
        f"IAM_ROLE {role} FORMAT AS JSON 'auto'"
    )


def replace_statements(table: str, stage: str) -> list[str]:
    """Replace the staged keys in the target: DELETE + INSERT on (job_id, record_index)."""
    return [
        f"DELETE FROM {table} USING {stage} "
        f"WHERE {table}.job_id = {stage}.job_id AND {table}.record_index = {stage}.record_index",
        f"INSERT INTO {table} (job_id, record_index, record) "
        f"SELECT job_id, record_index, record FROM {stage}",
        f"DROP TABLE {stage}",
    ]


def load_statements(table: str, chunk: int, s3_uri: str, copy_role_arn: str | None) -> list[str]:
    """COPY the staged chunk into a temporary table, then replace its keys in the target.

    ``table`` is the quoted, schema-qualified target (``qualified_table``). DELETE + INSERT on
    (job_id, record_index) inside one transaction: loading the same chunk again leaves exactly
    one row per key. Without a role ARN, COPY uses the cluster's default IAM role.
    """
    stage = stage_table(chunk)
    return [
        f"CREATE TEMP TABLE {stage} (LIKE {table})",
        copy_statement(stage, s3_uri, copy_role_arn),
        *replace_statements(table, stage),
    ]
