"""Dead-letter accounting: a message in the DLQ ends its job, once, and is kept for operators;
and a failure's log names the AWS error code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import (
    ACCOUNT,
    DLQ_NAME,
    MAX_RECEIVE_COUNT,
    Api,
    Aws,
    Worker,
    load_handler,
    records,
    sqs_record,
)

DLQ_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{DLQ_NAME}"


@pytest.fixture
def dl_worker(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Worker:
    monkeypatch.setenv("DEAD_LETTER_QUEUE_ARN", DLQ_ARN)
    return Worker(load_handler("worker"), aws)


def dead_letter_reason(receives: int) -> str:
    # imported late: the engine's Powertools singletons read the environment the fixtures set
    from async_jobs.deadletters import dead_letter_reason as reason

    return reason(receives)


def dead_letter(body: Any, message_id: str = "7d3e1f0a-0000-4000-8000-000000000001") -> dict[str, Any]:
    record = sqs_record(body, receive_count=1, message_id=message_id)
    record["eventSourceARN"] = DLQ_ARN
    return record


def queued(aws: Aws) -> list[dict[str, Any]]:
    """Take every message off the main queue: the worker 'died' on each of them."""
    taken: list[dict[str, Any]] = []
    while got := aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            taken.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return taken


def split_job(api: Api, worker: Worker, aws: Aws, count: int) -> tuple[str, list[dict[str, Any]]]:
    """A job split into chunks of 4 whose chunk messages are returned undelivered."""
    job_id = api.submit_json({"records": records(count)}).body["job_id"]
    [split] = queued(aws)
    assert worker.deliver(split) == {"batchItemFailures": []}
    return job_id, sorted(queued(aws), key=lambda m: m["chunk"])


def test_a_chunk_killed_on_every_receive_ends_its_job_once(
    aws: Aws, dl_worker: Worker, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a job of 3 chunks whose chunk 1 was dead-lettered (the worker killed every time)
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    job_id, chunks = split_job(api, dl_worker, aws, 10)
    for chunk in (chunks[0], chunks[2]):
        assert dl_worker.deliver(chunk) == {"batchItemFailures": []}
    assert api.get(job_id).body["status"] == "running"
    capsys.readouterr()
    caplog.clear()
    # WHEN the DLQ mapping delivers it, twice (at-least-once)
    record = dead_letter(chunks[1])
    assert dl_worker.invoke([record]) == {"batchItemFailures": []}
    assert dl_worker.invoke([record]) == {"batchItemFailures": []}
    # THEN the job ended with that chunk's 4 records failed, counted once
    job = api.get(job_id).body
    assert job["status"] == "failed"
    assert (job["succeeded_records"], job["failed_records"], job["processed_records"]) == (6, 4, 10)
    assert [e["record_index"] for e in job["errors"]] == [4, 5, 6, 7]
    assert dead_letter_reason(MAX_RECEIVE_COUNT) in job["errors"][0]["message"]
    # AND the original message is kept for operators
    copy = aws.get_json(f"jobs/{job_id}/dead-letters/{record['messageId']}.json")
    assert json.loads(copy["body"]) == chunks[1]
    # AND the metric counts the message once, and the log names job, chunk and receive count
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [line["DeadLetteredMessages"] for line in emf if "DeadLetteredMessages" in line] == [[1.0]]
    logged = [r for r in caplog.records if r.getMessage() == "dead-lettered message recorded in its job"]
    assert {(r.levelname, r.job_id, r.chunk, r.receive_count) for r in logged} == {  # type: ignore[attr-defined]
        ("ERROR", job_id, 1, 1)
    }


def test_a_chunk_already_failed_on_its_last_receive_is_not_counted_again(aws: Aws, dl_worker: Worker) -> None:
    # GIVEN a chunk whose last-receive accounting ran (a processor failure, not a kill)
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    job_id, chunks = split_job(api, dl_worker, aws, 8)
    record = sqs_record(chunks[0], receive_count=MAX_RECEIVE_COUNT)
    aws.s3.delete_object(Bucket="async-jobs-state", Key=f"jobs/{job_id}/input.ndjson")  # every read fails
    assert dl_worker.invoke([record])["batchItemFailures"]
    before = api.get(job_id).body
    assert before["failed_records"] == 4
    # WHEN the same message arrives from the DLQ
    assert dl_worker.invoke([dead_letter(chunks[0], record["messageId"])]) == {"batchItemFailures": []}
    # THEN nothing is counted twice
    assert api.get(job_id).body["failed_records"] == 4


def test_a_dead_lettered_split_fails_its_job(aws: Aws, dl_worker: Worker) -> None:
    # GIVEN a job whose split never finished
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    job_id = api.submit_json({"records": records(3)}).body["job_id"]
    [split] = queued(aws)
    # WHEN the split arrives from the DLQ
    assert dl_worker.invoke([dead_letter(split)]) == {"batchItemFailures": []}
    # THEN the job failed, saying why, and the message is kept
    job = api.get(job_id).body
    assert job["status"] == "failed"
    state = aws.state(job_id)
    assert dead_letter_reason(MAX_RECEIVE_COUNT) in state["reason"]
    assert aws.keys(f"jobs/{job_id}/dead-letters/")


@pytest.mark.parametrize("body", ["not json", "[1]", json.dumps({"kind": "chunk", "job_id": "x"})])
def test_an_unreadable_dead_letter_is_logged_with_its_body_and_dropped(
    aws: Aws, dl_worker: Worker, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    # WHEN a message no job can be found for arrives from the DLQ
    result = dl_worker.invoke([dead_letter(body)])
    # THEN it is acknowledged (a DLQ has no DLQ: reporting it would loop), logged with its body
    assert result == {"batchItemFailures": []}
    [logged] = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert logged.levelname == "ERROR" and logged.body == body  # type: ignore[attr-defined]
    assert aws.keys() == []


def test_a_dead_letter_of_an_unknown_job_is_dropped(aws: Aws, dl_worker: Worker) -> None:
    job_id = "0b8f6c3e-6a9e-4f5e-9d1c-3d8c2c6f9a10"
    assert dl_worker.invoke([dead_letter({"kind": "split", "job_id": job_id})]) == {"batchItemFailures": []}
    assert aws.keys() == []


def test_a_transient_failure_keeps_the_dead_letter_in_the_queue(
    aws: Aws, dl_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 throttling the copy
    api = Api(submit=load_handler("submit"))
    job_id, chunks = split_job(api, dl_worker, aws, 4)
    from async_jobs.store import JobStore

    def slow_down(self: JobStore, key: str, data: Any) -> bool:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "PutObject")

    monkeypatch.setattr(JobStore, "create_json", slow_down)
    record = dead_letter(chunks[0])
    # WHEN / THEN it is reported failed, so the DLQ delivers it again; nothing was counted
    assert dl_worker.invoke([record]) == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert aws.state(job_id)["failed_records"] == 0


def test_without_the_dead_letter_queue_arn_a_dlq_record_is_an_ordinary_message(
    aws: Aws, worker: Worker
) -> None:
    # GIVEN dead-letter accounting off (no DEAD_LETTER_QUEUE_ARN): the record is handled as usual
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    job_id = api.submit_json({"records": records(2)}).body["job_id"]
    [split] = queued(aws)
    assert worker.invoke([dead_letter(split)]) == {"batchItemFailures": []}
    assert aws.keys(f"jobs/{job_id}/dead-letters/") == []
    assert aws.queue_depth() == 1  # the split ran and sent its chunk


def test_a_failure_log_names_the_aws_error_code(
    aws: Aws, worker: Worker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a sink write the role is not allowed to do
    from async_jobs.sinks.s3 import S3Sink

    def denied(self: S3Sink, *args: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    monkeypatch.setattr(S3Sink, "write", denied)
    api = Api(submit=load_handler("submit"))
    job_id, chunks = split_job(api, worker, aws, 4)
    caplog.clear()
    # WHEN the chunk fails
    assert worker.deliver(chunks[0])["batchItemFailures"]
    # THEN the log carries the code, not only the class name
    [logged] = [r for r in caplog.records if r.getMessage().startswith("message failed")]
    assert (logged.error_type, logged.error_code, logged.job_id) == ("ClientError", "AccessDenied", job_id)  # type: ignore[attr-defined]
