"""POST /jobs/uploads end to end: the presigned PUT lands once, the plan pins what landed, the
record limit holds, and one bad line fails one record."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests

from async_jobs import model

from .conftest import BUCKET, Api, Aws, Worker, load_handler, result_lines
from .test_worker import upload_event


def open_slot(api: Api) -> dict[str, Any]:
    reply = api.request("POST", "/jobs/uploads")
    assert reply.status == 201, reply.body
    return dict(reply.body)


def put(slot: dict[str, Any], body: bytes) -> requests.Response:
    upload = slot["upload"]
    return requests.request(upload["method"], upload["url"], data=body, headers=upload["headers"], timeout=10)


def landed_event(aws: Aws, job_id: str, when: str = "2020-01-01T00:00:00.000Z") -> dict[str, Any]:
    """The S3 notification of the object as it landed (its version and ETag, as S3 sends them)."""
    head = aws.s3.head_object(Bucket=BUCKET, Key=f"jobs/{job_id}/upload.ndjson")
    event = upload_event(job_id, when)
    stored = event["Records"][0]["s3"]["object"]
    stored["eTag"] = head["ETag"].strip('"')
    if head.get("VersionId") not in (None, "null"):
        stored["versionId"] = head["VersionId"]
    return event


@pytest.fixture
def versioned(aws: Aws) -> Aws:
    # The module's state bucket has versioning on.
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return aws


def test_a_landed_upload_cannot_be_replaced(api: Api, versioned: Aws) -> None:
    # GIVEN an upload slot whose object has landed through the presigned URL
    slot = open_slot(api)
    assert slot["upload"]["headers"]["If-None-Match"] == "*"
    assert put(slot, b'{"a": 1}\n').status_code == 200
    # WHEN a second PUT arrives on the same URL with the headers it was given
    second = put(slot, b'{"a": 2}\n')
    # THEN S3 refuses it and the object is the first one
    assert second.status_code == 412
    key = f"jobs/{slot['job_id']}/upload.ndjson"
    assert versioned.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b'{"a": 1}\n'


def test_chunks_read_exactly_the_version_the_plan_was_cut_from(
    api: Api, worker: Worker, versioned: Aws
) -> None:
    # GIVEN an upload that landed, was announced and split
    slot = open_slot(api)
    job_id = slot["job_id"]
    assert put(slot, b'{"v": 1}\n{"v": 1}\n').status_code == 200
    worker.deliver(landed_event(versioned, job_id))
    # WHEN a different object replaces it (a writer that skipped the condition) before the chunks run
    versioned.s3.put_object(Bucket=BUCKET, Key=f"jobs/{job_id}/upload.ndjson", Body=b'{"v": 2}\n{"v": 2}\n')
    worker.drain()
    # THEN the job's results are the records of the version it was planned from
    assert versioned.state(job_id)["status"] == "succeeded"
    assert [line["record"] for line in result_lines(versioned, job_id)] == [{"v": 1}, {"v": 1}]


def test_unversioned_bucket_pins_the_etag(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN an upload planned from one object on a bucket without versioning
    slot = open_slot(api)
    job_id = slot["job_id"]
    assert put(slot, b'{"v": 1}\n{"v": 1}\n').status_code == 200
    worker.deliver(landed_event(aws, job_id))
    # WHEN the object is replaced before the chunks run
    aws.s3.put_object(Bucket=BUCKET, Key=f"jobs/{job_id}/upload.ndjson", Body=b'{"v": 2}\n{"v": 2}\n')
    worker.drain()
    # THEN no chunk read the other bytes: the chunk failed (412 on every receive), nothing in the sink
    state = aws.state(job_id)
    assert (state["status"], state["failed_records"]) == ("failed", 2)
    assert result_lines(aws, job_id) == []


def test_uploads_hold_max_records_per_job(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a limit of 3 records a job and an upload of 5
    monkeypatch.setenv("MAX_RECORDS_PER_JOB", "3")
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    slot = open_slot(api)
    job_id = slot["job_id"]
    assert put(slot, b"".join(b'{"n": %d}\n' % i for i in range(5))).status_code == 200
    # WHEN it lands and the queue drains
    worker.deliver(landed_event(aws, job_id))
    worker.drain()
    # THEN the job failed with a reason that says why, and no record reached the sink
    job = api.get(job_id).body
    assert (job["status"], job["total_records"], job["failed_records"]) == ("failed", 5, 5)
    assert "at most 3" in job["reason"]
    assert result_lines(aws, job_id) == []


def test_each_bad_line_fails_only_its_record(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an upload where lines break each rule of the JSON reader, among good lines
    monkeypatch.setenv("TOLERATED_FAILURE_PERCENT", "100")
    monkeypatch.setenv("CHUNK_SIZE", "100")
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    bad = [
        b'{"s": "\\ud800"}',
        b'{"a": 1e400}',
        b'{"a": ' + b"7" * 5000 + b"}",
        b'{"a": NaN}',
        b'{"a":' * 40 + b"1" + b"}" * 40,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"a": "\xff"}',
        b"[1, 2]",
    ]
    lines = []
    for line in bad:
        lines += [b'{"ok": true}', line]
    slot = open_slot(api)
    job_id = slot["job_id"]
    assert put(slot, b"\n".join(lines) + b"\n").status_code == 200
    # WHEN it runs
    worker.deliver(landed_event(aws, job_id))
    worker.drain()
    # THEN each bad line is one failed record (index and message), the good ones all succeeded
    job = api.get(job_id).body
    assert (job["succeeded_records"], job["failed_records"]) == (len(bad), len(bad))
    assert [e["record_index"] for e in job["errors"]] == list(range(1, 2 * len(bad), 2))
    assert all(e["message"].startswith(f"record {e['record_index']}: ") for e in job["errors"])
    assert len(result_lines(aws, job_id)) == len(bad)
    for key in aws.keys(f"jobs/{job_id}/"):
        if key.endswith("errors.ndjson") or "/results/" in key:
            for line in aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines():
                json.loads(line, parse_constant=pytest.fail)


# -- the slot's promises: a margin for a PUT in flight, a size bound, believed notifications ---
MARGIN = model.UPLOAD_LANDING_MARGIN_SECONDS


def expire_by(aws: Aws, job_id: str, seconds_ago: float) -> None:
    """The slot's expires_at moved `seconds_ago` behind us (as if its PUT began just before it)."""
    state = aws.state(job_id)
    state["expires_at"] = model.isoformat(model.now() - timedelta(seconds=seconds_ago))
    aws.put_json(f"jobs/{job_id}/state.json", state)


def test_the_slot_states_its_landing_deadline_and_size_bound(api: Api) -> None:
    upload = open_slot(api)["upload"]
    expires_at, complete_by = model.parse_time(upload["expires_at"]), model.parse_time(upload["complete_by"])
    assert (complete_by - expires_at).total_seconds() == MARGIN
    assert upload["max_bytes"] == 1024 * 1024 * 1024  # the default of max_upload_bytes


def test_a_put_in_flight_at_expiry_starts_the_job(api: Api, worker: Worker, versioned: Aws) -> None:
    # GIVEN a PUT that began before expires_at and landed 3 s after it (S3 announces its landing)
    slot = open_slot(api)
    job_id = slot["job_id"]
    assert put(slot, b'{"a": 1}\n').status_code == 200
    expire_by(versioned, job_id, 3)
    # WHEN its notification is handled
    worker.deliver(landed_event(versioned, job_id, model.isoformat(model.now())))
    worker.drain()
    # THEN the job ran: the landing margin covers it
    assert versioned.state(job_id)["status"] == "succeeded"


def test_an_object_landed_after_the_margin_expires_the_slot_whatever_the_message_says(
    api: Api, worker: Worker, versioned: Aws
) -> None:
    # GIVEN an object that landed past the slot's landing deadline
    slot = open_slot(api)
    job_id = slot["job_id"]
    assert put(slot, b'{"a": 1}\n').status_code == 200
    expire_by(versioned, job_id, MARGIN + 5)
    # WHEN a notification claims it landed long before (its eventTime is not believed)
    worker.deliver(landed_event(versioned, job_id, "2020-01-01T00:00:00.000Z"))
    # THEN S3's LastModified decides: expired, and nothing was split
    state = versioned.state(job_id)
    assert state["status"] == "expired" and state["chunks_total"] is None
    assert versioned.queue_depth() == 0


def test_an_upload_larger_than_the_bound_fails_its_job_before_any_chunk(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a bound of 1,024 bytes an upload, stated in the slot, and an object of 2,600
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1024")
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    slot = open_slot(api)
    assert slot["upload"]["max_bytes"] == 1024
    job_id = slot["job_id"]
    assert put(slot, b"".join(b'{"n": %05d}\n' % i for i in range(200))).status_code == 200
    # WHEN it lands and the queue drains
    worker.deliver(landed_event(aws, job_id))
    worker.drain()
    # THEN the job failed with the reason, before its input was split or any record written
    job = api.get(job_id).body
    assert job["status"] == "failed" and "2600 bytes" in job["reason"] and "at most 1024" in job["reason"]
    assert aws.state(job_id)["chunks_total"] is None
    assert result_lines(aws, job_id) == [] and aws.keys(f"jobs/{job_id}/chunks/") == []


def forged(event: dict[str, Any], **changes: str) -> dict[str, Any]:
    event["Records"][0]["s3"]["object"].update(changes)
    return event


@pytest.mark.parametrize("forgery", ["no object", "another version", "another etag", "malformed version"])
def test_a_notification_is_believed_only_for_the_object_in_its_version(
    api: Api, worker: Worker, versioned: Aws, forgery: str
) -> None:
    # GIVEN a slot and a notification for it that S3 did not send
    slot = open_slot(api)
    job_id = slot["job_id"]
    if forgery == "no object":
        event = forged(upload_event(job_id), versionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", eTag="0" * 32)
    else:
        assert put(slot, b'{"a": 1}\n').status_code == 200
        changes = {
            "another version": {"versionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
            "another etag": {"eTag": "0" * 32},
            "malformed version": {"versionId": "../../x"},
        }[forgery]
        event = forged(landed_event(versioned, job_id), **changes)
    # WHEN the worker handles it
    assert worker.deliver(event) == {"batchItemFailures": []}
    # THEN nothing happens to the slot: it still awaits its (real) upload, nothing was queued
    state = versioned.state(job_id)
    assert state["status"] == "awaiting_upload" and state["input_version"] is None
    assert versioned.queue_depth() == 0
    # AND the real notification, when there is an object, still starts it
    if forgery != "no object":
        worker.deliver(landed_event(versioned, job_id))
        worker.drain()
        assert versioned.state(job_id)["status"] == "succeeded"
