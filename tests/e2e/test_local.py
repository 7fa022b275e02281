"""examples/local applied to moto and served by the local runtime (authorization NONE)."""

from __future__ import annotations

import json
import math

import pytest

from async_jobs_local import JobsClient, LocalDeployment

from .conftest import assert_nothing_left, queue_depth, s3_keys, s3_lines, wait_for, wait_terminal

pytestmark = pytest.mark.slow

ROUTES = {"POST /jobs", "POST /jobs/uploads", "GET /jobs/{job_id}", "DELETE /jobs/{job_id}"}


@pytest.fixture(scope="module")
def stack(local_stack: LocalDeployment) -> LocalDeployment:
    return local_stack


@pytest.fixture(scope="module")
def client(stack: LocalDeployment) -> JobsClient:
    return JobsClient(stack.url)


def records(count: int, start: int = 0) -> list[dict[str, object]]:
    return [{"id": f"r{i}", "email": f"u{i}@example.com", "n": i} for i in range(start, start + count)]


def test_outputs_describe_the_deployment(stack: LocalDeployment) -> None:
    # GIVEN the applied example WHEN its outputs are read THEN they carry what the runtime plays
    outputs = stack.outputs
    assert outputs["api_type"] == "rest"
    assert outputs["api_authorization"] == "NONE"
    assert set(outputs["api_routes"]) == ROUTES
    assert outputs["api_routes"]["GET /jobs/{job_id}"] == outputs["status_function_name"]
    assert outputs["api_routes"]["POST /jobs"] == outputs["submit_function_name"]
    mapping = outputs["worker_event_source_mapping"]
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["enabled"] is False  # moto's own poller is off; the runtime plays the mapping
    assert stack.event_source is not None
    assert stack.event_source.maximum_concurrency == mapping["maximum_concurrency"]
    redrive = json.loads(stack.queue_attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == outputs["dlq_arn"]


def test_second_plan_has_no_changes(stack: LocalDeployment) -> None:
    assert stack.plan_has_changes() is False


def test_job_runs_to_success_over_http(stack: LocalDeployment, client: JobsClient) -> None:
    # GIVEN 2,500 records WHEN they are submitted THEN 202 at once, and the job ends succeeded
    response = client.submit(records(2500), metadata={"batch": "e2e"})
    assert response.status == 202, response.body
    job = response.json()
    assert job["status"] == "queued"
    assert response.headers["location"].startswith(f"{stack.url}/")
    assert int(response.headers["retry-after"]) >= 0

    # the Location header works as given (with the stage prefix)
    located = client.request("GET", response.headers["location"])
    assert located.status == 200

    final = wait_terminal(client, job["job_id"])
    assert final["status"] == "succeeded"
    assert final["total_records"] == final["processed_records"] == final["succeeded_records"] == 2500
    assert final["failed_records"] == 0
    assert final["progress"] == 1
    assert final["metadata"] == {"batch": "e2e"}
    chunk_size = 1000
    results = s3_keys(stack, f"jobs/{job['job_id']}/results/")
    assert len(results) == math.ceil(2500 / chunk_size)
    assert sum(len(s3_lines(stack, key)) for key in results) == 2500

    # ETag / If-None-Match on a terminal job
    again = client.get(job["job_id"])
    assert client.get(job["job_id"], **{"If-None-Match": again.headers["etag"]}).status == 304


def test_ndjson_body_and_malformed_line(client: JobsClient) -> None:
    ok = client.submit_ndjson('{"id": "a"}\n{"id": "b"}\n')
    assert ok.status == 202
    assert wait_terminal(client, ok.json()["job_id"])["processed_records"] == 2

    bad = client.submit_ndjson('{"id": "a"}\n{"id": \n')
    assert bad.status == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "2" in json.dumps(bad.json())  # names the line


def test_unknown_route_and_job(client: JobsClient) -> None:
    assert client.request("GET", "/nothing-here").status == 403
    assert client.request("GET", "/nothing-here").json() == {"message": "Missing Authentication Token"}
    assert client.request("PUT", "/jobs").status == 403
    assert client.get("00000000-0000-4000-8000-000000000000").status == 404
    assert client.get("not-a-uuid").status == 400


def test_cancel_before_any_chunk_starts(stack: LocalDeployment, client: JobsClient) -> None:
    # GIVEN a job whose messages are not yet delivered (the mapping is paused)
    stack.pause_event_source()
    try:
        job = client.submit(records(5000)).json()
        # WHEN it is cancelled THEN 202 and it ends cancelled
        response = client.cancel(job["job_id"])
        assert response.status == 202, response.body
        assert response.json()["status"] in ("cancelling", "cancelled")
    finally:
        stack.resume_event_source()
    final = wait_terminal(client, job["job_id"])
    assert final["status"] == "cancelled"
    assert final["succeeded_records"] == 0
    # a terminal job cannot be cancelled again
    assert client.cancel(job["job_id"]).status == 409


def test_poison_message_ends_in_the_dlq_and_its_job_still_ends(stack: LocalDeployment, client: JobsClient) -> None:
    # GIVEN a job whose input object is lost before the worker splits it (every receive fails)
    sqs = stack.client("sqs")
    queue_url = stack.outputs["queue_url"]
    dlq_url = stack.outputs["dlq_url"]
    visibility = stack.queue_attributes["VisibilityTimeout"]
    max_receive_count = json.loads(stack.queue_attributes["RedrivePolicy"])["maxReceiveCount"]
    assert queue_depth(stack, dlq_url) == 0
    stack.pause_event_source()
    try:
        job = client.submit(records(10)).json()
        bucket, key = stack.outputs["state_bucket_name"], f"jobs/{job['job_id']}/input.ndjson"
        s3 = stack.client("s3")
        for version in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])  # gone for good
        # redelivery after 1 s instead of the deployed visibility timeout, to keep the test short
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    finally:
        stack.resume_event_source()
    try:
        # WHEN the worker fails it on every receive
        # THEN on the last receive the job is ended (failed) before the message goes to the DLQ
        final = wait_terminal(client, job["job_id"], timeout=30 + 3 * max_receive_count)
        assert final["status"] == "failed"
        wait_for(lambda: queue_depth(stack, dlq_url) == 1, timeout=30, what="the message in the DLQ")
        moved = sqs.receive_message(QueueUrl=dlq_url, MessageSystemAttributeNames=["All"])["Messages"][0]
        body = json.loads(moved["Body"])
        assert (body["kind"], body["job_id"]) == ("split", job["job_id"])
        assert int(moved["Attributes"]["ApproximateReceiveCount"]) >= max_receive_count
        assert queue_depth(stack, queue_url) == 0
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": visibility})
    assert stack.event_source is not None
    assert stack.event_source.stats.failed_messages >= max_receive_count


def test_destroy_leaves_nothing_behind(stack: LocalDeployment) -> None:
    stack.destroy()
    assert_nothing_left(stack)
