"""End-to-end throughput (async vs sync) under concurrent clients, and worker scaling.

Throughput is completed records per second: from the first request to the last job's
``finished_at`` (async) or the last response (sync). Worker scaling runs one job at each
event-source concurrency against a sink slowed to a realistic write latency (a local-stack
latency rule on the sink's ``PutObject`` calls), efficiency = throughput(n) / (n x throughput(1)).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from async_jobs_local import JobsClient, LocalDeployment

from .stats import ratio
from .workload import body, job_state, post, wait_terminal

THROTTLED = 429


def _finished(stack: LocalDeployment, job_ids: list[str]) -> float:
    moments = [job_state(stack, job)["finished_at"] for job in job_ids]
    return max(datetime.fromisoformat(m.replace("Z", "+00:00")).timestamp() for m in moments)


def _client_run(client: JobsClient, path: str, payload: bytes, requests: int, ok: int) -> dict[str, Any]:
    done, retries, failed, ids, last = 0, 0, 0, [], 0.0
    for _ in range(requests):
        while True:
            status, _, document = post(client, path, payload)
            if status == THROTTLED:  # the function is at its concurrency limit: back off, retry
                retries += 1
                time.sleep(0.5)
                continue
            break
        last = time.time()
        if status == ok:
            done += 1
            if isinstance(document, dict) and "job_id" in document:
                ids.append(document["job_id"])
        else:
            failed += 1
    return {"done": done, "retries": retries, "failed": failed, "ids": ids, "last": last}


def clients_run(
    stack: LocalDeployment, design: str, clients: int, requests: int, records: int
) -> dict[str, Any]:
    path, ok = ("/jobs", 202) if design == "async" else ("/sync/jobs", 200)
    route = stack.gateway.api.match("POST", path)[0] if stack.gateway else None
    if route is not None:  # cold starts are measured on their own: both designs start warm
        function_pool = stack.pools[route.function]
        function_pool.warm(min(clients, function_pool.max_size))
    payload = body(records)
    client = JobsClient(stack.stage_url, timeout=120)
    started = time.time()
    with ThreadPoolExecutor(clients) as pool:
        runs = list(pool.map(lambda _: _client_run(client, path, payload, requests, ok), range(clients)))
    ids = [job for run in runs for job in run["ids"]]
    if design == "async":
        wait_terminal(stack, ids, timeout=300)
        ended = _finished(stack, ids)
    else:
        ended = max(run["last"] for run in runs)
    completed = sum(run["done"] for run in runs) * records
    seconds = max(ended - started, 1e-9)
    return {
        "clients": clients,
        "requests": clients * requests,
        "records_per_request": records,
        "completed_records": completed,
        "failed_requests": sum(run["failed"] for run in runs),
        "throttled_retries": sum(run["retries"] for run in runs),
        "seconds": seconds,
        "records_per_s": completed / seconds,
    }


def measure_clients(stack: LocalDeployment, plan: dict[str, Any]) -> dict[str, Any]:
    """``plan``: ``{"clients": [1, 8, 50], "requests": {"1": 6, ...}, "records": 100}``."""
    results: dict[str, Any] = {}
    for clients in plan["clients"]:
        entry: dict[str, Any] = {
            design: clients_run(stack, design, clients, plan["requests"][str(clients)], plan["records"])
            for design in ("async", "sync")
        }
        entry["async_over_sync"] = ratio(entry["async"]["records_per_s"], entry["sync"]["records_per_s"])
        results[str(clients)] = entry
    return results


def measure_scaling(stack: LocalDeployment, plan: dict[str, Any]) -> dict[str, Any]:
    """``plan``: ``{"concurrency": [1, 2, 4, 8, 16], "records": 6400, "sink_latency_s": 0.05}``."""
    assert stack.instruments is not None
    worker = stack.outputs["worker_function_name"]
    stack.instruments.set_latency(
        worker,
        [
            {
                "service": "s3",
                "operation": "PutObject",
                "key_contains": "/results/",
                "seconds": plan["sink_latency_s"],
            }
        ],
    )
    client = JobsClient(stack.stage_url, timeout=120)
    payload = body(plan["records"])
    results: dict[str, Any] = {
        "sink_latency_s": plan["sink_latency_s"],
        "records": plan["records"],
        "runs": {},
    }
    try:
        for concurrency in plan["concurrency"]:
            stack.set_worker_concurrency(concurrency)
            stack.pools[worker].warm(concurrency)  # cold starts are measured on their own
            started = time.time()
            status, _, document = post(client, "/jobs", payload)
            assert status == 202, (status, document)
            wait_terminal(stack, [document["job_id"]], timeout=600)
            seconds = _finished(stack, [document["job_id"]]) - started
            results["runs"][str(concurrency)] = {
                "seconds": seconds,
                "records_per_s": plan["records"] / seconds,
            }
    finally:
        stack.instruments.set_latency(worker, [])
    base = results["runs"][str(plan["concurrency"][0])]["records_per_s"]
    for concurrency, run in results["runs"].items():
        run["efficiency"] = run["records_per_s"] / (int(concurrency) * base)
    return results
