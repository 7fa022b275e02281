"""examples/complete (KMS, Cognito authorizer, record schema, alarms) on moto and the local runtime."""

from __future__ import annotations

import uuid

import pytest

from async_jobs_local import JobsClient, LocalDeployment
from async_jobs_local.demo import unsigned_jwt

from .conftest import assert_nothing_left, s3_keys, s3_lines, wait_for, wait_terminal

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(complete_stack: LocalDeployment) -> LocalDeployment:
    return complete_stack


def caller(stack: LocalDeployment, sub: str) -> JobsClient:
    # The local API Gateway reads the Cognito token's claims without verifying its signature.
    return JobsClient(stack.url, bearer=unsigned_jwt({"sub": sub, "token_use": "id"}))


def valid(index: int) -> dict[str, object]:
    return {"id": f"c{index}", "email": f"user{index}@example.com"}


def test_outputs_describe_the_deployment(stack: LocalDeployment) -> None:
    # examples/complete outputs a subset; the runtime reads the rest from the deployed resources
    assert stack.outputs["api_type"] == "rest"
    assert stack.outputs["api_authorization"] == "COGNITO"
    assert stack.outputs["api_stage_name"] == "prod"
    assert stack.outputs["worker_event_source_mapping"]["enabled"] is True
    assert stack.outputs["record_schema_key"]


def test_second_plan_has_no_changes(stack: LocalDeployment) -> None:
    assert stack.plan_has_changes() is False


def test_a_request_without_token_is_unauthorized(stack: LocalDeployment) -> None:
    # API Gateway answers it itself, through the REST API's gateway response: a problem
    response = JobsClient(stack.url).submit([valid(1)])
    assert response.status == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == {
        "type": "https://async-jobs.dev/problems/unauthorized",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Unauthorized",
    }


def test_invalid_records_are_reported(stack: LocalDeployment) -> None:
    # GIVEN 1,000 records of which 5 break the record schema (tolerated failures: 1 %)
    alice = caller(stack, "alice")
    records = [valid(i) for i in range(1000)]
    bad = {10: {"id": "c10"}, 20: {"id": 20, "email": "x@example.com"}, 500: {"email": "a@example.com"}}
    bad |= {998: {"id": "c998"}, 999: {"id": "c999"}}
    for index, record in bad.items():
        records[index] = record
    response = alice.submit(records)
    assert response.status == 202, response.body
    job_id = response.json()["job_id"]

    # WHEN the job ends THEN it completed with errors, each bad record listed once
    final = wait_terminal(alice, job_id)
    assert final["status"] == "completed_with_errors"
    assert (final["succeeded_records"], final["failed_records"], final["processed_records"]) == (995, 5, 1000)
    assert sorted(error["record_index"] for error in final["errors"]) == sorted(bad)
    assert all(error["message"] for error in final["errors"])
    # the report is written right after the job ends; its link appears once it exists
    links = wait_for(
        lambda: alice.get(job_id).json()["links"]["errors"], timeout=30, what="the errors report link"
    )
    assert links
    report = s3_lines(stack, f"jobs/{job_id}/errors.ndjson")
    assert len(report) == 5
    results = s3_keys(stack, f"jobs/{job_id}/results/")
    assert sum(len(s3_lines(stack, key)) for key in results) == 995


def test_another_callers_job_is_not_found(stack: LocalDeployment) -> None:
    alice, bob = caller(stack, "alice"), caller(stack, "bob")
    job_id = alice.submit([valid(1), valid(2)]).json()["job_id"]
    assert bob.get(job_id).status == 404
    assert bob.cancel(job_id).status == 404
    assert alice.get(job_id).status == 200
    assert wait_terminal(alice, job_id)["status"] == "succeeded"


def list_all(client: JobsClient, limit: int) -> tuple[list[str], int]:
    """Every job GET /jobs lists for the client, following `next`; and the pages it took."""
    seen: list[str] = []
    url: str | None = f"/jobs?limit={limit}"
    pages = 0
    while url:
        reply = client.request("GET", url)
        assert reply.status == 200, reply.body
        page = reply.json()
        assert len(page["items"]) <= limit
        seen += [item["job_id"] for item in page["items"]]
        url, pages = page["next"], pages + 1
    return seen, pages


def test_each_caller_lists_only_their_own_jobs_newest_first(stack: LocalDeployment) -> None:
    # GIVEN two callers new to the API, one with three jobs, the other with two
    names = uuid.uuid4().hex
    carol, dave = caller(stack, f"carol-{names}"), caller(stack, f"dave-{names}")
    carols = [carol.submit([valid(i)]).json()["job_id"] for i in range(3)]
    daves = {dave.submit([valid(i)]).json()["job_id"] for i in range(2)}
    # WHEN each pages through GET /jobs two at a time
    # THEN each sees their own jobs once, newest first, and none of the other's
    assert list_all(carol, 2) == (carols[::-1], 2)
    seen, _ = list_all(dave, 2)
    assert set(seen) == daves and len(seen) == 2
    # AND a cursor is checked, not trusted
    assert carol.request("GET", "/jobs?cursor=aW5kZXgv").status == 400


def test_a_small_job_is_not_held_back_by_another_callers_big_one(stack: LocalDeployment) -> None:
    # GIVEN the worker capped at 2 pollers (10 chunks in flight) and erin's 40-chunk job under way
    worker = str(stack.outputs["worker_function_name"])
    assert stack.event_source is not None
    pollers, environments = stack.event_source.maximum_concurrency, stack.pools[worker].max_size
    names = uuid.uuid4().hex
    erin, frank = caller(stack, f"erin-{names}"), caller(stack, f"frank-{names}")
    stack.set_worker_concurrency(2)
    try:
        big = erin.submit([valid(i) for i in range(40_000)])
        assert big.status == 202, big.body
        big_id = big.json()["job_id"]
        wait_for(lambda: erin.get(big_id).json()["status"] == "running", timeout=60, what="the big job")
        # WHEN frank submits a one-chunk job behind erin's backlog
        small = frank.submit([valid(i) for i in range(500)])
        assert small.status == 202, small.body
        done = wait_terminal(frank, small.json()["job_id"], timeout=120)
        big_then = erin.get(big_id).json()
        # THEN frank's job ended first, while a share of erin's records were still to go: the two
        # pollers' batches of erin's chunks already in flight (and accounted once a batch ends)
        # finish first, but a queue in sent order would have run all 40,000
        assert done["status"] == "succeeded"
        assert big_then["status"] == "running"
        assert big_then["processed_records"] <= 30_000, big_then["processed_records"]
        assert erin.cancel(big_id).status == 202
        assert wait_terminal(erin, big_id, timeout=120)["status"] == "cancelled"
    finally:
        stack.set_worker_concurrency(pollers)
        stack.pools[worker].max_size = environments


def test_destroy_leaves_nothing_behind(stack: LocalDeployment) -> None:
    stack.destroy()
    assert_nothing_left(stack)
