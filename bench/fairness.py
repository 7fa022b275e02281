"""Fair sharing: a small job's completion time alone, and next to a 100x bigger job of another caller.

Three runs against the bench stack, the worker capped at ``worker_concurrency`` pollers and the
sink slowed to a realistic write latency (as for worker scaling): the small job alone; the big job
and, once its chunks are queued, the small one, with the queue sharing itself fairly between groups
(SQS fair queues, the local stack's default); and the same with the queue delivering in sent order
(SQS before fair queues: ``fair_queues_suspended``). The bench stack has no authorization, so each
job is its own message group, as two callers' jobs are under authorization. A run's time is from
the small job's request to its ``finished_at``; then the big job is cancelled and the rest of its
messages dropped with the queue, so the next run starts with an empty queue.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from async_jobs_local import JobsClient, LocalDeployment
from async_jobs_local.moto_patches import fair_queues_suspended

from .workload import body, drain, job_state, post, wait_terminal


def _finished_at(stack: LocalDeployment, job_id: str) -> float:
    moment = str(job_state(stack, job_id)["finished_at"])
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def _submit(client: JobsClient, payload: bytes) -> tuple[str, float]:
    started = time.time()
    status, _, document = post(client, "/jobs", payload)
    assert status == 202, (status, document)
    return str(document["job_id"]), started


def _wait_dispatched(stack: LocalDeployment, job_id: str, timeout: float = 120) -> None:
    """Until every chunk message of the job is on the queue: a backlog for the small job to meet."""
    deadline = time.monotonic() + timeout
    while not job_state(stack, job_id).get("chunks_dispatched"):
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not dispatched after {timeout:.0f}s")
        time.sleep(0.05)


def _small_run(stack: LocalDeployment, client: JobsClient, small: bytes, big: bytes | None) -> dict[str, Any]:
    """The small job's seconds to its end; beside a big job: how far the big one got meanwhile."""
    big_id = _submit(client, big)[0] if big is not None else None
    if big_id is not None:
        _wait_dispatched(stack, big_id)
    small_id, started = _submit(client, small)
    wait_terminal(stack, [small_id], timeout=600)
    run: dict[str, Any] = {"seconds": _finished_at(stack, small_id) - started}
    if big_id is not None:
        state = job_state(stack, big_id)
        run["big_processed_records"] = int(state.get("succeeded_records") or 0) + int(
            state.get("failed_records") or 0
        )
        client.cancel(big_id)
        # the rest of the big job is not needed: dropped with the queue (skipping its cancelled
        # chunks one by one would take the next run's workers)
        stack.pause_event_source()
        drain(stack)
        stack.resume_event_source()
    return run


def measure(stack: LocalDeployment, plan: dict[str, Any]) -> dict[str, Any]:
    """``plan``: ``{"small_records": 300, "big_records": 30000, "worker_concurrency": 2,
    "sink_latency_s": 0.05}``."""
    assert stack.instruments is not None
    worker = stack.outputs["worker_function_name"]
    stack.set_worker_concurrency(plan["worker_concurrency"])
    stack.pools[worker].warm(plan["worker_concurrency"])  # cold starts are measured on their own
    route = stack.gateway.api.match("POST", "/jobs")[0] if stack.gateway else None
    if route is not None:
        stack.pools[route.function].warm(1)
    sink_latency = {
        "service": "s3",
        "operation": "PutObject",
        "key_contains": "/results/",
        "seconds": plan["sink_latency_s"],
    }
    stack.instruments.set_latency(worker, [sink_latency])
    client = JobsClient(stack.stage_url, timeout=120)
    small, big = body(plan["small_records"], compact=True), body(plan["big_records"], compact=True)
    runs: dict[str, tuple[bytes | None, AbstractContextManager[None]]] = {
        "alone": (None, nullcontext()),
        "beside_big_fair": (big, nullcontext()),
        "beside_big_unfair": (big, fair_queues_suspended()),
    }
    measured: dict[str, dict[str, Any]] = {}
    try:
        for name, (other, delivery) in runs.items():
            with delivery:
                measured[name] = _small_run(stack, client, small, other)
    finally:
        stack.instruments.set_latency(worker, [])
    return {
        "small_records": plan["small_records"],
        "big_records": plan["big_records"],
        "worker_concurrency": plan["worker_concurrency"],
        "sink_latency_s": plan["sink_latency_s"],
        "small_alone_s": measured["alone"]["seconds"],
        "small_beside_big_fair_s": measured["beside_big_fair"]["seconds"],
        "small_beside_big_unfair_s": measured["beside_big_unfair"]["seconds"],
        "big_processed_when_small_ended": {
            "fair": measured["beside_big_fair"]["big_processed_records"],
            "unfair": measured["beside_big_unfair"]["big_processed_records"],
        },
    }
