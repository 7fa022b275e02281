"""examples/postgres applied to moto, its RDS endpoint answered by a real local PostgreSQL.

The worker runs from its built package in the local runtime under its role, fed by the played
SQS event source mapping; it reaches the instance's endpoint with an RDS IAM token over TLS,
verifying the server against the CA bundle given to the example (``database_ca_bundle``).
Every message is delivered twice (FaultPlan duplicate_rate 1.0). See async_jobs_local.databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from async_jobs_local import JobsClient, LocalDeployment
from async_jobs_local.faults import FaultPlan
from async_jobs_local.postgres import PostgresServer, start_server
from async_jobs_local.postgres_example import DATABASE, postgres_deployment, set_up_database

from .conftest import wait_for, wait_terminal

pytestmark = pytest.mark.slow

RECORDS = 10_000


@pytest.fixture(scope="module")
def database() -> Iterator[PostgresServer]:
    server = start_server(max_connections=20)
    if server is None:
        pytest.fail("PostgreSQL is not installed (no initdb): `apt-get install -y postgresql`")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(database: PostgresServer) -> Iterator[LocalDeployment]:
    deployment = postgres_deployment(
        database,
        faults=FaultPlan(duplicate_rate=1.0, seed=20261203),
        # the state bucket is not force_destroy (a production example): the stack goes with moto
        destroy_on_stop=False,
    )
    deployment.start()
    try:
        set_up_database(database)
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def api(stack: LocalDeployment) -> JobsClient:
    return JobsClient(stack.stage_url, access_key=stack.admin_credentials()[0])


def query(server: PostgresServer, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(**server.settings(dbname=DATABASE)) as conn:  # type: ignore[arg-type]
        return list(conn.execute(sql, args).fetchall())  # type: ignore[call-overload]


def keys_of(server: PostgresServer, job_id: str) -> list[int]:
    rows = query(server, "SELECT record_index FROM job_records WHERE job_id = %s ORDER BY 1", job_id)
    return [int(row[0]) for row in rows]


def run_job(api: JobsClient, records: int) -> dict[str, Any]:
    response = api.submit([{"n": index, "name": f"record {index}"} for index in range(records)])
    assert response.status == 202, response.body[:300]
    return wait_terminal(api, response.json()["job_id"], timeout=180)


def failed_deliveries(stack: LocalDeployment) -> list[str]:
    """What the worker logged for each delivery it failed (a refused sink write is one)."""
    log = stack.log_dir / f"{stack.outputs['worker_function_name']}.log"
    return [line for line in log.read_text().splitlines() if '"message":"message failed' in line]


def test_second_plan_has_no_changes(stack: LocalDeployment) -> None:
    assert stack.plan_has_changes() is False


def test_the_worker_reaches_the_rds_endpoint_by_iam_token_over_verified_tls(stack: LocalDeployment) -> None:
    # the deployed worker is configured for the RDS instance, not for the local server
    assert stack.databases is not None and len(stack.databases.routes) == 1
    route = stack.databases.routes[0]
    environment = stack.functions[stack.outputs["worker_function_name"]].environment
    assert (environment["POSTGRES_HOST"], environment["POSTGRES_PORT"]) == (route.host, str(route.port))
    assert route.host.endswith(".rds.amazonaws.com") and route.iam
    assert (environment["POSTGRES_AUTH"], environment["POSTGRES_SSLMODE"]) == ("iam", "verify-full")


def test_every_message_twice_lands_each_record_once(
    stack: LocalDeployment, api: JobsClient, database: PostgresServer
) -> None:
    # GIVEN a 10,000-record job, every SQS message of it delivered twice
    assert stack.faults is not None
    before = stack.faults.totals().get("duplicates", 0)
    # WHEN it runs
    final = run_job(api, RECORDS)
    # THEN it succeeded, each record counted once and in the table exactly once
    assert final["status"] == "succeeded", final
    assert (final["processed_records"], final["succeeded_records"]) == (RECORDS, RECORDS)
    assert keys_of(database, final["job_id"]) == list(range(RECORDS))
    record = query(
        database, "SELECT record FROM job_records WHERE job_id = %s AND record_index = 7", final["job_id"]
    )
    assert record == [({"n": 7, "name": "record 7"},)]
    assert (
        final["links"]["results"].startswith("postgresql://")
        and "table=public.job_records" in final["links"]["results"]
    )
    # every message went twice (at least the split and each chunk), and no delivery failed
    chunk_size = int(stack.functions[stack.outputs["worker_function_name"]].environment["CHUNK_SIZE"])
    duplicates = stack.faults.totals().get("duplicates", 0) - before
    assert duplicates >= 1 + RECORDS // chunk_size, duplicates
    assert failed_deliveries(stack) == []


def test_a_worker_killed_before_commit_leaves_nothing_and_the_job_still_lands_once(
    stack: LocalDeployment, api: JobsClient, database: PostgresServer
) -> None:
    # GIVEN the next chunk transaction to upsert dies (SIGKILL) after its COPY, before COMMIT
    assert stack.databases is not None
    stack.databases.arm_kill()
    # WHEN a job runs
    final = run_job(api, 3_000)
    # THEN one transaction was killed, after upserting a whole chunk inside a transaction...
    kills = wait_for(stack.databases.kills, timeout=30, what="the killed transaction")
    assert len(kills) == 1, kills
    kill = kills[0]
    assert kill["xid"] is not None, "the upsert ran outside a transaction: it committed on its own"
    assert kill["rows"] > 0
    # ...which never committed: no row anywhere carries its transaction id
    status = query(database, "SELECT pg_xact_status(%s::xid8)", kill["xid"])
    assert status == [("aborted",)]
    # (xmin is the 32-bit id, equal to the 64-bit one on a server this young)
    written = query(database, "SELECT count(*) FROM job_records WHERE xmin::text = %s", kill["xid"])
    assert written == [(0,)]
    # and the job still ends with every record in the table exactly once
    assert final["status"] == "succeeded", final
    assert final["processed_records"] == 3_000
    assert keys_of(database, final["job_id"]) == list(range(3_000))
