"""POST /jobs, POST /jobs/uploads and DELETE /jobs/{job_id} through the submit handler."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from .conftest import ALICE, BOB, BUCKET, Api, Aws, Worker, load_handler, records

JOB_FIELDS = {
    "job_id",
    "status",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "total_records",
    "processed_records",
    "succeeded_records",
    "failed_records",
    "progress",
    "metadata",
    "reason",
    "errors",
    "links",
    "callback",
}
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def assert_problem(reply, status: int) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert PROBLEM_FIELDS <= set(reply.body)
    assert reply.body["status"] == status
    assert "Traceback" not in json.dumps(reply.body)
    return reply.body


def queued_messages(aws: Aws) -> list[dict]:
    response = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


def test_post_json_returns_202_with_job_resource(api: Api, aws: Aws) -> None:
    # GIVEN a JSON body with three records and metadata
    body = {"records": records(3), "metadata": {"batch": "b-1"}}
    # WHEN it is submitted
    reply = api.submit_json(body)
    # THEN 202 with Location, Retry-After and the job resource in status queued
    assert reply.status == 202, reply.body
    job = reply.body
    assert set(job) == JOB_FIELDS
    assert job["status"] == "queued"
    assert job["total_records"] == 3 and job["processed_records"] == 0 and job["progress"] == 0
    assert job["metadata"] == {"batch": "b-1"}
    assert uuid.UUID(job["job_id"]).version == 4
    location = f"https://abc123.execute-api.us-east-1.amazonaws.com/prod/jobs/{job['job_id']}"
    assert reply.headers["location"] == location
    assert job["links"]["self"] == location
    assert reply.headers["retry-after"] == "2"
    # AND the normalized input, the state and one split message are stored
    stored = aws.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job['job_id']}/input.ndjson")["Body"].read()
    assert [json.loads(line) for line in stored.splitlines()] == records(3)
    assert aws.state(job["job_id"])["owner"] == ALICE
    assert queued_messages(aws) == [{"kind": "split", "job_id": job["job_id"]}]


def test_post_ndjson_returns_202(api: Api, aws: Aws) -> None:
    # GIVEN an NDJSON body with a blank line and CRLF endings
    body = '{"a": 1}\r\n\r\n{"a": 2}\n'
    # WHEN it is submitted
    reply = api.request("POST", "/jobs", body, {"Content-Type": "application/x-ndjson; charset=utf-8"})
    # THEN two records were accepted
    assert reply.status == 202, reply.body
    assert reply.body["total_records"] == 2
    assert reply.body["metadata"] is None


def test_post_base64_encoded_body(api: Api) -> None:
    # GIVEN a base64-encoded JSON body, as API Gateway sends binary media types
    body = json.dumps({"records": records(2)})
    # WHEN it is submitted
    reply = api.request("POST", "/jobs", body, {"Content-Type": "application/json"}, base64_body=True)
    # THEN it is decoded and accepted
    assert reply.status == 202, reply.body
    assert reply.body["total_records"] == 2


def test_http_api_event_is_served(http_api: Api, aws: Aws) -> None:
    # GIVEN an HTTP API (payload 2.0) event on the $default stage
    # WHEN a job is submitted and read back
    reply = http_api.submit_json({"records": records(1)})
    assert reply.status == 202, reply.body
    got = http_api.get(reply.body["job_id"])
    # THEN the URLs carry no stage segment and the owner comes from the IAM authorizer
    assert (
        reply.headers["location"]
        == f"https://xyz789.execute-api.us-east-1.amazonaws.com/jobs/{reply.body['job_id']}"
    )
    assert got.status == 200
    assert aws.state(reply.body["job_id"])["owner"] == ALICE


def test_local_runtime_event_gives_http_location(api: Api) -> None:
    # GIVEN the event the local runtime builds (Host 127.0.0.1:8080, X-Forwarded-Proto http)
    event = api.event(
        "POST",
        "/jobs",
        json.dumps({"records": records(1)}),
        {"Content-Type": "application/json", "X-Forwarded-Proto": "http"},
    )
    event["requestContext"]["domainName"] = "127.0.0.1:8080"
    event["requestContext"]["stage"] = "local"
    # WHEN it is submitted
    reply = api.send(event)
    # THEN Location points at the local stage URL
    assert reply.headers["location"] == f"http://127.0.0.1:8080/local/jobs/{reply.body['job_id']}"


def test_path_with_stage_prefix_is_routed(api: Api) -> None:
    # GIVEN a REST event whose path still carries the stage
    event = api.event(
        "POST", "/jobs", json.dumps({"records": records(1)}), {"Content-Type": "application/json"}
    )
    event["path"] = "/prod/jobs"
    # WHEN / THEN it reaches POST /jobs
    assert api.send(event).status == 202


def test_idempotent_replay_returns_same_job(api: Api, aws: Aws) -> None:
    # GIVEN a job submitted with an Idempotency-Key
    body = {"records": records(5)}
    first = api.submit_json(body, {"Idempotency-Key": "order-42"})
    # WHEN the same caller sends the same body with the same key
    second = api.submit_json(body, {"Idempotency-Key": "order-42"})
    # THEN the same job comes back, marked as replayed, and only one job exists
    assert first.status == second.status == 202
    assert second.body["job_id"] == first.body["job_id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len([k for k in aws.keys("jobs/") if k.endswith("state.json")]) == 1
    assert len(queued_messages(aws)) == 1


def test_idempotency_key_with_different_body_is_422(api: Api, aws: Aws) -> None:
    # GIVEN a key already used
    api.submit_json({"records": records(2)}, {"Idempotency-Key": "k1"})
    before = sorted(aws.keys())
    # WHEN the key comes with another body
    reply = api.submit_json({"records": records(3)}, {"Idempotency-Key": "k1"})
    # THEN 422 and nothing new is stored
    assert_problem(reply, 422)
    assert sorted(aws.keys()) == before


def test_idempotency_key_is_scoped_to_the_caller(api: Api) -> None:
    # GIVEN alice used a key
    first = api.submit_json({"records": records(2)}, {"Idempotency-Key": "shared"})
    # WHEN bob uses the same key and body
    second = api.submit_json({"records": records(2)}, {"Idempotency-Key": "shared"}, caller=BOB)
    # THEN bob gets his own job
    assert second.status == 202 and second.body["job_id"] != first.body["job_id"]
    assert "idempotent-replayed" not in second.headers


def _abandoned_claim(api: Api, aws: Aws, body: dict, key: str, age_seconds: float) -> str:
    """A request that claimed its key `age_seconds` ago and stopped before its state landed."""
    from async_jobs import idempotency, model

    first = api.submit_json(body, {"Idempotency-Key": key})
    job_id = first.body["job_id"]
    aws.s3.delete_object(Bucket=BUCKET, Key=f"jobs/{job_id}/state.json")
    record_key = idempotency.record_key(ALICE, key)
    record = aws.get_json(record_key)
    claimed = model.now() - timedelta(seconds=age_seconds)
    aws.put_json(record_key, {**record, "committed": False, "claimed_at": model.isoformat(claimed)})
    return job_id


def test_replay_of_a_claim_still_in_progress_answers_409(api: Api, aws: Aws) -> None:
    # GIVEN a request that claimed its key a moment ago and has not committed its job yet
    body = {"records": records(2)}
    job_id = _abandoned_claim(api, aws, body, "busy", age_seconds=1)
    # WHEN the client retries
    again = api.submit_json(body, {"Idempotency-Key": "busy"})
    # THEN 409 with Retry-After: the first request may still take the job back
    problem = assert_problem(again, 409)
    assert "in progress" in problem["detail"] and again.headers["retry-after"] == "1"
    assert f"jobs/{job_id}/state.json" not in aws.keys()


def test_replay_completes_a_job_whose_first_request_stopped_for_good(api: Api, aws: Aws) -> None:
    # GIVEN a claim older than any submit invocation can run, with no state
    body = {"records": records(2)}
    job_id = _abandoned_claim(api, aws, body, "crash", age_seconds=17 * 60)
    # WHEN the client retries
    again = api.submit_json(body, {"Idempotency-Key": "crash"})
    # THEN the same job is created, queued and committed
    assert again.status == 202 and again.body["job_id"] == job_id
    assert aws.state(job_id)["status"] == "queued"
    assert api.submit_json(body, {"Idempotency-Key": "crash"}).status == 202


def test_replay_never_answers_for_a_job_the_first_request_takes_back(api: Api, aws: Aws) -> None:
    # GIVEN a first request whose split message cannot be sent, and a replay arriving while the
    # first request's state exists (between its state write and its failure)
    runtime = api.submit.runtime()
    queue = runtime.service.queue
    send_split = queue.send_split
    replies = []

    def failing_send(job_id: str, *, owner: str | None) -> None:
        replies.append(api.submit_json({"records": records(2)}, {"Idempotency-Key": "race"}))
        raise ConnectionError("queue unavailable")

    queue.send_split = failing_send
    first = api.submit_json({"records": records(2)}, {"Idempotency-Key": "race"})
    queue.send_split = send_split
    # THEN the first request fails and the replay was told to retry, not 202 for a lost job
    assert first.status == 500
    assert [r.status for r in replies] == [409]
    assert aws.keys("jobs/") == []


BAD_REQUESTS = {
    "malformed_json": ("application/json", "{not json", {}, 400, "not valid JSON"),
    "body_not_object": ("application/json", "[1, 2]", {}, 400, "JSON object"),
    "records_missing": ("application/json", '{"metadata": {}}', {}, 400, "required"),
    "records_not_list": ("application/json", '{"records": {"a": 1}}', {}, 400, "array"),
    "records_empty": ("application/json", '{"records": []}', {}, 400, "at least one"),
    "record_not_object": ("application/json", '{"records": [{"a": 1}, {"a": 2}, 7]}', {}, 400, "index 2"),
    "metadata_not_object": (
        "application/json",
        '{"records": [{"a": 1}], "metadata": 3}',
        {},
        400,
        "metadata",
    ),
    "ndjson_bad_line": ("application/x-ndjson", '{"a": 1}\n{"a": 2}\n{oops\n', {}, 400, "Line 3"),
    "ndjson_line_not_object": ("application/x-ndjson", '{"a": 1}\n"text"\n', {}, 400, "Line 2"),
    "ndjson_empty": ("application/x-ndjson", "\n\n", {}, 400, "no records"),
    "nan_is_not_json": ("application/json", '{"records": [{"a": NaN}]}', {}, 400, "NaN"),
    "idempotency_key_too_long": (
        "application/json",
        '{"records": [{"a": 1}]}',
        {"Idempotency-Key": "k" * 256},
        400,
        "Idempotency-Key",
    ),
    "idempotency_key_not_printable": (
        "application/json",
        '{"records": [{"a": 1}]}',
        {"Idempotency-Key": "bad\tkey"},
        400,
        "Idempotency-Key",
    ),
    "idempotency_key_empty": (
        "application/json",
        '{"records": [{"a": 1}]}',
        {"Idempotency-Key": ""},
        400,
        "Idempotency-Key",
    ),
    "too_many_records": ("application/json", json.dumps({"records": records(6)}), {}, 413, "at most 5"),
    "too_many_ndjson_records": ("application/x-ndjson", "\n".join(['{"a":1}'] * 6), {}, 413, "at most 5"),
    "body_too_large": ("application/json", json.dumps({"records": [{"pad": "x" * 3000}]}), {}, 413, "larger"),
    "unsupported_media_type": ("text/csv", "a,b\n1,2\n", {}, 415, "application/json"),
    "missing_content_type": (None, '{"records": [{"a": 1}]}', {}, 415, "application/json"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_rejected_request_stores_nothing(case: str, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN tight limits (5 records, 2 KB) and a request that breaks one rule
    monkeypatch.setenv("MAX_RECORDS_PER_JOB", "5")
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    content_type, body, headers, status, words = BAD_REQUESTS[case]
    all_headers = dict(headers)
    event = api.event("POST", "/jobs", body, all_headers)
    event["headers"].pop("Content-Type", None)
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
    # WHEN it is submitted
    reply = api.send(event)
    # THEN the problem names the cause, and neither the bucket nor the queue holds anything
    problem = assert_problem(reply, status)
    assert words in problem["detail"], problem
    assert aws.keys() == []
    assert aws.queue_depth() == 0


def test_rejected_record_lists_per_field_errors(api: Api) -> None:
    # GIVEN two records that are not objects
    reply = api.submit_json({"records": [1, {"a": 1}, "x"]})
    # THEN the problem lists both with a JSON pointer
    problem = assert_problem(reply, 400)
    assert problem["errors"] == [
        {"pointer": "/records/0", "detail": "must be a JSON object"},
        {"pointer": "/records/2", "detail": "must be a JSON object"},
    ]


def test_queue_failure_takes_the_job_back(api: Api, aws: Aws) -> None:
    # GIVEN a queue that refuses the split message
    runtime = api.submit.runtime()

    def refuse(**_: object) -> None:
        raise RuntimeError("queue down")

    runtime.service.queue.sqs.send_message = refuse
    # WHEN a job is submitted
    reply = api.submit_json({"records": records(2)})
    # THEN 500 problem without internals, and no job is left behind
    problem = assert_problem(reply, 500)
    assert "queue down" not in json.dumps(problem)
    assert [k for k in aws.keys() if k.endswith("state.json")] == []


def test_post_uploads_returns_presigned_put(api: Api, aws: Aws) -> None:
    # GIVEN / WHEN an upload slot is requested with metadata
    reply = api.request(
        "POST",
        "/jobs/uploads",
        json.dumps({"metadata": {"src": "nightly"}}),
        {"Content-Type": "application/json"},
    )
    # THEN 201 with a presigned PUT for the job's upload key
    assert reply.status == 201, reply.body
    body = reply.body
    assert set(body) == {"job_id", "status", "upload"}
    assert body["status"] == "awaiting_upload"
    assert body["upload"]["method"] == "PUT"
    assert f"jobs/{body['job_id']}/upload.ndjson" in body["upload"]["url"]
    assert body["upload"]["headers"] == {"Content-Type": "application/x-ndjson", "If-None-Match": "*"}
    assert body["upload"]["expires_at"].endswith("Z")
    assert reply.headers["location"].endswith(f"/jobs/{body['job_id']}")
    state = aws.state(body["job_id"])
    assert state["status"] == "awaiting_upload" and state["metadata"] == {"src": "nightly"}
    # AND GET shows it awaiting upload
    assert api.get(body["job_id"]).body["status"] == "awaiting_upload"


def test_post_uploads_rejects_bad_metadata(api: Api, aws: Aws) -> None:
    reply = api.request("POST", "/jobs/uploads", '{"metadata": []}', {"Content-Type": "application/json"})
    assert_problem(reply, 400)
    assert aws.keys() == []


def test_delete_queued_job_is_cancelled_at_once(api: Api, aws: Aws) -> None:
    # GIVEN a job no chunk has started
    job_id = api.submit_json({"records": records(3)}).body["job_id"]
    # WHEN it is deleted
    reply = api.delete(job_id)
    # THEN 202 cancelled
    assert reply.status == 202, reply.body
    assert reply.body["status"] == "cancelled"
    assert reply.body["finished_at"] is not None
    assert "retry-after" not in reply.headers


def test_delete_running_job_is_cancelling(api: Api, aws: Aws) -> None:
    # GIVEN a running job
    job_id = api.submit_json({"records": records(3)}).body["job_id"]
    state = aws.state(job_id)
    state.update(status="running", started_at=state["created_at"])
    aws.put_json(f"jobs/{job_id}/state.json", state)
    # WHEN it is deleted, twice
    first, second = api.delete(job_id), api.delete(job_id)
    # THEN 202 cancelling both times
    assert (first.status, first.body["status"]) == (202, "cancelling")
    assert (second.status, second.body["status"]) == (202, "cancelling")
    assert first.headers["retry-after"] == "2"


def test_delete_terminal_job_is_409(api: Api, worker: Worker) -> None:
    # GIVEN a finished job
    job_id = api.submit_json({"records": records(3)}).body["job_id"]
    worker.drain()
    # WHEN it is deleted
    reply = api.delete(job_id)
    # THEN 409
    problem = assert_problem(reply, 409)
    assert "succeeded" in problem["detail"]


def test_delete_unknown_other_owner_and_malformed(api: Api) -> None:
    job_id = api.submit_json({"records": records(1)}).body["job_id"]
    assert_problem(api.delete(str(uuid.uuid4())), 404)
    assert_problem(api.delete(job_id, caller=BOB), 404)
    assert_problem(api.delete("not-a-uuid"), 400)
    assert_problem(api.delete(job_id.upper()), 400)


def test_unknown_route_is_404_and_wrong_method_is_405(api: Api) -> None:
    # GIVEN / WHEN a path the API does not have, and a method a path does not take
    missing = api.request("POST", "/nope", "{}", {"Content-Type": "application/json"})
    wrong = api.request("PUT", "/jobs", "{}", {"Content-Type": "application/json"})
    wrong_item = api.request("POST", f"/jobs/{uuid.uuid4()}", "{}", {"Content-Type": "application/json"})
    get_uploads = api.request("GET", "/jobs/uploads")
    get_retry = api.request("GET", f"/jobs/{uuid.uuid4()}/retry")
    # THEN problem+json 404 and 405 with Allow
    assert_problem(missing, 404)
    assert assert_problem(wrong, 405) and wrong.headers["allow"] == "GET, POST"
    assert assert_problem(wrong_item, 405) and wrong_item.headers["allow"] == "GET, DELETE"
    assert assert_problem(get_uploads, 405) and get_uploads.headers["allow"] == "POST"
    assert assert_problem(get_retry, 405) and get_retry.headers["allow"] == "POST"
