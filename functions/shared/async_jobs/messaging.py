"""SQS adapter: the queue messages of the contract, batched by ten, failed entries retried."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from async_jobs.owners import owner_digest

BATCH = 10
# SendMessageBatch calls of one dispatch in flight at once: a slice of 1,000 chunks is 100 calls,
# which one after another would hold the first chunks' workers back by 100 round trips
SENDERS = 8


class SendFailed(Exception):
    """Some messages could not be sent after retries."""


def dedup_id(job_id: str, kind: str, chunk: int | None = None, attempt: int = 0) -> str:
    """FIFO deduplication id; a retry's messages carry their attempt, or SQS would drop them as
    duplicates of the first run's within its five-minute deduplication window."""
    base = f"{job_id}:{kind}:{'' if chunk is None else chunk}"
    return f"{base}:a{attempt}" if attempt else base


def fair_group(owner: str | None, job_id: str) -> str:
    """The tenant of a job's messages on a standard queue (SQS fair queues): its caller.

    When one caller builds a backlog, SQS delivers the other callers' messages first, so a
    million-record job does not hold back another caller's small one. The caller appears as
    sha256(owner), the scope of the job index, never as the principal itself. Without
    authorization there is no caller to tell apart: each job is its own tenant.
    """
    if owner is None:
        return job_id
    return owner_digest(owner)


class JobQueue:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        *,
        fifo: bool = False,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.fifo = fifo
        self.max_attempts = max_attempts
        self._sleep = sleep

    def _group_fields(
        self, job_id: str, owner: str | None, kind: str, chunk: int | None, attempt: int = 0
    ) -> dict[str, str]:
        # FIFO: the job is the group (its messages in order) and each message deduplicated;
        # standard: the caller is the group, which makes the queue share itself fairly.
        if not self.fifo:
            return {"MessageGroupId": fair_group(owner, job_id)}
        return {"MessageGroupId": job_id, "MessageDeduplicationId": dedup_id(job_id, kind, chunk, attempt)}

    def send_retry(self, job_id: str, attempt: int, *, owner: str | None) -> None:
        """A split message for a retry: the worker sends the chunks the retry re-runs."""
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps({"kind": "split", "job_id": job_id}),
            **self._group_fields(job_id, owner, "retry", None, attempt),
        )

    def send_split(self, job_id: str, *, owner: str | None, part: int | None = None) -> None:
        """The split message; `part` (the first chunk still to dispatch) marks a follow-up, which
        a FIFO queue must not take for a duplicate of the first split."""
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps({"kind": "split", "job_id": job_id}),
            **self._group_fields(job_id, owner, "split", part),
        )

    def send_notify(self, message: dict[str, Any], *, dedup: str, delay_seconds: int = 0) -> None:
        """A job's notifications (`notify.py`); a callback retry waits `delay_seconds` on a standard
        queue (a FIFO queue takes no per-message delay: the message says when it is due)."""
        job_id = str(message["job_id"])
        fields: dict[str, Any] = {}
        if self.fifo:
            fields = {"MessageGroupId": job_id, "MessageDeduplicationId": f"{job_id}:notify:{dedup}"}
        elif delay_seconds:
            fields = {"DelaySeconds": min(900, delay_seconds)}
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message), **fields)

    def send_expire(self, message: dict[str, Any], *, owner: str | None, delay_seconds: int) -> None:
        """An upload slot's expiry (`expiry.py`), delayed up to its `expires_at` on a standard
        queue; a FIFO queue takes no per-message delay, so there the worker finds it early and
        leaves it to come back after its visibility timeout."""
        job_id = str(message["job_id"])
        fields: dict[str, Any] = {"MessageGroupId": fair_group(owner, job_id)}
        if self.fifo:
            # its own group: a message waiting for its time never holds back the job's others
            fields = {"MessageGroupId": f"{job_id}:expire", "MessageDeduplicationId": f"{job_id}:expire"}
        elif delay_seconds:
            fields["DelaySeconds"] = min(900, delay_seconds)
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message), **fields)

    def send_chunks(
        self, job_id: str, messages: Sequence[dict[str, Any]], *, owner: str | None, attempt: int = 0
    ) -> None:
        """SendMessageBatch ten at a time, SENDERS calls at once; entries that fail are retried
        with backoff. Chunk messages carry no order: each is checked against the plan."""
        batches = [
            [
                {
                    "Id": str(index),
                    "MessageBody": json.dumps(message),
                    **self._group_fields(job_id, owner, "chunk", int(message["chunk"]), attempt),
                }
                for index, message in enumerate(messages[offset : offset + BATCH])
            ]
            for offset in range(0, len(messages), BATCH)
        ]
        if len(batches) <= 1:
            for entries in batches:
                self._send_batch(entries)
            return
        with ThreadPoolExecutor(max_workers=min(SENDERS, len(batches))) as pool:
            for future in [pool.submit(self._send_batch, entries) for entries in batches]:
                future.result()  # the first failure raises, after every call has ended

    def _send_batch(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        for attempt in range(self.max_attempts):
            response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=pending)
            failed_ids = {f["Id"] for f in response.get("Failed") or []}
            if not failed_ids:
                return
            pending = [entry for entry in pending if entry["Id"] in failed_ids]
            self._sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
        raise SendFailed(f"{len(pending)} messages not sent")
