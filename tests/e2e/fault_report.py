"""What the fault run says about a job that has not ended: enough to tell late from stuck.

For each such job: its status and counts as the API answers them, its chunk markers in the state
bucket, each of its messages still in the work queue or the dead-letter queue (kind, chunk,
receive count, seconds until it is visible again) read from the moto server this process runs,
and the journal of what the fault injector did to its deliveries and which of them failed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from async_jobs_local import JobsClient, LocalDeployment

from .conftest import s3_keys


@dataclass(frozen=True)
class QueuedMessage:
    """One message of a job in a queue, as the queue holds it now."""

    queue: str
    kind: str
    chunk: int | None
    receive_count: int
    visible_in: float  # seconds until it can be received again (0: now)

    def __str__(self) -> str:
        chunk = "" if self.chunk is None else f" {self.chunk}"
        return (
            f"{self.queue}:{self.kind}{chunk} received {self.receive_count}x, "
            f"visible in {max(0.0, self.visible_in):.0f}s"
        )


def queued_messages(stack: LocalDeployment, queue_url: str, job_id: str) -> list[QueuedMessage]:
    """The job's messages in the queue (in flight or waiting), from moto's in-process backend."""
    from moto.sqs.models import sqs_backends  # noqa: PLC0415 - the server runs in this process

    _, account, name = urlparse(queue_url).path.split("/")[:3]
    queue = sqs_backends[account][stack.region].queues[name]
    now_ms = time.time() * 1000
    found = []
    for message in list(queue._messages):  # noqa: SLF001 - moto keeps no public view of in-flight ones
        try:
            body = json.loads(message.body)
        except ValueError:
            continue
        if not isinstance(body, dict) or body.get("job_id") != job_id:
            continue
        visible_at = max(float(message.visible_at), float(message.delayed_until))
        found.append(
            QueuedMessage(
                queue=name,
                kind=str(body.get("kind")),
                chunk=body.get("chunk") if isinstance(body.get("chunk"), int) else None,
                receive_count=int(message.approximate_receive_count),
                visible_in=(visible_at - now_ms) / 1000,
            )
        )
    return found


def describe(stack: LocalDeployment, client: JobsClient, job_id: str, submitted_at: float) -> str:
    """A few lines on one job: where it stands, what is queued for it, what hit its deliveries."""
    job: dict[str, Any] = client.get(job_id).json()
    markers = Counter(key.rsplit(".", 1)[-1] for key in s3_keys(stack, f"jobs/{job_id}/chunks/"))
    queued = [
        message
        for url in (stack.outputs["queue_url"], stack.outputs["dlq_url"])
        for message in queued_messages(stack, str(url), job_id)
    ]
    assert stack.faults is not None
    journal = stack.faults.journal(job_id)
    lines = [
        f"job {job_id}: {job.get('status')}, {job.get('processed_records')}/{job.get('total_records')} "
        f"processed ({job.get('succeeded_records')} succeeded, {job.get('failed_records')} failed), "
        f"chunk markers {dict(sorted(markers.items()))}",
        "  queued: " + ("; ".join(str(message) for message in queued) or "nothing"),
        "  deliveries: "
        + (
            "; ".join(
                f"+{entry.at - submitted_at:.0f}s {entry.what} {entry.kind}"
                + ("" if entry.chunk is None else f" {entry.chunk}")
                + f" (receive {entry.receive_count})"
                for entry in journal
            )
            or "nothing injected, nothing failed"
        ),
    ]
    return "\n".join(lines)
