"""The worker handler: split, chunks, uploads, validation, transform, progress, batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from async_jobs import model
from async_jobs.chunks import ChunkRef

from .conftest import (
    BUCKET,
    Api,
    Aws,
    Worker,
    load_event,
    load_handler,
    records,
    result_lines,
    sqs_record,
)


def chunk_messages(aws: Aws) -> list[dict]:
    messages = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return sorted(messages, key=lambda m: m.get("chunk", -1))
        for m in got:
            messages.append(json.loads(m["Body"]))
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_split_plans_byte_ranges_and_sends_chunk_messages(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a job of 10 records and CHUNK_SIZE 4
    job_id = api.submit_json({"records": records(10)}).body["job_id"]
    chunk_messages(aws)  # the split message
    # WHEN the split message is handled
    result = worker.deliver({"kind": "split", "job_id": job_id})
    # THEN the plan is in the state and one message per chunk was sent
    assert result == {"batchItemFailures": []}
    state = aws.state(job_id)
    assert (state["chunks_total"], state["total_records"], state["chunks_dispatched"]) == (3, 10, True)
    sent = chunk_messages(aws)
    assert [(m["kind"], m["chunk"], m["first_record"], m["count"]) for m in sent] == [
        ("chunk", 0, 0, 4),
        ("chunk", 1, 4, 4),
        ("chunk", 2, 8, 2),
    ]
    data = aws.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/input.ndjson")["Body"].read()
    assert sent[0]["byte_range"][0] == 0 and sent[-1]["byte_range"][1] == len(data)
    assert all(a["byte_range"][1] == b["byte_range"][0] for a, b in zip(sent, sent[1:], strict=False))
    # AND a second split delivery sends nothing more
    worker.deliver({"kind": "split", "job_id": job_id})
    assert chunk_messages(aws) == []


def test_job_runs_to_succeeded_with_results(api: Api, worker: Worker, aws: Aws, capsys) -> None:
    # GIVEN a submitted job
    job_id = api.submit_json({"records": records(10)}).body["job_id"]
    # WHEN the worker drains the queue
    worker.drain()
    # THEN the job succeeded, every record is in the results once, and metrics were emitted
    job = api.get(job_id).body
    assert job["status"] == "succeeded"
    assert (job["processed_records"], job["succeeded_records"], job["failed_records"]) == (10, 10, 0)
    assert job["progress"] == 1.0 and job["started_at"] and job["finished_at"]
    lines = result_lines(aws, job_id)
    assert sorted(line["record_index"] for line in lines) == list(range(10))
    assert lines[0]["record"] == {"id": 0, "name": "item-0"}
    assert sorted(aws.keys(f"jobs/{job_id}/results/"))[0].endswith("results/chunk-000000.ndjson")
    emitted = capsys.readouterr().out
    for metric in ("JobsSubmitted", "RecordsProcessed", "JobDuration"):
        assert metric in emitted


def test_s3_test_event_is_acknowledged(worker: Worker) -> None:
    # GIVEN the test event S3 sends when a notification is configured
    # WHEN / THEN it is acknowledged without failure
    assert worker.deliver(load_event("s3_test_event.json")) == {"batchItemFailures": []}


def test_unreadable_message_fails_alone(worker: Worker, api: Api) -> None:
    # GIVEN a batch with one message that is not JSON and one good split
    job_id = api.submit_json({"records": records(2)}).body["job_id"]
    bad, good = sqs_record("not json"), sqs_record({"kind": "split", "job_id": job_id})
    # WHEN handled
    result = worker.invoke([bad, good])
    # THEN only the bad message is reported failed
    assert result == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}


def upload_event(job_id: str, when: str = "2030-01-01T00:00:00.000Z") -> dict:
    event = load_event("s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = f"jobs/{job_id}/upload.ndjson"
    event["Records"][0]["eventTime"] = when
    return event


def test_upload_starts_the_job_and_bad_lines_fail_alone(
    api: Api, worker: Worker, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an upload slot and an uploaded file with one malformed line and a trailing blank line
    job_id = api.request("POST", "/jobs/uploads").body["job_id"]
    body = b'{"id": 0}\n{"id": 1}\n{broken\n{"id": 3}\n\n{"id": 4}\n\n'
    aws.s3.put_object(Bucket=BUCKET, Key=f"jobs/{job_id}/upload.ndjson", Body=body)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    # WHEN the S3 notification arrives and the queue drains
    assert worker.deliver(upload_event(job_id, now)) == {"batchItemFailures": []}
    worker.drain()
    # THEN the upload was counted (5 records) and the malformed line is a failed record
    job = api.get(job_id).body
    assert job["total_records"] == 5
    assert (job["succeeded_records"], job["failed_records"]) == (4, 1)
    assert job["status"] == "failed"  # 20 % failed > 10 % tolerated
    assert job["errors"][0]["record_index"] == 2
    report = aws.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/errors.ndjson")["Body"].read().decode()
    assert [json.loads(line)["record_index"] for line in report.splitlines()] == [2]


def test_upload_after_expiry_ends_expired(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN an upload slot whose landing deadline (expires_at and its margin) has passed
    job_id = api.request("POST", "/jobs/uploads").body["job_id"]
    state = aws.state(job_id)
    late = model.now() - timedelta(seconds=model.UPLOAD_LANDING_MARGIN_SECONDS + 5)
    aws.put_json(f"jobs/{job_id}/state.json", {**state, "expires_at": model.isoformat(late)})
    # WHEN the object lands (S3's LastModified is now) and is announced
    aws.s3.put_object(Bucket=BUCKET, Key=f"jobs/{job_id}/upload.ndjson", Body=b'{"a": 1}\n')
    worker.deliver(upload_event(job_id))
    # THEN the job ended expired and nothing was queued
    state = aws.state(job_id)
    assert state["status"] == "expired" and state["finished_at"]
    assert aws.queue_depth() == 0


def test_schema_validation_and_processor(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a JSON Schema in the bucket and a record processor
    schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
    aws.put_json("config/record-schema.json", schema)
    monkeypatch.setenv("RECORD_SCHEMA_KEY", "config/record-schema.json")
    monkeypatch.setenv("RECORD_PROCESSOR", "tests.unit.sample_processors:tag")
    monkeypatch.setenv("TOLERATED_FAILURE_PERCENT", "60")
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    rows = [{"id": 0}, {"id": "x"}, {"name": "no id"}, {"id": 3, "explode": True}, {"id": 4}]
    job_id = api.submit_json({"records": rows}).body["job_id"]
    # WHEN the job runs
    worker.drain()
    # THEN invalid records failed with the schema message, the processor's failure too,
    # and stored records are the processor's output
    job = api.get(job_id).body
    assert job["status"] == "completed_with_errors"  # 3 of 5 failed: 60 % <= 60 %
    messages = {e["record_index"]: e["message"] for e in job["errors"]}
    assert set(messages) == {1, 2, 3}
    assert messages[1].startswith("schema:") and "integer" in messages[1]
    assert "cannot process" in messages[3]
    stored = {line["record_index"]: line["record"] for line in result_lines(aws, job_id)}
    assert stored == {0: {"id": 0, "processed": True}, 4: {"id": 4, "processed": True}}


def test_a_chunk_writes_no_state_per_record_and_progress_stays_live(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a job of two chunks of 10 records
    monkeypatch.setenv("CHUNK_SIZE", "10")
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    job_id = api.submit_json({"records": records(20)}).body["job_id"]
    engine = worker.module.runtime().engine
    engine.split(job_id)
    message = next(m for m in chunk_messages(aws) if m["kind"] == "chunk")
    writes: list[str] = []
    client = engine.store.s3

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(client, name)

        def put_object(self, **kwargs: object) -> object:
            key = str(kwargs["Key"])
            if "/state" in key:
                writes.append(key.rsplit("/", 1)[-1])
            return client.put_object(**kwargs)

    engine.store.s3 = Spy()
    # WHEN its first chunk runs
    engine.process_chunk(ChunkRef.parse(message))
    # THEN the state was written once (the job's start), never per record or slice; the chunk's
    # counts went to its accounting segment, which does not roll up before its last chunk
    assert writes == ["state.json", "seg-000000.json"]
    engine.store.s3 = client
    state = aws.state(job_id)
    assert (state["status"], state["succeeded_records"]) == ("running", 0)
    # AND the status function sums the open segment: progress is live
    job = api.get(job_id).body
    assert (job["processed_records"], job["succeeded_records"], job["progress"]) == (10, 10, 0.5)


def test_tolerated_failure_percent_is_inclusive(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 10 % tolerated and exactly 1 of 10 records failing
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    body = "\n".join(json.dumps(r) for r in records(9)) + '\n{"x": 1}\n'
    job_id = api.request("POST", "/jobs", body, {"Content-Type": "application/x-ndjson"}).body["job_id"]
    aws.s3.put_object(
        Bucket=BUCKET,
        Key=f"jobs/{job_id}/input.ndjson",
        Body=aws.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/input.ndjson")["Body"]
        .read()
        .replace(b'{"x":1}', b"[0]"),
    )
    # WHEN it runs
    worker.drain()
    # THEN 10 % <= 10 % is completed_with_errors
    assert aws.state(job_id)["status"] == "completed_with_errors"


def test_fifo_stops_at_first_failure(aws: Aws, monkeypatch: pytest.MonkeyPatch, api: Api) -> None:
    # GIVEN a FIFO worker and a batch whose second message fails
    monkeypatch.setenv("QUEUE_FIFO", "true")
    worker = Worker(load_handler("worker"), aws)
    job_id = api.submit_json({"records": records(2)}).body["job_id"]
    batch = [
        sqs_record(load_event("s3_test_event.json")),
        sqs_record("broken"),
        sqs_record({"kind": "split", "job_id": job_id}),
    ]
    # WHEN handled
    result = worker.invoke(batch)
    # THEN the failure and everything after it are reported, and the split did not run
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [
        batch[1]["messageId"],
        batch[2]["messageId"],
    ]
    assert aws.state(job_id)["chunks_total"] is None


def test_fifo_queue_messages_carry_group_and_dedup_ids(monkeypatch: pytest.MonkeyPatch, aws: Aws) -> None:
    # GIVEN a FIFO queue configuration
    monkeypatch.setenv("QUEUE_FIFO", "true")
    from async_jobs.messaging import JobQueue

    sent: list[dict] = []

    class Fake:
        def send_message(self, **kw):
            sent.append(kw)

        def send_message_batch(self, **kw):
            sent.extend(kw["Entries"])
            return {"Successful": [], "Failed": []}

    queue = JobQueue(Fake(), "url", fifo=True)
    # WHEN split and chunk messages are sent
    queue.send_split("j", owner="arn:aws:iam::123456789012:user/alice")
    queue.send_chunks("j", [{"chunk": 0}, {"chunk": 1}], owner="arn:aws:iam::123456789012:user/alice")
    # THEN every message is grouped by job and deduplicated by kind and chunk
    assert [(m["MessageGroupId"], m["MessageDeduplicationId"]) for m in sent] == [
        ("j", "j:split:"),
        ("j", "j:chunk:0"),
        ("j", "j:chunk:1"),
    ]


def test_send_message_batch_retries_failed_entries() -> None:
    # GIVEN SQS failing one entry of the first batch
    from async_jobs.messaging import JobQueue

    calls: list[list[str]] = []

    class Flaky:
        def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3 names
            calls.append([e["Id"] for e in Entries])
            failed = [{"Id": "3", "Code": "InternalError", "SenderFault": False}] if len(calls) == 1 else []
            return {"Failed": failed}

    # WHEN 12 chunk messages are sent
    JobQueue(Flaky(), "url", sleep=lambda _: None).send_chunks(
        "j", [{"chunk": i} for i in range(12)], owner=None
    )
    # THEN batches of 10, the failed entry retried alone
    assert calls == [[str(i) for i in range(10)], ["3"], ["0", "1"]]
