"""GET /jobs/{job_id} through the status handler."""

from __future__ import annotations

import uuid

import pytest

from .conftest import BOB, BUCKET, Api, Aws, Worker, load_handler, records
from .test_api_submit import JOB_FIELDS, assert_problem


def test_get_returns_job_with_etag_and_retry_after(api: Api) -> None:
    # GIVEN a queued job
    job_id = api.submit_json({"records": records(3), "metadata": {"m": True}}).body["job_id"]
    # WHEN it is read
    reply = api.get(job_id)
    # THEN the job resource, an ETag and Retry-After (not terminal)
    assert reply.status == 200
    assert set(reply.body) == JOB_FIELDS
    assert reply.body["status"] == "queued" and reply.body["metadata"] == {"m": True}
    assert reply.headers["etag"].startswith('"')
    assert reply.headers["retry-after"] == "2"
    assert set(reply.body["links"]) == {"self", "errors", "results"}


def test_if_none_match_gives_304_until_the_job_changes(api: Api, worker: Worker) -> None:
    # GIVEN a job read once
    job_id = api.submit_json({"records": records(3)}).body["job_id"]
    etag = api.get(job_id).headers["etag"]
    # WHEN read again with If-None-Match
    not_modified = api.get(job_id, {"If-None-Match": etag})
    # THEN 304 without a body
    assert not_modified.status == 304 and not_modified.body is None
    # AND once the job moved on, the same ETag no longer matches
    worker.drain()
    changed = api.get(job_id, {"If-None-Match": etag})
    assert changed.status == 200 and changed.body["status"] == "succeeded"
    assert "retry-after" not in changed.headers


def test_get_unknown_other_owner_and_malformed(api: Api, aws: Aws) -> None:
    job_id = api.submit_json({"records": records(1)}).body["job_id"]
    assert_problem(api.get(str(uuid.uuid4())), 404)
    assert_problem(api.get(job_id, caller=BOB), 404)
    # a malformed id never becomes part of an S3 key: nothing is even read
    calls: list[str] = []
    api.status.runtime().service.views.store.s3.meta.events.register(
        "before-call.s3", lambda **kw: calls.append(kw["model"].name)
    )
    for bad in ("not-a-uuid", "..%2F..%2Fidempotency", "%2e%2e", uuid.uuid4().hex):
        assert_problem(api.get(bad), 400)
    assert calls == []


def test_authorization_none_shares_jobs(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an API without authorization
    monkeypatch.setenv("AUTHORIZATION", "NONE")
    api = Api(submit=load_handler("submit"), status=load_handler("status"), caller=None)
    job_id = api.submit_json({"records": records(1)}).body["job_id"]
    # WHEN anyone reads it
    # THEN they see it, and no owner is stored
    assert api.get(job_id, caller=BOB).status == 200
    assert aws.state(job_id)["owner"] is None


def test_awaiting_upload_past_expiry_reads_expired(api: Api, aws: Aws) -> None:
    # GIVEN an upload slot whose expiry has passed
    job_id = api.request("POST", "/jobs/uploads").body["job_id"]
    state = aws.state(job_id)
    state["expires_at"] = "2001-01-01T00:00:00.000Z"
    aws.put_json(f"jobs/{job_id}/state.json", state)
    # WHEN it is read
    reply = api.get(job_id)
    # THEN it reads expired (terminal: no Retry-After), and cannot be cancelled
    assert reply.body["status"] == "expired"
    assert "retry-after" not in reply.headers
    assert_problem(api.delete(job_id), 409)


def test_errors_link_is_presigned_once_the_report_exists(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a job with a failing record that has ended
    job_id = api.request(
        "POST", "/jobs", '{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": 4}\n', {"Content-Type": "application/x-ndjson"}
    ).body["job_id"]
    state = aws.state(job_id)
    assert api.get(job_id).body["links"]["errors"] is None
    aws.s3.put_object(
        Bucket=BUCKET, Key=f"jobs/{job_id}/input.ndjson", Body=b'{"a": 1}\n[1]\n{"a": 3}\n{"a": 4}\n'
    )
    aws.put_json(f"jobs/{job_id}/state.json", state)
    worker.drain()
    # WHEN it is read
    job = api.get(job_id).body
    # THEN errors are listed and links.errors is a URL to errors.ndjson
    assert job["status"] == "failed"  # 25 % > 10 % tolerated
    assert job["errors"] == [{"record_index": 1, "message": "record 1: not a JSON object"}]
    assert f"jobs/{job_id}/errors.ndjson" in job["links"]["errors"]
    assert job["links"]["results"] == f"s3://{BUCKET}/jobs/{job_id}/results/"
