"""Sinks: s3 overwrite, and the SQL the Redshift sinks issue (stubbed clients, no network)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from async_jobs.config import ConfigError, RedshiftConfig, WorkerConfig
from async_jobs.sinks.base import SinkError, load_statements, qualified_table
from async_jobs.sinks.redshift import RedshiftSink, connection_settings
from async_jobs.sinks.redshift_data import RedshiftDataSink
from async_jobs.sinks.s3 import S3Sink
from async_jobs.store import JobStore

from .conftest import BUCKET, Aws

JOB = "6f1c7a52-3a6e-4c1b-9d55-6f1f2d2b9a10"
ROWS = [(4, {"id": 4}), (5, {"id": 5, "name": "o'brien"})]
CONFIG = RedshiftConfig(
    table="job_records",
    schema="analytics",
    copy_role_arn="arn:aws:iam::123456789012:role/copy",
    database="dev",
    cluster_identifier="warehouse",
    secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rs",
    poll_seconds=0,
)
TARGET = '"analytics"."job_records"'
ROLE = "'arn:aws:iam::123456789012:role/copy'"


def expected_sql(target: str = TARGET, role: str = ROLE) -> list[str]:
    return [
        f"CREATE TEMP TABLE async_jobs_stage_1 (LIKE {target})",
        f"COPY async_jobs_stage_1 (job_id, record_index, record) FROM "
        f"'s3://{BUCKET}/jobs/{JOB}/staging/chunk-000001.ndjson' "
        f"IAM_ROLE {role} FORMAT AS JSON 'auto'",
        f"DELETE FROM {target} USING async_jobs_stage_1 WHERE {target}.job_id = "
        f"async_jobs_stage_1.job_id AND {target}.record_index = async_jobs_stage_1.record_index",
        f"INSERT INTO {target} (job_id, record_index, record) "
        "SELECT job_id, record_index, record FROM async_jobs_stage_1",
        "DROP TABLE async_jobs_stage_1",
    ]


EXPECTED_SQL = expected_sql()


def staged(aws: Aws) -> list[dict[str, Any]]:
    body = aws.s3.get_object(Bucket=BUCKET, Key=f"jobs/{JOB}/staging/chunk-000001.ndjson")["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def test_s3_sink_overwrites_per_chunk(aws: Aws) -> None:
    # GIVEN the s3 sink
    sink = S3Sink(JobStore(aws.s3, BUCKET))
    # WHEN the same chunk is written twice
    sink.write(JOB, 1, ROWS)
    sink.write(JOB, 1, ROWS)
    # THEN one object holds each record once
    assert aws.keys(f"jobs/{JOB}/results/") == [f"jobs/{JOB}/results/chunk-000001.ndjson"]
    assert sink.results_location(JOB) == f"s3://{BUCKET}/jobs/{JOB}/results/"


def test_redshift_data_sink_stages_copies_and_replaces_by_key(aws: Aws) -> None:
    # GIVEN a Data API client that accepts the batch and reports it finished after one poll
    client = boto3.client("redshift-data", region_name="us-east-1")
    sink = RedshiftDataSink(client, JobStore(aws.s3, BUCKET), CONFIG, sleep=lambda _: None)
    with Stubber(client) as stub:
        stub.add_response(
            "batch_execute_statement",
            {"Id": "s-1", "ClusterIdentifier": "warehouse", "Database": "dev"},
            {
                "Sqls": EXPECTED_SQL,
                "Database": "dev",
                "ClusterIdentifier": "warehouse",
                "SecretArn": CONFIG.secret_arn,
                "StatementName": ANY,
            },
        )
        stub.add_response("describe_statement", {"Id": "s-1", "Status": "STARTED"}, {"Id": "s-1"})
        stub.add_response("describe_statement", {"Id": "s-1", "Status": "FINISHED"}, {"Id": "s-1"})
        # WHEN a chunk is written
        sink.write(JOB, 1, ROWS)
        stub.assert_no_pending_responses()
    # THEN the rows were staged to S3 with their keys
    assert staged(aws) == [
        {"job_id": JOB, "record_index": 4, "record": {"id": 4}},
        {"job_id": JOB, "record_index": 5, "record": {"id": 5, "name": "o'brien"}},
    ]


def test_redshift_data_failure_raises(aws: Aws) -> None:
    client = boto3.client("redshift-data", region_name="us-east-1")
    sink = RedshiftDataSink(client, JobStore(aws.s3, BUCKET), CONFIG, sleep=lambda _: None)
    with Stubber(client) as stub:
        stub.add_response("batch_execute_statement", {"Id": "s-2"}, None)
        stub.add_response("describe_statement", {"Id": "s-2", "Status": "FAILED", "Error": "bad"}, None)
        with pytest.raises(SinkError):
            sink.write(JOB, 1, ROWS)


class FakeCursor:
    def __init__(self, log: list[str], fail_on: str | None) -> None:
        self.log, self.fail_on = log, fail_on

    def execute(self, sql: str) -> None:
        self.log.append(sql)
        if self.fail_on and sql.startswith(self.fail_on):
            raise RuntimeError("load error")

    def close(self) -> None:
        self.log.append("close")


class FakeConnection:
    def __init__(self, fail_on: str | None = None) -> None:
        self.log: list[str] = []
        self.fail_on = fail_on

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.log, self.fail_on)

    def commit(self) -> None:
        self.log.append("COMMIT")

    def rollback(self) -> None:
        self.log.append("ROLLBACK")


def test_redshift_connector_sink_runs_the_same_sql_in_one_transaction(aws: Aws) -> None:
    # GIVEN connection settings from a Secrets Manager secret and a fake connector
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(
        Name="rs",
        SecretString=json.dumps(
            {"username": "loader", "password": "pw", "host": "rs.internal", "port": 5439, "dbname": "dev"}
        ),
    )
    config = RedshiftConfig(
        table=CONFIG.table,
        schema=CONFIG.schema,
        copy_role_arn=CONFIG.copy_role_arn,
        database=None,
        secret_arn="rs",
    )
    settings = connection_settings(config, secrets)
    assert settings == {
        "host": "rs.internal",
        "port": 5439,
        "database": "dev",
        "user": "loader",
        "password": "pw",
    }
    connection = FakeConnection()
    opened: list[dict[str, Any]] = []

    def connect(**kwargs: Any) -> FakeConnection:
        opened.append(kwargs)
        return connection

    sink = RedshiftSink(connect, JobStore(aws.s3, BUCKET), config, settings)
    # WHEN two chunks are written
    sink.write(JOB, 1, ROWS)
    sink.write(JOB, 1, ROWS)
    # THEN one connection, the staged COPY + replace by key, committed each time
    assert opened == [settings]
    assert connection.log == (["SET statement_timeout TO 600000", *EXPECTED_SQL, "COMMIT", "close"]) * 2
    assert [row["record_index"] for row in staged(aws)] == [4, 5]


def test_redshift_connector_sink_rolls_back_on_error(aws: Aws) -> None:
    connection = FakeConnection(fail_on="COPY")
    sink = RedshiftSink(lambda **_: connection, JobStore(aws.s3, BUCKET), CONFIG, {"host": "h"})
    with pytest.raises(RuntimeError):
        sink.write(JOB, 1, ROWS)
    assert connection.log[-2:] == ["ROLLBACK", "close"]
    assert "COMMIT" not in connection.log


WORKER_BASE = {"STATE_BUCKET": "b", "QUEUE_URL": "q"}
DATA_API = {
    **WORKER_BASE,
    "SINK": "redshift_data",
    "REDSHIFT_TABLE": "t",
    "REDSHIFT_COPY_ROLE_ARN": "arn:r",
    "REDSHIFT_DATABASE": "dev",
}
CONNECTOR = {
    **WORKER_BASE,
    "SINK": "redshift",
    "REDSHIFT_TABLE": "t",
    "REDSHIFT_HOST": "rs.internal",
    "REDSHIFT_SECRET_ARN": "arn:s",
}


def test_redshift_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="REDSHIFT_CLUSTER_IDENTIFIER"):
        WorkerConfig.from_env(DATA_API)
    with pytest.raises(ConfigError, match="REDSHIFT_DATABASE"):
        WorkerConfig.from_env({**DATA_API, "REDSHIFT_DATABASE": "", "REDSHIFT_WORKGROUP_NAME": "w"})
    with pytest.raises(ConfigError, match="REDSHIFT_HOST"):
        WorkerConfig.from_env({**CONNECTOR, "REDSHIFT_HOST": "", "REDSHIFT_SECRET_ARN": ""})
    # a schema-qualified table is refused with the variable that takes the schema
    with pytest.raises(ConfigError, match="REDSHIFT_TABLE.*REDSHIFT_SCHEMA"):
        WorkerConfig.from_env({**DATA_API, "REDSHIFT_TABLE": "sales.t", "REDSHIFT_WORKGROUP_NAME": "w"})
    with pytest.raises(ConfigError, match="REDSHIFT_SCHEMA"):
        WorkerConfig.from_env({**DATA_API, "REDSHIFT_SCHEMA": "s" * 128, "REDSHIFT_WORKGROUP_NAME": "w"})
    config = WorkerConfig.from_env({**DATA_API, "REDSHIFT_WORKGROUP_NAME": "w"})
    assert config.redshift is not None and config.redshift.workgroup_name == "w"
    # without REDSHIFT_SCHEMA the table is public's, as Terraform's default says
    assert config.redshift.schema == "public"


def test_redshift_schema_takes_effect_in_both_sinks(aws: Aws) -> None:
    # GIVEN each Redshift sink configured from REDSHIFT_SCHEMA=sales, REDSHIFT_TABLE=orders
    schema = {"REDSHIFT_SCHEMA": "sales", "REDSHIFT_TABLE": "orders"}
    data_config = WorkerConfig.from_env(
        {**DATA_API, **schema, "REDSHIFT_WORKGROUP_NAME": "sales-wg"}
    ).redshift
    connector_config = WorkerConfig.from_env(
        {**CONNECTOR, **schema, "REDSHIFT_TIMEOUT_SECONDS": "30"}
    ).redshift
    assert data_config is not None and connector_config is not None
    client = boto3.client("redshift-data", region_name="us-east-1")
    data_sink = RedshiftDataSink(client, JobStore(aws.s3, BUCKET), data_config, sleep=lambda _: None)
    connection = FakeConnection()
    connector_sink = RedshiftSink(
        lambda **_: connection, JobStore(aws.s3, BUCKET), connector_config, {"database": "dev"}
    )
    sales = expected_sql('"sales"."orders"', "'arn:r'")
    # WHEN each writes a chunk
    with Stubber(client) as stub:
        stub.add_response(
            "batch_execute_statement",
            {"Id": "s-3"},
            {"Sqls": sales, "Database": "dev", "WorkgroupName": "sales-wg", "StatementName": ANY},
        )
        stub.add_response("describe_statement", {"Id": "s-3", "Status": "FINISHED"}, {"Id": "s-3"})
        data_sink.write(JOB, 1, ROWS)
        stub.assert_no_pending_responses()
    connector_sink.write(JOB, 1, ROWS)
    # THEN both load into "sales"."orders" (the Stubber compared the Data API's SQL), and the
    # results link names the schema
    expected_connector = expected_sql('"sales"."orders"', "default")  # no COPY role: default role
    # REDSHIFT_TIMEOUT_SECONDS bounds each load on the server
    assert connection.log == ["SET statement_timeout TO 30000", *expected_connector, "COMMIT", "close"]
    assert data_sink.results_location(JOB) == f"redshift://dev/sales.orders?job_id={JOB}"
    assert connector_sink.results_location(JOB) == f"redshift://dev/sales.orders?job_id={JOB}"


def test_redshift_sql_quotes_identifiers_and_defaults_the_copy_role() -> None:
    # GIVEN names that would end the statement if pasted into SQL unquoted
    target = qualified_table('we"ird', 'x"; DROP TABLE users; --')
    # WHEN the load statements are built without a COPY role ARN
    sqls = load_statements(target, 7, "s3://b/k", None)
    # THEN each name stays one delimited identifier, and COPY uses the default role
    assert target == '"we""ird"."x""; DROP TABLE users; --"'
    assert sqls[0] == f"CREATE TEMP TABLE async_jobs_stage_7 (LIKE {target})"
    assert sqls[1].endswith("IAM_ROLE default FORMAT AS JSON 'auto'")
