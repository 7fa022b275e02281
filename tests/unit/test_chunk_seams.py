"""Chunk messages against the plan, the races around a chunk's start and a split's end, fail-closed
identity and what a failing chunk logs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from async_jobs.chunks import BadMessage, ChunkRef

from .conftest import (
    MAX_RECEIVE_COUNT,
    Api,
    Aws,
    Worker,
    load_event,
    load_handler,
    records,
    result_lines,
)
from .test_api_submit import assert_problem
from .test_invariants import done, split, submit


def forged(message: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**message, **changes}


def test_chunk_ref_parses_only_well_formed_messages() -> None:
    good = {
        "kind": "chunk",
        "job_id": "0b8f6c3e-6a9e-4f5e-9d1c-3d8c2c6f9a10",
        "chunk": 2,
        "byte_range": [10, 20],
        "first_record": 8,
        "count": 4,
    }
    ref = ChunkRef.parse(good)
    assert ref.to_message() == good and ChunkRef.parse(ref.to_message()) == ref
    for bad in (
        forged(good, chunk=True),
        forged(good, chunk="2"),
        forged(good, count=0),
        forged(good, first_record=-1),
        forged(good, byte_range=[20, 10]),
        forged(good, byte_range=[0, 1, 2]),
        forged(good, byte_range="0-10"),
        forged(good, job_id="../../idempotency"),
        forged(good, count=2.5),
        {k: v for k, v in good.items() if k != "count"},
    ):
        with pytest.raises(BadMessage):
            ChunkRef.parse(bad)


@pytest.mark.parametrize(
    "change",
    [
        {"chunk": 9},  # beyond the plan
        {"count": 8},  # counts records twice
        {"first_record": 0, "chunk": 1},  # another chunk's records
        {"byte_range": [0, 1]},  # other bytes
    ],
    ids=["beyond-plan", "count", "records", "bytes"],
)
def test_a_message_the_plan_does_not_hold_is_dropped_uncounted(
    change: dict[str, Any], api: Api, worker: Worker, aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a planned job of 8 records in two chunks
    job_id = submit(api, 8)
    first, second = split(worker, aws, job_id)
    # WHEN a forged message arrives (on its first and on its last receive)
    for receive in (1, MAX_RECEIVE_COUNT):
        assert worker.deliver(forged(first, **change), receive) == {"batchItemFailures": []}
    # THEN nothing was read, written or counted, and it was logged
    state = aws.state(job_id)
    assert (done(state), state["succeeded_records"], state["failed_records"]) == ([], 0, 0)
    assert result_lines(aws, job_id) == [] and aws.keys(f"jobs/{job_id}/chunks/") == []
    dropped = [r for r in caplog.records if "does not match the job's plan" in r.getMessage()]
    assert [(r.levelname, getattr(r, "job_id", None)) for r in dropped] == [("ERROR", job_id)] * 2
    # AND the real messages still finish the job
    for message in (first, second):
        worker.deliver(message)
    assert aws.state(job_id)["status"] == "succeeded"


def test_a_forged_message_cannot_finish_a_job_early(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a job of three chunks, one of them done
    job_id = submit(api, 12)
    first, second, third = split(worker, aws, job_id)
    worker.deliver(first)
    # WHEN messages claiming the other chunks' records arrive in every shape but the planned one
    worker.deliver(forged(first, chunk=1))
    worker.deliver(forged(second, count=8, byte_range=[second["byte_range"][0], third["byte_range"][1]]))
    # THEN the job is still running with only the first chunk's records
    state = aws.counted(job_id)
    assert (state["status"], state["succeeded_records"], state["done"]) == ("running", 4, [0])


def test_a_message_before_any_plan_or_for_no_job_is_dropped(api: Api, worker: Worker, aws: Aws) -> None:
    job_id = submit(api, 4)
    message = {
        "kind": "chunk",
        "job_id": job_id,
        "chunk": 0,
        "byte_range": [0, 10],
        "first_record": 0,
        "count": 4,
    }
    assert worker.deliver(message, MAX_RECEIVE_COUNT) == {"batchItemFailures": []}
    other = forged(message, job_id="0b8f6c3e-6a9e-4f5e-9d1c-3d8c2c6f9a10")
    assert worker.deliver(other, MAX_RECEIVE_COUNT) == {"batchItemFailures": []}
    state = aws.state(job_id)
    assert (state["chunks_total"], state["failed_records"], done(state)) == (None, 0, [])
    assert aws.keys(f"jobs/{job_id}/chunks/") == []


def test_malformed_chunk_messages_fail_without_counting(
    api: Api, worker: Worker, aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = submit(api, 4)
    (first,) = split(worker, aws, job_id)
    for bad in (forged(first, count=True), forged(first, chunk=-1), forged(first, byte_range=None)):
        assert worker.deliver(bad, MAX_RECEIVE_COUNT)["batchItemFailures"]
    assert done(aws.state(job_id)) == []
    unreadable = [r for r in caplog.records if r.getMessage() == "unreadable message"]
    assert [(r.levelname, getattr(r, "receive_count", None)) for r in unreadable] == [
        ("ERROR", MAX_RECEIVE_COUNT)
    ] * 3


def test_cancel_that_lands_before_the_chunk_claims_stops_the_chunk(
    api: Api, worker: Worker, aws: Aws
) -> None:
    # GIVEN a queued job whose chunk has read the state (still queued) and not yet claimed
    job_id = submit(api, 4)
    (message,) = split(worker, aws, job_id)
    store = worker.module.runtime().engine.store
    get_state = store.get_state
    replies = []

    def cancel_after_read(job: str) -> Any:
        found = get_state(job)
        if not replies:
            replies.append(api.delete(job_id))  # the race: cancel between read and claim
        return found

    store.get_state = cancel_after_read
    # WHEN the chunk goes on
    assert worker.deliver(message) == {"batchItemFailures": []}
    # THEN the cancel said `cancelled`, and the chunk wrote nothing to the sink
    assert (replies[0].status, replies[0].body["status"]) == (202, "cancelled")
    assert result_lines(aws, job_id) == []
    state = aws.state(job_id)
    assert (state["status"], state["succeeded_records"]) == ("cancelled", 0)


def test_cancel_after_the_claim_answers_cancelling_and_the_chunk_finishes(
    api: Api, worker: Worker, aws: Aws
) -> None:
    # GIVEN a chunk that has claimed the job's start and is writing to the sink
    job_id = submit(api, 4)
    (message,) = split(worker, aws, job_id)
    sink = worker.module.runtime().engine.sink
    write = sink.write
    replies = []

    def write_then_cancel(*args: Any) -> None:
        replies.append(api.delete(job_id))
        write(*args)

    sink.write = write_then_cancel
    # WHEN a cancel arrives mid-chunk
    worker.deliver(message)
    # THEN it answered `cancelling` (not `cancelled`), and the job ends cancelled with the chunk counted
    assert replies[0].body["status"] == "cancelling"
    state = aws.state(job_id)
    assert (state["status"], state["succeeded_records"]) == ("cancelled", 4)
    assert len(result_lines(aws, job_id)) == 4


def test_a_split_failing_after_dispatch_does_not_fail_the_job(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a split whose chunks are sent but whose dispatch record then fails every time
    job_id = submit(api, 8)
    store = worker.module.runtime().engine.store
    update_state = store.update_state

    def failing(job: str, mutate: Any) -> Any:
        if getattr(mutate, "__name__", "") == "dispatched":
            raise ConnectionError("state write lost")
        return update_state(job, mutate)

    store.update_state = failing
    # WHEN the split is delivered up to its last receive before any chunk runs
    for receive in range(1, MAX_RECEIVE_COUNT + 1):
        assert worker.deliver({"kind": "split", "job_id": job_id}, receive)["batchItemFailures"]
    # THEN the job is not failed, and its (duplicated) chunk messages end it, each record once
    assert aws.state(job_id)["status"] == "queued"
    worker.drain()
    state = aws.state(job_id)
    assert (state["status"], state["succeeded_records"], state["failed_records"]) == ("succeeded", 8, 0)
    assert sorted(line["record_index"] for line in result_lines(aws, job_id)) == list(range(8))


def test_a_split_that_never_dispatches_fails_its_chunks_once(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a split that plans, then cannot send its chunk messages on any receive
    job_id = submit(api, 8)
    queue = worker.module.runtime().engine.queue

    def broken(*args: Any) -> None:
        raise ConnectionError("queue unavailable")

    queue.send_chunks = broken
    worker.drain()
    # THEN the job ended failed with each record failed once, and no chunk ran
    state = aws.state(job_id)
    assert (state["status"], state["failed_records"], done(state)) == ("failed", 8, [0, 1])
    assert result_lines(aws, job_id) == []


IDENTITY_EVENTS = {
    "rest-no-user": ("rest", lambda e: e["requestContext"]["identity"].update(userArn=None)),
    "rest-no-identity": ("rest", lambda e: e["requestContext"].pop("identity")),
    "http-no-authorizer": ("http", lambda e: e["requestContext"].pop("authorizer", None)),
}


@pytest.mark.parametrize("authorization", ["AWS_IAM", "JWT", "COGNITO", "API_KEY"])
@pytest.mark.parametrize("case", sorted(IDENTITY_EVENTS))
def test_no_caller_identity_fails_closed(
    authorization: str, case: str, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an API that requires an identity, and events that carry none
    kind, strip = IDENTITY_EVENTS[case]
    monkeypatch.setenv("AUTHORIZATION", authorization)
    monkeypatch.setenv("API_TYPE", kind)
    api = Api(kind=kind, submit=load_handler("submit"), status=load_handler("status"))
    job_id = "0b8f6c3e-6a9e-4f5e-9d1c-3d8c2c6f9a10"
    for method, path, body in (
        ("POST", "/jobs", json.dumps({"records": records(1)})),
        ("POST", "/jobs/uploads", None),
        ("GET", f"/jobs/{job_id}", None),
        ("DELETE", f"/jobs/{job_id}", None),
    ):
        event = api.event(method, path, body, {"Content-Type": "application/json"})
        strip(event)
        # WHEN it is sent
        reply = api.send(event)
        # THEN 401 problem, and nothing stored
        assert_problem(reply, 401)
    assert aws.keys() == []


def test_a_failing_chunk_logs_warning_then_error(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a chunk that fails on every receive
    monkeypatch.setenv("RECORD_PROCESSOR", "tests.unit.sample_processors:poison")
    api = Api(submit=load_handler("submit"))
    worker = Worker(load_handler("worker"), aws)
    rows = records(4)
    rows[1]["poison"] = True
    job_id = api.submit_json({"records": rows}).body["job_id"]
    caplog.clear()
    # WHEN the queue drains (the message goes to the DLQ after MAX_RECEIVE_COUNT receives)
    worker.drain()
    failures = [r for r in caplog.records if r.getMessage().startswith("message failed")]
    # THEN WARNING on each receive but the last, ERROR on the last, each naming job, chunk, count, type
    assert [(r.levelname, getattr(r, "receive_count", None)) for r in failures] == [
        *(("WARNING", n) for n in range(1, MAX_RECEIVE_COUNT)),
        ("ERROR", MAX_RECEIVE_COUNT),
    ]
    for record in failures:
        fields = (
            getattr(record, "job_id", None),
            getattr(record, "chunk", None),
            getattr(record, "error_type", None),
        )
        assert fields == (job_id, 0, "RetryChunk")


def test_s3_test_event_and_other_notifications_are_ignored(worker: Worker, aws: Aws) -> None:
    event = load_event("s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = "elsewhere/file.ndjson"
    assert worker.deliver(event) == {"batchItemFailures": []}
    assert aws.keys() == [] and aws.queue_depth() == 0
