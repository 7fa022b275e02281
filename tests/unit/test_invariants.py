"""One named test per invariant of the engine (DESIGN.md, Invariants)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from async_jobs import model
from async_jobs.chunks import ChunkMarker, ChunkRef
from async_jobs_local.moto_patches import atomic_conditional_writes

from .conftest import BUCKET, Api, Aws, Worker, load_handler, records, result_lines


class Crash(Exception):
    """A worker dying at a given point."""


def done(state: dict[str, Any]) -> list[int]:
    """The chunk numbers the state has accounted for (stored as ranges)."""
    return model.chunk_numbers(model.ranges(state["done"]))


def split(worker: Worker, aws: Aws, job_id: str) -> list[dict[str, Any]]:
    """Run the split step and take its chunk messages off the queue."""
    worker.module.runtime().engine.split(job_id)
    messages: list[dict[str, Any]] = []
    while got := aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"])
            body = json.loads(m["Body"])
            if body["kind"] == "chunk":
                messages.append(body)
    return sorted(messages, key=lambda m: m["chunk"])


def submit(api: Api, count: int) -> str:
    reply = api.submit_json({"records": records(count)})
    assert reply.status == 202, reply.body
    return str(reply.body["job_id"])


def report_lines(aws: Aws, job_id: str) -> list[dict[str, Any]]:
    keys = aws.keys(f"jobs/{job_id}/errors.ndjson")
    if not keys:
        return []
    body = aws.s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_same_chunk_delivered_twice_counts_once(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a job of two chunks (8 records, CHUNK_SIZE 4)
    job_id = submit(api, 8)
    first, second = split(worker, aws, job_id)
    # WHEN the first chunk is delivered twice
    for message in (first, first):
        assert worker.deliver(message) == {"batchItemFailures": []}
    # THEN its 4 records are counted once
    state = aws.counted(job_id)
    assert (state["status"], state["succeeded_records"], state["done"]) == ("running", 4, [0])
    # AND after the second chunk every record is counted once and stored once
    assert worker.deliver(second) == {"batchItemFailures": []}
    state = aws.state(job_id)
    assert (state["status"], state["succeeded_records"], state["failed_records"]) == ("succeeded", 8, 0)
    assert done(state) == [0, 1]
    assert sorted(line["record_index"] for line in result_lines(aws, job_id)) == list(range(8))


def test_crash_after_sink_before_marker(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a worker that dies after the sink write, before the chunk marker
    job_id = submit(api, 8)
    first, second = split(worker, aws, job_id)
    store = worker.module.runtime().engine.store
    create_json = store.create_json
    crashes = []

    def dying(key: str, data: Any) -> bool:
        if "/chunks/" in key and not crashes:
            crashes.append(key)
            raise Crash(key)
        return bool(create_json(key, data))

    store.create_json = dying
    # WHEN the chunk fails once, is redelivered, and the job goes on
    assert worker.deliver(first)["batchItemFailures"]
    assert aws.state(job_id)["succeeded_records"] == 0
    for message in (first, second):
        assert worker.deliver(message, receive_count=2) == {"batchItemFailures": []}
    # THEN the records of the crashed chunk are counted once and held once by the sink
    state = aws.state(job_id)
    assert (state["status"], state["succeeded_records"]) == ("succeeded", 8)
    indexes = [line["record_index"] for line in result_lines(aws, job_id)]
    assert sorted(indexes) == list(range(8))


def test_crash_after_marker_before_state(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a worker that dies after writing the chunk marker, before the job summary
    job_id = submit(api, 8)
    first, second = split(worker, aws, job_id)
    engine = worker.module.runtime().engine
    account = engine.account_markers
    crashes = []

    def dying(job: str, markers: list[ChunkMarker], state: Any = None) -> dict[str, Any]:
        if not crashes:
            crashes.append(markers[0].chunk)
            raise Crash(markers[0].chunk)
        return dict(account(job, markers, state))

    engine.account_markers = dying
    # WHEN the chunk fails once (marker written, summary not), is redelivered, and the job goes on
    assert worker.deliver(first)["batchItemFailures"]
    assert aws.keys(f"jobs/{job_id}/chunks/") == [
        f"jobs/{job_id}/chunks/0.{end}" for end in ("claim", "json")
    ]
    assert aws.counted(job_id)["done"] == []
    for message in (first, second):
        assert worker.deliver(message, receive_count=2) == {"batchItemFailures": []}
    # THEN the existing marker's counts are accounted exactly once and the job ends
    state = aws.state(job_id)
    assert (state["status"], state["succeeded_records"], done(state)) == ("succeeded", 8, [0, 1])


def test_racing_deliveries_agree_on_the_first_marker(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a processor whose answer for record 1 changes between deliveries (fails, then succeeds)
    from . import sample_processors

    sample_processors.calls.clear()
    monkeypatch.setenv("RECORD_PROCESSOR", "tests.unit.sample_processors:flaky")
    monkeypatch.setenv("TOLERATED_FAILURE_PERCENT", "50")
    api, worker = Api(submit=load_handler("submit")), Worker(load_handler("worker"), aws)
    job_id = submit(api, 8)
    first, second = split(worker, aws, job_id)
    engine = worker.module.runtime().engine
    account = engine.account_markers
    step = {"n": 0}

    def interleaved(job: str, markers: list[ChunkMarker], state: Any = None) -> dict[str, Any]:
        step["n"] += 1
        if step["n"] == 1:
            # delivery A wrote its marker; delivery B of the same chunk runs now and dies
            # after its own marker write, then A updates the summary
            with pytest.raises(Crash):
                engine.process_chunk(ChunkRef.parse(first))
        elif step["n"] == 2:
            raise Crash("B")
        return dict(account(job, markers, state))

    engine.account_markers = interleaved
    # WHEN both deliveries of chunk 0 race, and chunk 1 runs
    engine.process_chunk(ChunkRef.parse(first))
    engine.account_markers = account
    engine.process_chunk(ChunkRef.parse(second))
    # THEN the summary, the marker and errors.ndjson all tell the first delivery's story
    state = aws.state(job_id)
    marker = aws.get_json(f"jobs/{job_id}/chunks/0.json")
    assert (state["succeeded_records"], state["failed_records"]) == (7, 1)
    assert (marker["succeeded"], marker["failed"]) == (3, 1)
    assert [line["record_index"] for line in report_lines(aws, job_id)] == [1]
    assert state["errors"] == [{"record_index": 1, "message": "processor: ValueError: transient refusal"}]


def test_concurrent_chunk_completions_lose_no_update(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, atomic_s3_reads: None
) -> None:
    # GIVEN a job of 60 one-record chunks and S3 conditional writes as atomic as on AWS
    monkeypatch.setenv("CHUNK_SIZE", "1")
    api, worker = Api(submit=load_handler("submit")), Worker(load_handler("worker"), aws)
    job_id = submit(api, 60)
    messages = split(worker, aws, job_id)
    assert len(messages) == 60
    engine = worker.module.runtime().engine
    barrier = threading.Barrier(len(messages))
    errors: list[BaseException] = []

    def run(message: dict[str, Any]) -> None:
        try:
            barrier.wait()
            engine.process_chunk(ChunkRef.parse(message))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # WHEN 60 threads complete their chunks at the same moment
    with atomic_conditional_writes():
        threads = [threading.Thread(target=run, args=(m,)) for m in messages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # THEN no update was lost: every chunk and record is in the summary once
    assert errors == []
    state = aws.state(job_id)
    assert state["done"] == [[0, 60]]  # one range, however many chunks
    assert (state["status"], state["succeeded_records"]) == ("succeeded", 60)


def test_poison_chunk_exhausting_receives_still_ends_job(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a chunk that fails on every receive (MAX_RECEIVE_COUNT 3, the queue's redrive too)
    monkeypatch.setenv("RECORD_PROCESSOR", "tests.unit.sample_processors:poison")
    api, worker = (
        Api(submit=load_handler("submit"), status=load_handler("status")),
        Worker(load_handler("worker"), aws),
    )
    rows = records(8)
    rows[5]["poison"] = True
    job_id = api.submit_json({"records": rows}).body["job_id"]
    # WHEN the queue is drained (the failing message is retried until SQS moves it to the DLQ)
    worker.drain()
    # THEN the job ended with that chunk's records failed, reported, and the message in the DLQ
    job = api.get(job_id).body
    assert job["status"] == "failed"  # 4 of 8 failed > 10 % tolerated
    assert (job["processed_records"], job["succeeded_records"], job["failed_records"]) == (8, 4, 4)
    assert [line["record_index"] for line in report_lines(aws, job_id)] == [4, 5, 6, 7]
    assert "failed after 3 attempts" in job["errors"][0]["message"]
    assert aws.queue_depth(aws.dlq_url) == 1


def test_failing_split_on_last_receive_fails_the_job(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a job whose input cannot be read
    job_id = submit(api, 3)
    aws.s3.delete_object(Bucket=BUCKET, Key=f"jobs/{job_id}/input.ndjson")
    # WHEN the split fails on every receive
    worker.drain()
    # THEN the job is failed instead of queued for ever
    state = aws.state(job_id)
    assert (state["status"], state["failed_records"]) == ("failed", 3)
    assert aws.queue_depth(aws.dlq_url) == 1


def test_cancel_mid_job(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a job of three chunks whose first chunk has run
    job_id = submit(api, 12)
    first, *rest = split(worker, aws, job_id)
    worker.deliver(first)
    assert aws.state(job_id)["status"] == "running"
    # WHEN it is cancelled and the remaining chunks arrive
    cancelling = api.delete(job_id)
    assert (cancelling.status, cancelling.body["status"]) == (202, "cancelling")
    for message in rest:
        assert worker.deliver(message) == {"batchItemFailures": []}
    # THEN they were not run, and the job is cancelled with only the first chunk's records
    job = api.get(job_id).body
    assert job["status"] == "cancelled" and job["finished_at"]
    assert (job["processed_records"], job["succeeded_records"]) == (4, 4)
    assert aws.keys(f"jobs/{job_id}/results/") == [f"jobs/{job_id}/results/chunk-000000.ndjson"]


def _count_calls(api: Api, count: int, headers: dict[str, str] | None = None) -> list[str]:
    runtime = api.submit.runtime()
    calls: list[str] = []

    def record(**kwargs: Any) -> None:
        calls.append(kwargs["model"].name)

    clients = (runtime.service.store.s3, runtime.service.queue.sqs)
    for client in clients:
        client.meta.events.register("before-call", record)
    try:
        assert api.submit_json({"records": records(count)}, headers).status == 202
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", record)
    return calls


def test_submit_aws_calls_constant(api: Api) -> None:
    # GIVEN the submit handler, warmed up
    _count_calls(api, 1)
    # WHEN jobs of 10 and 10,000 records are submitted, with and without an Idempotency-Key
    small, large = _count_calls(api, 10), _count_calls(api, 10_000)
    keyed_small = _count_calls(api, 10, {"Idempotency-Key": "a"})
    keyed_large = _count_calls(api, 10_000, {"Idempotency-Key": "b"})
    # THEN the AWS calls are the same few, whatever the size
    # (input, index entry, state, split)
    assert small == large == ["PutObject", "PutObject", "PutObject", "SendMessage"]
    # (key lookup, claim, input, index entry, state, split, commit)
    assert (
        keyed_small
        == keyed_large
        == [
            "GetObject",
            "PutObject",
            "PutObject",
            "PutObject",
            "PutObject",
            "SendMessage",
            "PutObject",
        ]
    )


def test_10000_records_every_message_delivered_twice(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a job of 10,000 records in chunks of 500
    monkeypatch.setenv("CHUNK_SIZE", "500")
    api, worker = (
        Api(submit=load_handler("submit"), status=load_handler("status")),
        Worker(load_handler("worker"), aws),
    )
    job_id = submit(api, 10_000)
    # WHEN every message (split and chunks) is delivered twice by SQS
    handled = worker.drain(twice=True)
    # THEN each of the 21 messages was handled twice, the job succeeded and the sink holds
    # every record exactly once
    assert handled == 42 and worker.failures == 0
    job = api.get(job_id).body
    assert job["status"] == "succeeded"
    assert (job["processed_records"], job["succeeded_records"], job["failed_records"]) == (10_000, 10_000, 0)
    indexes = [line["record_index"] for line in result_lines(aws, job_id)]
    assert len(indexes) == 10_000 and sorted(indexes) == list(range(10_000))
