"""The Redshift sinks' SQL run against a real PostgreSQL where the dialects agree.

Only the COPY source differs: Redshift reads the staged NDJSON from S3 (COPY ... IAM_ROLE),
here a COPY FROM STDIN loads the same staged object, read back from the state bucket. The
temporary stage table, DELETE ... USING + INSERT and the one transaction are the shipped SQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest

from async_jobs.config import RedshiftConfig
from async_jobs.sinks.base import load_statements, qualified_table, staged_ndjson
from async_jobs.sinks.redshift import RedshiftSink
from async_jobs.store import JobStore, Keys
from async_jobs_local.postgres import PostgresServer

from .conftest import BUCKET, Aws

pytestmark = pytest.mark.slow


class CopyFailed(Exception):
    pass


def copy_from_staged_object(store: JobStore) -> Any:
    """COPY FROM STDIN of the staged NDJSON at the s3:// URI Redshift would read."""

    def copy(cursor: Any, stage: str, s3_uri: str) -> None:
        key = s3_uri.removeprefix(f"s3://{store.bucket}/")
        body = store.get_bytes(key)
        assert body is not None, f"nothing staged at {s3_uri}"
        lines = body.decode().splitlines()
        with cursor.copy(f"COPY {stage} (job_id, record_index, record) FROM STDIN") as stream:
            for line in lines:
                row = json.loads(line)
                stream.write_row((row["job_id"], row["record_index"], json.dumps(row["record"])))

    return copy


@pytest.fixture
def table(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"warehouse_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**postgres_server.settings(), autocommit=True) as conn:  # type: ignore[arg-type]
        # Redshift's column would be SUPER; jsonb is PostgreSQL's closest
        conn.execute(f'CREATE TABLE "{name}" (job_id varchar(64), record_index bigint, record jsonb)')  # type: ignore[arg-type]
    yield name


def rows_of(server: PostgresServer, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(**server.settings()) as conn:  # type: ignore[arg-type]
        return list(
            conn.execute(f'SELECT job_id, record_index, record FROM "{table}" ORDER BY 1, 2').fetchall()
        )  # type: ignore[call-overload]


def connector_sink(server: PostgresServer, table: str, store: JobStore, **kwargs: Any) -> RedshiftSink:
    config = RedshiftConfig(
        table=table, copy_role_arn=None, database="sinks", host="127.0.0.1", timeout_seconds=30
    )

    def connect(**_settings: Any) -> psycopg.Connection[Any]:
        # redshift_connector.connect's DB-API surface: cursor().execute, commit, rollback
        return psycopg.connect(**server.settings())  # type: ignore[arg-type]

    return RedshiftSink(connect, store, config, {"database": "sinks"}, **kwargs)


def test_connector_sink_replaces_by_key_in_one_transaction(
    postgres_server: PostgresServer, table: str, aws: Aws
) -> None:
    store = JobStore(boto3.client("s3"), BUCKET)
    sink = connector_sink(postgres_server, table, store, copy_source=copy_from_staged_object(store))
    # WHEN a chunk is loaded, loaded again and loaded with a changed record
    sink.write("job-1", 0, [(0, {"a": 1}), (1, {"b": "x'y"})])
    sink.write("job-1", 0, [(0, {"a": 1}), (1, {"b": "x'y"})])
    sink.write("job-1", 0, [(0, {"a": 2}), (1, {"b": "x'y"})])
    # THEN one row per key with the last values
    assert rows_of(postgres_server, table) == [("job-1", 0, {"a": 2}), ("job-1", 1, {"b": "x'y"})]


def test_connector_sink_failed_load_changes_nothing(
    postgres_server: PostgresServer, table: str, aws: Aws
) -> None:
    store = JobStore(boto3.client("s3"), BUCKET)
    good = connector_sink(postgres_server, table, store, copy_source=copy_from_staged_object(store))
    good.write("job-2", 0, [(0, {"v": "old"})])

    def copy_then_fail(cursor: Any, stage: str, s3_uri: str) -> None:
        # the target's row is deleted in this transaction before the failure
        copy_from_staged_object(store)(cursor, stage, s3_uri)
        cursor.execute(f'DELETE FROM "{table}"')
        raise CopyFailed("connection lost")

    failing = connector_sink(postgres_server, table, store, copy_source=copy_then_fail)
    with pytest.raises(CopyFailed):
        failing.write("job-2", 0, [(0, {"v": "new"})])
    # THEN the rollback kept the old row, and a retry loads the new one
    assert rows_of(postgres_server, table) == [("job-2", 0, {"v": "old"})]
    good.write("job-2", 0, [(0, {"v": "new"})])
    assert rows_of(postgres_server, table) == [("job-2", 0, {"v": "new"})]


def test_data_api_batch_sql_runs_as_one_transaction(
    postgres_server: PostgresServer, table: str, aws: Aws
) -> None:
    # GIVEN the batch the Data API sink sends (BatchExecuteStatement runs it as one transaction)
    store = JobStore(boto3.client("s3"), BUCKET)
    rows = [(i, {"i": i}) for i in range(50)]
    store.put(Keys.staging("job-3", 0), staged_ndjson("job-3", rows))
    uri = f"s3://{BUCKET}/{Keys.staging('job-3', 0)}"
    sqls = load_statements(qualified_table("public", table), 0, uri, None)
    assert sqls[1].startswith("COPY async_jobs_stage_0 ") and "IAM_ROLE default" in sqls[1]
    # WHEN it runs twice, its COPY swapped for the same object's COPY FROM STDIN
    for _ in range(2):
        with (
            psycopg.connect(**postgres_server.settings()) as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):  # type: ignore[arg-type]
            for sql in sqls:
                if sql.startswith("COPY "):
                    copy_from_staged_object(store)(cursor, "async_jobs_stage_0", uri)
                else:
                    cursor.execute(sql)  # type: ignore[arg-type]
    # THEN every key once
    assert [row[1] for row in rows_of(postgres_server, table)] == list(range(50))


def test_data_api_statement_past_its_timeout_is_cancelled_in_moto(aws: Aws) -> None:
    # moto 5.2 implements ExecuteStatement, DescribeStatement and CancelStatement (a statement
    # stays STARTED until cancelled) but not BatchExecuteStatement: the wait-and-cancel half
    # of the sink's flow runs against it, the batch half against botocore's Stubber.
    from async_jobs.sinks.base import SinkError  # noqa: PLC0415
    from async_jobs.sinks.redshift_data import RedshiftDataSink  # noqa: PLC0415

    client = boto3.client("redshift-data")
    statement = client.execute_statement(ClusterIdentifier="warehouse", Database="dev", Sql="SELECT 1")
    now = [0.0]
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        now[0] += seconds

    config = RedshiftConfig(
        table="t", copy_role_arn=None, database="dev", cluster_identifier="warehouse", timeout_seconds=2
    )
    sink = RedshiftDataSink(
        client, JobStore(boto3.client("s3"), BUCKET), config, sleep=sleep, clock=lambda: now[0]
    )
    # WHEN the worker waits longer than the timeout for a statement that does not finish
    with pytest.raises(SinkError, match="timed out"):
        sink.wait(statement["Id"])
    # THEN it polled at poll_seconds until the deadline and cancelled the statement
    assert polls and all(p == config.poll_seconds for p in polls) and now[0] > config.timeout_seconds
    assert client.describe_statement(Id=statement["Id"])["Status"] == "ABORTED"
    # and a statement moto reports ABORTED is a failure, not a success
    with pytest.raises(SinkError, match="ABORTED"):
        sink.wait(statement["Id"])
