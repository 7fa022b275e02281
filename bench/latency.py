"""Submit latency, async (``POST /jobs``) vs sync (``POST /sync/jobs``), and the floor under it.

The worker's queue is paused while submissions are timed, so both designs get the same idle
machine; the queued jobs are dropped afterwards. The floor is what submit cannot avoid: its
three AWS calls (input PUT, conditional state PUT, SQS send) made with boto3 against the same
moto server, with bodies of the same size.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from async_jobs_local import JobsClient, LocalDeployment

from .stats import ratio, summary
from .workload import body, drain, largest_inline, post, record

SYNC_TIMEOUT_STATUS = 504


def floor(s3: Any, sqs: Any, *, bucket: str, queue: str, count: int, samples: int) -> dict[str, Any]:
    """Submit's three AWS calls for a job of ``count`` records, timed with boto3 alone."""
    ndjson = b"".join(json.dumps(record(i), separators=(",", ":")).encode() + b"\n" for i in range(count))
    times = []
    for _ in range(samples):
        key = f"jobs/{uuid.uuid4()}"
        started = time.perf_counter()
        s3.put_object(Bucket=bucket, Key=f"{key}/input.ndjson", Body=ndjson)
        s3.put_object(Bucket=bucket, Key=f"{key}/state.json", Body=b'{"status":"queued"}', IfNoneMatch="*")
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"kind": "floor", "key": key}))
        times.append(time.perf_counter() - started)
    return summary(times)


def measure(stack: LocalDeployment, samples: dict[str, dict[str, int]]) -> dict[str, Any]:
    """``samples``: ``{"async": {"10": 20, ...}, "sync": {...}, "floor": {...}}`` per size name."""
    max_body = int(stack.functions[stack.outputs["submit_function_name"]].environment["MAX_BODY_BYTES"])
    sizes = {"10": 10, "1000": 1000, "10000": 10000, "largest": largest_inline(max_body)}
    client = JobsClient(stack.stage_url, timeout=120)
    results: dict[str, Any] = {"sizes": {}, "max_body_bytes": max_body}
    stack.pause_event_source()
    try:
        for name, count in sizes.items():
            payload = body(count)
            entry: dict[str, Any] = {"records": count, "body_bytes": len(payload)}
            for design, path, ok in (("async", "/jobs", 202), ("sync", "/sync/jobs", 200)):
                times, statuses = [], []
                for _ in range(samples[design].get(name, 0)):
                    status, elapsed, _ = post(client, path, payload)
                    statuses.append(status)
                    times.append(elapsed)
                if not times:
                    continue
                entry[design] = summary(times)
                entry[design]["statuses"] = {str(s): statuses.count(s) for s in sorted(set(statuses))}
                # A sync request cut off by the 29 s integration timeout has no latency, only a bound.
                entry[design]["all_ok"] = all(s == ok for s in statuses)
                entry[design]["timed_out"] = statuses.count(SYNC_TIMEOUT_STATUS)
            if samples["floor"].get(name):
                submit = stack.outputs["submit_function_name"]
                entry["floor"] = floor(
                    stack.client("s3"),
                    # as submit sends: the queue policy refuses every other sender
                    stack.role_client(submit, "sqs"),
                    bucket=stack.outputs["state_bucket_name"],
                    queue=stack.outputs["queue_url"],
                    count=count,
                    samples=samples["floor"][name],
                )
                entry["overhead_over_aws_calls"] = ratio(
                    entry.get("async", {}).get("p50"), entry["floor"]["p50"]
                )
            if "async" in entry and "sync" in entry:
                entry["p95_async_over_sync"] = ratio(entry["async"]["p95"], entry["sync"]["p95"])
            results["sizes"][name] = entry
    finally:
        drain(stack)
        stack.resume_event_source()
    return results
