"""The postgres sink against a real PostgreSQL server (async_jobs_local/postgres.py): TLS, COPY + upsert."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest

from async_jobs.config import ConfigError, PostgresConfig, WorkerConfig
from async_jobs.sinks.base import SinkError
from async_jobs.sinks.postgres import PostgresSink, connection_settings
from async_jobs_local.postgres import DATABASE, PASSWORD, USER, PostgresServer

from .conftest import ROOT, Api, Aws, Worker, load_handler
from .test_invariants import submit

pytestmark = pytest.mark.slow

TABLE_DDL = (
    'CREATE TABLE {schema}."{table}" (job_id text NOT NULL, record_index bigint NOT NULL, '
    "record jsonb NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), "
    "PRIMARY KEY (job_id, record_index))"
)


@pytest.fixture
def table(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh target table (with a defaulted extra column) per test."""
    name = f"results_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**postgres_server.settings(), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(TABLE_DDL.format(schema="public", table=name))  # type: ignore[arg-type]
    yield name


def config_for(server: PostgresServer, table: str, **overrides: Any) -> PostgresConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "database": DATABASE,
        "user": USER,
        "table": table,
        "auth": "secret",
        "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
        "timeout_seconds": 30,
        **overrides,
    }
    return PostgresConfig(**values)


def sink_for(server: PostgresServer, table: str, **kwargs: Any) -> PostgresSink:
    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(**server.settings(), autocommit=True)  # type: ignore[arg-type]

    return PostgresSink(connect, config_for(server, table), **kwargs)


def rows_of(server: PostgresServer, table: str, job_id: str | None = None) -> list[tuple[str, int, Any]]:
    with psycopg.connect(**server.settings()) as conn:  # type: ignore[arg-type]
        where = "" if job_id is None else " WHERE job_id = %s"
        args = () if job_id is None else (job_id,)
        query = f'SELECT job_id, record_index, record FROM public."{table}"{where} ORDER BY 1, 2'
        return list(conn.execute(query, args).fetchall())  # type: ignore[call-overload]


def test_chunk_is_copied_and_upserted_once_per_key(postgres_server: PostgresServer, table: str) -> None:
    # GIVEN a sink on a real server over TLS
    sink = sink_for(postgres_server, table)
    chunk = [(0, {"id": 1, "name": "ünïcode ' \" \\ \t"}), (1, {"id": 2, "nested": [1, {"a": None}]})]
    # WHEN the chunk is written, written again, and then written with a changed record
    sink.write("job-1", 0, chunk)
    sink.write("job-1", 0, chunk)
    assert rows_of(postgres_server, table) == [("job-1", 0, chunk[0][1]), ("job-1", 1, chunk[1][1])]
    sink.write("job-1", 0, [(0, {"id": 1, "name": "changed"}), chunk[1]])
    # THEN one row per (job_id, record_index), holding the last write, records exact as JSON
    assert rows_of(postgres_server, table) == [
        ("job-1", 0, {"id": 1, "name": "changed"}),
        ("job-1", 1, chunk[1][1]),
    ]
    assert sink.results_location("job-1").endswith(f"table=public.{table}&job_id=job-1")


def test_concurrent_chunks_all_land(postgres_server: PostgresServer, table: str) -> None:
    # GIVEN 8 workers, each its own connection, writing overlapping re-deliveries at once
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        sink = sink_for(postgres_server, table)
        try:
            for chunk in range(worker % 4, 16, 4):  # chunks 0..15, each written by two workers
                sink.write("job-c", chunk, [(chunk * 100 + i, {"i": i}) for i in range(100)])
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN no write failed and every key is there exactly once
    assert errors == []
    assert [row[1] for row in rows_of(postgres_server, table)] == list(range(1600))


def test_broken_connection_is_replaced(postgres_server: PostgresServer, table: str) -> None:
    # GIVEN a sink whose connection the server terminated while the worker was idle
    sink = sink_for(postgres_server, table)
    sink.write("job-r", 0, [(0, {"n": 0})])
    with psycopg.connect(**postgres_server.settings(), autocommit=True) as admin:  # type: ignore[arg-type]
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = '' AND pid <> pg_backend_pid() AND datname = %s",
            (DATABASE,),
        )
    # WHEN the next chunk arrives THEN it is written on a new connection
    sink.write("job-r", 1, [(1, {"n": 1})])
    assert [row[1] for row in rows_of(postgres_server, table, "job-r")] == [0, 1]


def test_sql_failure_is_a_sink_error_and_writes_nothing(postgres_server: PostgresServer, table: str) -> None:
    # GIVEN a table without the unique key the upsert needs
    with psycopg.connect(**postgres_server.settings(), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE TABLE "{table}_nokey" (job_id text, record_index bigint, record jsonb)')  # type: ignore[arg-type]
    sink = sink_for(postgres_server, f"{table}_nokey")
    # WHEN a chunk is written THEN the sink refuses it (SQS retries) and no row is left
    with pytest.raises(SinkError, match="ON CONFLICT"):
        sink.write("job-e", 0, [(0, {"n": 0})])
    assert rows_of(postgres_server, f"{table}_nokey") == []
    # and the same sink still works for a good table (the failed transaction was rolled back)


def test_a_load_past_its_statement_timeout_is_cancelled(postgres_server: PostgresServer, table: str) -> None:
    # GIVEN a 1 s statement timeout and a load that takes longer inside its transaction
    def slow(cursor: Any) -> None:
        cursor.execute("SELECT pg_sleep(3)")

    config = config_for(postgres_server, table, timeout_seconds=1)
    sink = PostgresSink(
        lambda: psycopg.connect(**postgres_server.settings(), autocommit=True),  # type: ignore[arg-type]
        config,
        before_commit=slow,
    )
    # WHEN it runs THEN the server cancels it, the chunk is retried and nothing landed
    with pytest.raises(SinkError, match="statement timeout"):
        sink.write("job-t", 0, [(0, {"n": 0})])
    assert rows_of(postgres_server, table, "job-t") == []


def test_plain_text_connections_are_refused(postgres_server: PostgresServer) -> None:
    # The test server takes TLS only, as RDS with rds.force_ssl: the sink's require is exercised
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry|SSL off"):
        psycopg.connect(**postgres_server.settings(sslmode="disable"))  # type: ignore[arg-type]


def test_secret_auth_and_verify_full(postgres_server: PostgresServer, table: str, aws: Aws) -> None:
    # GIVEN the password in Secrets Manager (RDS's JSON shape) and the server's CA for verify-full
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="db", SecretString=json.dumps({"username": USER, "password": PASSWORD}))[
        "ARN"
    ]
    config = config_for(
        postgres_server, table, secret_arn=arn, sslmode="verify-full", sslrootcert=postgres_server.certificate
    )
    settings = connection_settings(config, secrets=secrets)
    # WHEN the sink connects with those settings THEN the certificate and password are accepted
    sink = PostgresSink(lambda: psycopg.connect(**settings, autocommit=True), config)
    sink.write("job-s", 0, [(0, {"ok": True})])
    assert rows_of(postgres_server, table, "job-s") == [("job-s", 0, {"ok": True})]
    # and a wrong CA is refused: verify-full checks the server
    wrong = connection_settings(
        config_for(
            postgres_server,
            table,
            secret_arn=arn,
            sslmode="verify-full",
            sslrootcert="/etc/ssl/certs/ca-certificates.crt",
        ),
        secrets=secrets,
    )
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(**wrong)


def test_iam_auth_token_is_requested_per_connection(aws: Aws) -> None:
    config = PostgresConfig(host="db.example.com", database="d", user="writer", table="t", port=5432)
    first = connection_settings(config, rds=boto3.client("rds"))
    # an RDS IAM token is a presigned connect URL for this host, port and user
    assert first["password"].startswith("db.example.com:5432/?Action=connect&DBUser=writer")
    assert first["sslmode"] == "require"
    with pytest.raises(ValueError, match="RDS client"):
        connection_settings(config)


def test_postgres_settings_are_validated() -> None:
    base = {
        "STATE_BUCKET": "b",
        "QUEUE_URL": "q",
        "SINK": "postgres",
        "POSTGRES_HOST": "h",
        "POSTGRES_DATABASE": "d",
        "POSTGRES_USER": "u",
        "POSTGRES_TABLE": "t",
    }
    config = WorkerConfig.from_env(base).postgres
    assert config is not None and (config.auth, config.sslmode, config.port) == ("iam", "require", 5432)
    for change, variable in (
        ({"POSTGRES_AUTH": "secret"}, "POSTGRES_SECRET_ARN"),
        ({"POSTGRES_SECRET_ARN": "arn"}, "POSTGRES_SECRET_ARN"),
        ({"POSTGRES_SSLMODE": "disable"}, "POSTGRES_SSLMODE"),
        ({"POSTGRES_TABLE": "s.t"}, "POSTGRES_TABLE"),
        ({"POSTGRES_HOST": ""}, "POSTGRES_HOST"),
    ):
        with pytest.raises(ConfigError) as raised:
            WorkerConfig.from_env({**base, **change})
        assert raised.value.name == variable


KILLED_WRITER = """
import os, sys, psycopg
from async_jobs.config import PostgresConfig
from async_jobs.sinks.postgres import PostgresSink
settings, config, rows = eval(sys.argv[1])

def copied(cursor):
    print("copied", flush=True)
    sys.stdin.readline()  # wait here, inside the transaction, to be killed

sink = PostgresSink(lambda: psycopg.connect(**settings, autocommit=True), PostgresConfig(**config),
                    before_commit=copied)
sink.write("job-k", 3, rows)
"""


def test_worker_killed_between_copy_and_commit_leaves_no_partial_chunk(
    postgres_server: PostgresServer, table: str
) -> None:
    rows = [(300 + i, {"i": i}) for i in range(500)]
    config = config_for(postgres_server, table)
    arguments = repr((postgres_server.settings(), config.__dict__, rows))
    # GIVEN a worker process that has COPYed a chunk and not yet committed
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "copied"
        # WHEN it is killed there (as Lambda does on a timeout)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    # THEN none of the chunk is in the table
    assert rows_of(postgres_server, table, "job-k") == []
    # AND the re-delivery writes all of it
    sink_for(postgres_server, table).write("job-k", 3, rows)
    assert [row[1] for row in rows_of(postgres_server, table, "job-k")] == list(range(300, 800))


def test_10000_records_every_message_delivered_twice_land_once(
    postgres_server: PostgresServer, table: str, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the worker handler wired to the real server (secret auth, TLS) and a 10,000-record job
    arn = boto3.client("secretsmanager").create_secret(Name="pg", SecretString=PASSWORD)["ARN"]
    for name, value in {
        "CHUNK_SIZE": "500",
        "SINK": "postgres",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(postgres_server.port),
        "POSTGRES_DATABASE": DATABASE,
        "POSTGRES_USER": USER,
        "POSTGRES_TABLE": table,
        "POSTGRES_AUTH": "secret",
        "POSTGRES_SECRET_ARN": arn,
    }.items():
        monkeypatch.setenv(name, value)
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    job_id = submit(api, 10_000)
    # WHEN every message (split and chunks) is delivered twice
    handled = worker.drain(twice=True)
    # THEN the job succeeded and the table holds each of the 10,000 records exactly once
    assert handled == 42 and worker.failures == 0
    job = api.get(job_id).body
    assert job["status"] == "succeeded" and job["succeeded_records"] == 10_000
    assert job["links"]["results"].startswith("postgresql://127.0.0.1:")
    indexes = [row[1] for row in rows_of(postgres_server, table, job_id)]
    assert indexes == list(range(10_000))
