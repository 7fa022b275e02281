"""Fair sharing: every message of a job carries its caller as message group (SQS fair queues).

Submit's split, the worker's chunks and follow-up splits, a retry's split and its re-run chunks:
each is read back from the (moto) queue as SQS delivers it, with its MessageGroupId.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from .conftest import ALICE, BOB, Api, Aws, Worker, load_handler, records
from .test_retry import dead_lettered_job, retry


def digest(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()


def take(aws: Aws) -> list[dict[str, Any]]:
    """Every message on the queue now, with its group, removed from the queue."""
    taken = []
    while True:
        got = aws.sqs.receive_message(
            QueueUrl=aws.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return taken
        for message in got:
            taken.append(
                {**json.loads(message["Body"]), "group": message["Attributes"].get("MessageGroupId")}
            )
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])


def run_all(aws: Aws, worker: Worker) -> list[dict[str, Any]]:
    """Deliver every message to the worker until the queue is empty; each message as received."""
    seen: list[dict[str, Any]] = []
    while batch := take(aws):
        seen += batch
        for message in batch:
            body = {k: v for k, v in message.items() if k != "group"}
            assert worker.deliver(body) == {"batchItemFailures": []}
    return seen


def test_split_chunks_and_follow_up_splits_carry_the_callers_group(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one-record chunks and a split that dispatches at most 10 of them a delivery
    monkeypatch.setenv("CHUNK_SIZE", "1")
    worker = Worker(load_handler("worker"), aws)
    engine = worker.module.runtime().engine
    engine.settings = replace(engine.settings, dispatch_slice=10)
    # WHEN alice submits 25 records and bob 3, and the worker runs every message
    alice_job = api.submit_json({"records": records(25)}).body["job_id"]
    bob_job = api.submit_json({"records": records(3)}, caller=BOB).body["job_id"]
    seen = run_all(aws, worker)
    # THEN every message of a job (first split, 2 follow-up splits, each chunk) is in its caller's
    # group: sha256 of the principal, never the principal itself
    groups: dict[tuple[str, str], set[str | None]] = {}
    for message in seen:
        groups.setdefault((message["job_id"], message["kind"]), set()).add(message["group"])
    assert groups == {
        (alice_job, "split"): {digest(ALICE)},
        (alice_job, "chunk"): {digest(ALICE)},
        (bob_job, "split"): {digest(BOB)},
        (bob_job, "chunk"): {digest(BOB)},
    }
    assert sum(1 for m in seen if m["job_id"] == alice_job and m["kind"] == "split") == 3
    assert sum(1 for m in seen if m["job_id"] == alice_job and m["kind"] == "chunk") == 25
    assert not any("alice" in str(m["group"]) or "arn:" in str(m["group"]) for m in seen)
    assert api.get(alice_job).body["status"] == "succeeded"


def test_a_retry_and_its_rerun_chunks_carry_the_callers_group(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN alice's job failed because one chunk was dead-lettered
    api, worker, job_id = dead_lettered_job(aws, monkeypatch)
    # WHEN she retries it and the worker runs the retry's messages
    assert retry(api, job_id).status == 202
    seen = run_all(aws, worker)
    # THEN the retry's split and the chunk it re-runs are in alice's group
    assert [(m["kind"], m.get("chunk"), m["group"]) for m in seen] == [
        ("split", None, digest(ALICE)),
        ("chunk", 1, digest(ALICE)),
    ]
    assert api.get(job_id).body["status"] == "succeeded"


def test_without_authorization_each_job_is_its_own_group(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an API without authorization: there is no caller to tell apart
    monkeypatch.setenv("AUTHORIZATION", "NONE")
    api = Api(caller=None, submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    # WHEN two jobs are submitted and run
    first = api.submit_json({"records": records(5)}).body["job_id"]
    second = api.submit_json({"records": records(5)}).body["job_id"]
    seen = run_all(aws, worker)
    # THEN each job's messages are a group of their own: a big job still does not hold back a
    # small one
    assert {(m["job_id"], m["group"]) for m in seen} == {(first, first), (second, second)}


def test_fifo_messages_keep_the_job_as_group() -> None:
    # GIVEN a FIFO queue: the group orders a job's messages, so it stays the job
    from async_jobs.messaging import JobQueue

    sent: list[dict[str, Any]] = []

    class Fake:
        def send_message(self, **kw: Any) -> None:
            sent.append(kw)

        def send_message_batch(self, **kw: Any) -> dict[str, Any]:
            sent.extend(kw["Entries"])
            return {"Failed": []}

    queue = JobQueue(Fake(), "url", fifo=True)
    # WHEN a retry's split and chunks are sent for a caller
    queue.send_retry("j", 2, owner=ALICE)
    queue.send_chunks("j", [{"chunk": 4}], owner=ALICE, attempt=2)
    # THEN grouped by job, deduplicated per attempt; the caller appears nowhere
    assert [(m["MessageGroupId"], m["MessageDeduplicationId"]) for m in sent] == [
        ("j", "j:retry::a2"),
        ("j", "j:chunk:4:a2"),
    ]
