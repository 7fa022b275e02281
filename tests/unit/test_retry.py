"""POST /jobs/{job_id}/retry: the failed chunks of a terminal job run again, each record counted
once; the state rules (pure, in `model`) and the route."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import (
    ACCOUNT,
    BOB,
    DLQ_NAME,
    Api,
    Aws,
    Worker,
    load_handler,
    records,
    result_lines,
    sqs_record,
)

DLQ_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{DLQ_NAME}"
MOMENT = "2030-01-01T00:00:00+00:00"


# -- the state rules ------------------------------------------------------------------------------
def ended(**fields: Any) -> dict[str, Any]:
    state = {
        "status": "completed_with_errors",
        "succeeded_records": 9,
        "failed_records": 3,
        "skipped_records": 0,
        "chunks_total": 3,
        "done": [[0, 3]],
        "chunks_with_errors": [[1, 2]],
        "errors": [{"record_index": 4, "message": "x"}, {"record_index": 5, "message": "y"}],
        "partial": {},
        "errors_report": "written",
        "started_at": MOMENT,
        "finished_at": MOMENT,
        "reason": None,
    }
    return {**state, **fields}


def test_range_remove_cuts_a_span() -> None:
    from async_jobs import model

    assert model.range_remove([[0, 5]], 2) == [[0, 2], [3, 5]]
    assert model.range_remove([[0, 1], [3, 4]], 0) == [[3, 4]]
    assert model.range_remove([[0, 3]], 7) == [[0, 3]]


def test_retry_uncounts_the_failed_chunks_and_runs_the_job_again() -> None:
    from async_jobs import model

    state = ended()
    model.retry_chunks(state, [model.Rerun(1, 4, 4, 3)], model.parse_time(MOMENT))
    assert state["status"] == "running" and state["finished_at"] is None
    assert (state["succeeded_records"], state["failed_records"]) == (8, 0)
    assert state["done"] == [[0, 1], [2, 3]] and state["chunks_with_errors"] == []
    assert state["rerun"] == [[1, 2]] and state["attempt"] == 1
    assert state["errors"] == [] and state["errors_report"] is None
    # the chunk counts again once it has run: the job can end
    assert not model.all_chunks_accounted(state)


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"status": "running", "finished_at": None}, "only a job that has ended"),
        ({"status": "succeeded", "chunks_with_errors": [], "failed_records": 0}, "no failed chunk"),
        ({"status": "cancelled"}, "no failed chunk"),
        ({"status": "failed", "chunks_with_errors": []}, "no failed chunk"),  # failed before its plan
    ],
)
def test_what_cannot_be_retried(fields: dict[str, Any], detail: str) -> None:
    from async_jobs import model

    problem = model.retry_problem(ended(**fields))
    assert problem is not None and detail in problem
    with pytest.raises(model.InvalidTransition):
        model.retry_chunks(ended(**fields), [], model.parse_time(MOMENT))


# -- the route ------------------------------------------------------------------------------------
def dead_lettered_job(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> tuple[Api, Worker, str]:
    """A job of 3 chunks (10 records) whose chunk 1 the worker never finished: dead-lettered."""
    monkeypatch.setenv("DEAD_LETTER_QUEUE_ARN", DLQ_ARN)
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    job_id = api.submit_json({"records": records(10)}).body["job_id"]
    killed = []
    for _ in range(10):
        got = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        for message in got:
            body = json.loads(message["Body"])
            if body.get("chunk") == 1:
                killed.append(body)
            else:
                assert worker.deliver(body) == {"batchItemFailures": []}
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    [chunk] = killed
    record = sqs_record(chunk)
    record["eventSourceARN"] = DLQ_ARN
    assert worker.invoke([record]) == {"batchItemFailures": []}
    assert api.get(job_id).body["status"] == "failed"
    return api, worker, job_id


def retry(api: Api, job_id: str, **kwargs: Any) -> Any:
    return api.request("POST", f"/jobs/{job_id}/retry", **kwargs)


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_retry_reruns_the_failed_chunk_and_the_job_succeeds_with_each_record_once(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # GIVEN a job failed because one chunk was dead-lettered (the cause is gone now)
    api, worker, job_id = dead_lettered_job(aws, monkeypatch)
    api.kind = kind
    # WHEN it is retried
    reply = retry(api, job_id)
    # THEN 202, the job running again with the chunk's records no longer counted as failed
    assert reply.status == 202, reply.body
    assert reply.body["status"] == "running"
    assert (reply.body["succeeded_records"], reply.body["failed_records"]) == (6, 0)
    assert reply.headers["location"].endswith(f"/jobs/{job_id}") and "retry-after" in reply.headers
    # AND once the worker has run the chunk again, the job succeeded, each record once
    worker.drain(twice=True)
    job = api.get(job_id).body
    assert job["status"] == "succeeded", job
    assert (job["succeeded_records"], job["failed_records"], job["processed_records"]) == (10, 0, 10)
    assert job["errors"] == [] and job["finished_at"]
    assert sorted(line["record_index"] for line in result_lines(aws, job_id)) == list(range(10))
    # the re-run wrote its own marker: the failed run's did not block it
    assert f"jobs/{job_id}/chunks/1.a1.json" in aws.keys(f"jobs/{job_id}/chunks/")
    # AND a second retry has nothing to run
    again = retry(api, job_id)
    assert again.status == 409 and again.headers["content-type"] == "application/problem+json"


def test_retry_refuses_a_running_job_an_unknown_a_foreign_and_a_malformed_id(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    job_id = api.submit_json({"records": records(2)}).body["job_id"]
    assert retry(api, job_id).status == 409  # queued: not ended
    assert retry(api, "0b8f6c3e-6a9e-4f5e-9d1c-3d8c2c6f9a10").status == 404
    assert retry(api, job_id, caller=BOB).status == 404
    assert retry(api, "not-a-uuid").status == 400


def test_a_retry_whose_message_cannot_be_sent_leaves_the_job_as_it_was(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a failed job and a queue that refuses the retry's message
    api, _, job_id = dead_lettered_job(aws, monkeypatch)
    before = aws.state(job_id)
    from async_jobs.messaging import JobQueue

    def refused(self: JobQueue, job_id: str, attempt: int, *, owner: str | None) -> None:
        raise ConnectionError("queue unavailable")

    monkeypatch.setattr(JobQueue, "send_retry", refused)
    # WHEN retried
    reply = retry(api, job_id)
    # THEN the request fails and the job is still failed with its counts (never running for
    # ever with nobody sending its chunks)
    assert reply.status >= 500
    after = aws.state(job_id)
    assert {k: after[k] for k in ("status", "failed_records", "done", "chunks_with_errors")} == {
        k: before[k] for k in ("status", "failed_records", "done", "chunks_with_errors")
    }
    assert not after.get("rerun")


def test_a_stale_retry_is_refused_by_its_attempt(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a failed job, read by a second caller before a first retry ran
    api, worker, job_id = dead_lettered_job(aws, monkeypatch)
    stale = aws.state(job_id)
    assert retry(api, job_id).status == 202
    # AND the retry's chunk dead-lettered again: the job failed again with the same failed chunk
    for _ in range(5):
        got = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in got:
            body = json.loads(message["Body"])
            record = sqs_record(body)
            if body.get("kind") == "chunk":
                record["eventSourceARN"] = DLQ_ARN
            assert worker.invoke([record]) == {"batchItemFailures": []}
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    again = aws.state(job_id)
    assert (again["status"], again["attempt"]) == ("failed", 1)
    assert again["chunks_with_errors"] == stale["chunks_with_errors"]
    # WHEN the second caller's retry, decided on what it read at attempt 0, lands now
    views = api.submit.runtime().retries.views  # type: ignore[union-attr]
    monkeypatch.setattr(views, "load_visible", lambda *args: (stale, '"stale"'))
    reply = retry(api, job_id)
    # THEN it is refused: its attempt is not the job's, and the counts stay whole
    assert reply.status == 409, reply.body
    after = aws.state(job_id)
    assert after["attempt"] == 1 and after["failed_records"] >= 0 and after["succeeded_records"] >= 0
    assert after["succeeded_records"] + after["failed_records"] == 10
