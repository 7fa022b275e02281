"""Contention on one job's state: chunk completions per second as workers are added.

Every chunk ends with a compare-and-swap of the job's one ``state.json`` (read, ``If-Match``
write, retry with jitter on 412). With S3 slowed to a realistic per-call latency by the local
stack, one 1,000-chunk job runs at each worker concurrency for a fixed window: completions per
second, lost races (412 answers to state writes) per completion, and the state reads and writes
each completion costs, counted inside the worker's process.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from async_jobs import model
from async_jobs_local import JobsClient, LocalDeployment

from .workload import body, drain, job_state, post


def _per(count: int, completions: float) -> float | None:
    return count / completions if completions else None


def _worker_requests(stack: LocalDeployment) -> Counter[str]:
    assert stack.instruments is not None
    snapshot = stack.instruments.snapshot()["requests"]
    return Counter(snapshot.get(stack.outputs["worker_function_name"], {}))


def measure(stack: LocalDeployment, plan: dict[str, Any]) -> dict[str, Any]:
    """``plan``: ``{"records": 100000, "chunk_records": 100, "concurrency": [...], "window_s": 10,
    "s3_latency_s": 0.025}``."""
    assert stack.instruments is not None
    worker = stack.outputs["worker_function_name"]
    client = JobsClient(stack.stage_url, timeout=120)
    results: dict[str, Any] = {key: plan[key] for key in ("records", "window_s", "s3_latency_s")}
    results["chunks"] = plan["records"] // plan["chunk_records"]
    results["runs"] = {}
    stack.set_worker_concurrency(1)
    stack.instruments.set_latency(worker, [{"service": "s3", "seconds": plan["s3_latency_s"]}])
    try:
        status, _, document = post(client, "/jobs", body(plan["records"], compact=True))
        assert status == 202, (status, document)
        job_id = document["job_id"]
        for concurrency in plan["concurrency"]:
            stack.pause_event_source()
            stack.pools[worker].warm(concurrency)
            stack.set_worker_concurrency(concurrency)
            time.sleep(min(2.0, plan["window_s"] / 4))  # pollers under way before the window opens
            before_requests = _worker_requests(stack)
            before = model.records_accounted(job_state(stack, job_id))
            started = time.monotonic()
            time.sleep(plan["window_s"])
            after = model.records_accounted(job_state(stack, job_id))
            seconds = time.monotonic() - started
            requests = _worker_requests(stack) - before_requests
            completions = (after - before) / plan["chunk_records"]
            results["runs"][str(concurrency)] = {
                "completions": completions,
                "completions_per_s": completions / seconds,
                "state_conflicts_per_completion": _per(requests["s3.PutObject@state!412"], completions),
                "state_reads_per_completion": _per(requests["s3.GetObject@state"], completions),
                "state_writes_per_completion": _per(requests["s3.PutObject@state"], completions),
                "s3_calls_per_completion": _per(
                    sum(n for name, n in requests.items() if name.startswith("s3.") and "!" not in name),
                    completions,
                ),
            }
            if after >= plan["records"]:
                break
    finally:
        stack.pause_event_source()
        drain(stack)  # the rest of the job is not needed: dropped with the queue
        stack.instruments.set_latency(worker, [])
        stack.resume_event_source()
    return results
