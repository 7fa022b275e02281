"""Records, request bodies and HTTP helpers shared by the measurements."""

from __future__ import annotations

import json
import time
from typing import Any

from async_jobs_local import JobsClient, LocalDeployment

TERMINAL = {"succeeded", "completed_with_errors", "failed", "cancelled", "expired"}
SYNC_FUNCTION = "async-jobs-bench-sync"  # the replaced design's handler, on POST /sync/jobs


def record(index: int) -> dict[str, Any]:
    """A customer-like record of about 100 bytes once serialised."""
    return {
        "id": index,
        "email": f"user{index:07d}@example.com",
        "name": f"Customer {index:07d}",
        "amount": round(index * 0.37 % 1000, 2),
        "tags": ["a", "b"],
    }


def body(count: int, *, compact: bool = False) -> bytes:
    """``{"records": [...]}``; ``compact``: ``{"id": n}`` records, so 100,000 fit one inline request."""
    records = [{"id": i} if compact else record(i) for i in range(count)]
    return json.dumps({"records": records}, separators=(",", ":")).encode()


def largest_inline(max_body_bytes: int) -> int:
    """The most records whose body stays under ``max_body_bytes`` (the largest inline job)."""
    per_record = len(body(1000)) / 1000
    count = int(max_body_bytes / per_record)
    while len(body(count)) >= max_body_bytes:
        count -= max(1, count // 1000)
    return count


def post(client: JobsClient, path: str, payload: bytes) -> tuple[int, float, Any]:
    """Status, seconds and JSON body of one POST."""
    started = time.perf_counter()
    response = client.request("POST", path, payload, {"Content-Type": "application/json"})
    elapsed = time.perf_counter() - started
    try:
        document = response.json()
    except ValueError:
        document = None
    return response.status, elapsed, document


def job_state(stack: LocalDeployment, job_id: str) -> dict[str, Any]:
    """The job's state object, read as the administrator (no status-function invocation counted)."""
    s3 = stack.client("s3")
    obj = s3.get_object(Bucket=stack.outputs["state_bucket_name"], Key=f"jobs/{job_id}/state.json")
    state: dict[str, Any] = json.loads(obj["Body"].read())
    return state


def wait_terminal(stack: LocalDeployment, job_ids: list[str], timeout: float) -> float:
    """Wait until every job ends; the monotonic time it was seen (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    pending = list(job_ids)
    while pending:
        pending = [job for job in pending if job_state(stack, job)["status"] not in TERMINAL]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} jobs still running after {timeout:.0f}s")
        time.sleep(0.1)
    return time.monotonic()


def drain(stack: LocalDeployment) -> int:
    """Drop what is queued (jobs submitted only to time them); how many (-1: purged, uncounted).

    SQS (and moto) allow one PurgeQueue a minute; within it, receive and delete batch by batch.
    The worker's mapping must be paused.
    """
    sqs, queue = stack.client("sqs"), stack.outputs["queue_url"]
    try:
        sqs.purge_queue(QueueUrl=queue)
        return -1  # all of it, uncounted
    except sqs.exceptions.PurgeQueueInProgress:
        pass  # purged less than a minute ago: take the messages one batch at a time
    dropped, empty = 0, 0
    while empty < 2:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            empty += 1
            continue
        empty = 0
        sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
        dropped += len(messages)
    return dropped
