"""The design layer's measurements: worker scaling on one job, AWS requests and dollars per
1,000 records at the module's defaults, submit's overhead over its own AWS calls, and a chaos
run. Every point records the CPU-seconds this process spent beside its wall time; a point that
used more than half the machine's CPUs is marked invalid (it would measure this machine)."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .harness import Chaos, EventSourceMapping, Harness, module_defaults, s3_notification

PRICES = Path(__file__).resolve().parents[1] / "prices.json"
ROOT = Path(__file__).resolve().parents[2]
WORKER_MEMORY_GB = 0.5  # the module's default worker.memory_size (512)
API_MEMORY_GB = 0.25  # submit and status (256)


def _env(defaults: dict[str, Any], **overrides: Any) -> dict[str, str]:
    env = {
        "CHUNK_SIZE": str(defaults["chunk_size"]),
        "MAX_RECEIVE_COUNT": str(defaults["max_receive_count"]),
        # a limit, not a performance setting: the scaling points' jobs are larger than it
        "MAX_RECORDS_PER_JOB": "10000000",
        "MAX_BODY_BYTES": "3112960",  # the contract's largest
        "UPLOAD_URL_TTL_SECONDS": "900",
        "RETRY_AFTER_SECONDS": str(defaults["retry_after_seconds"]),
        "TOLERATED_FAILURE_PERCENT": "0",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def ndjson(count: int, start: int = 0) -> bytes:
    return b"".join(b'{"id":%d}\n' % i for i in range(start, start + count))


class Clock:
    """Wall and CPU time of a window of this process."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        share = cpu / wall / (os.cpu_count() or 1) if wall > 0 else 0.0
        return {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "cpu_share": round(share, 3),
            "valid": share <= 0.5,
        }


def _mapping(
    h: Harness, defaults: dict[str, Any], workers: int, chaos: Chaos | None = None
) -> EventSourceMapping:
    return EventSourceMapping(
        h,
        workers=workers,
        batch_size=int(defaults["worker_batch_size"]),
        window=float(defaults["worker_maximum_batching_window_in_seconds"]),
        max_receive_count=int(defaults["max_receive_count"]),
        chaos=chaos,
    ).start()


def upload_job(h: Harness, records: int) -> str:
    """A job through POST /jobs/uploads; its object lands in the model and S3 notifies the queue."""
    status, body = h.api("POST", "/jobs/uploads", None, {"Content-Type": "application/x-ndjson"})
    assert status == 201, body
    job_id = str(body["job_id"])
    key = f"jobs/{job_id}/upload.ndjson"
    answer = h.s3.put_object(Bucket="", Key=key, Body=ndjson(records))  # the client's PUT, not the job's
    h.requests.counts["s3.PutObject"] -= 1
    h.queue.put(s3_notification(key, answer["VersionId"], answer["ETag"]))
    return job_id


def scaling_point(
    workers: int, *, latency: float, chunks_per_worker: int, defaults: dict[str, Any]
) -> dict[str, Any]:
    chunk = int(defaults["chunk_size"])
    chunks = max(16, chunks_per_worker * workers)
    h = Harness(latency=latency, env=_env(defaults))
    first_send: list[float] = []
    original = h.sqs.send_message_batch

    def send_batch(**kwargs: Any) -> Any:
        if not first_send:
            first_send.append(time.perf_counter())
        return original(**kwargs)

    h.sqs.send_message_batch = send_batch  # type: ignore[method-assign]
    with h.running():
        job_id = upload_job(h, chunks * chunk)
        before = h.requests.snapshot()
        clock = Clock()
        esm = _mapping(h, defaults, workers)
        try:
            state = h.wait_terminal(job_id, timeout=600)
        finally:
            esm.stop()
        ended = time.perf_counter()
        window = clock.read()
    requests = Counter(h.requests.snapshot())
    requests.subtract(before)
    lost = requests["s3.PutObject!412"] + requests["s3.PutObject!409"]
    seconds = ended - first_send[0] if first_send else window["wall_s"]
    return {
        "workers": workers,
        "chunks": chunks,
        "records": chunks * chunk,
        "status": state["status"],
        "completions_per_s": round(chunks / seconds, 2),
        "seconds_from_first_dispatch": round(seconds, 3),
        "lost_races": lost,
        "lost_races_per_completion": round(lost / chunks, 3),
        "s3_requests_per_chunk": round(
            sum(v for k, v in requests.items() if k.startswith("s3.")) / chunks, 2
        ),
        "invocations": esm.invocations.count,
        **window,
    }


def scaling(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    runs = {
        str(w): scaling_point(
            w,
            latency=settings["latency_s"],
            chunks_per_worker=settings["chunks_per_worker"],
            defaults=defaults,
        )
        for w in settings["workers"]
    }
    one = runs.get("1", {}).get("completions_per_s")
    for key, run in runs.items():
        run["efficiency"] = round(run["completions_per_s"] / (int(key) * one), 3) if one else None
    return {
        "latency_s": settings["latency_s"],
        "chunks_per_worker": settings["chunks_per_worker"],
        "runs": runs,
    }


# -- cost -------------------------------------------------------------------------------------
def _billable(requests: dict[str, int], sqs_units: int, events: int, lambda_requests: int) -> dict[str, int]:
    prices = json.loads(PRICES.read_text())
    s3 = prices["s3"]
    puts = gets = 0
    for name, count in requests.items():
        service, _, api = name.partition(".")
        api = api.split("!")[0]
        if name == "sink.write":
            puts += count  # the default sink is S3: one PutObject per chunk
        elif service == "s3" and api not in s3["free_operations"]:
            if api in s3["put_class_operations"]:
                puts += count
            else:
                gets += count
    return {
        "s3_put_class": puts,
        "s3_get_class": gets,
        "sqs_64kb_units": sqs_units,
        "lambda_requests": lambda_requests,
        "apigateway_requests": requests.get("apigateway.Request", 0),
        "eventbridge_events": events,
    }


def dollars(billable: dict[str, int], gb_seconds: float) -> dict[str, float]:
    prices = json.loads(PRICES.read_text())
    arch = json.loads((ROOT / "functions" / "platform.json").read_text())["architecture"]
    result = {
        "s3_put_class": billable["s3_put_class"] * prices["s3"]["put_class_per_1000"] / 1000,
        "s3_get_class": billable["s3_get_class"] * prices["s3"]["get_class_per_1000"] / 1000,
        "sqs": billable["sqs_64kb_units"] * prices["sqs"]["standard_per_million"] / 1e6,
        "lambda_requests": billable["lambda_requests"] * prices["lambda"]["requests_per_million"] / 1e6,
        "lambda_gb_seconds": gb_seconds * prices["lambda"]["gb_second"][arch],
        "apigateway": billable["apigateway_requests"] * prices["apigateway"]["rest_per_million"] / 1e6,
        "eventbridge": billable["eventbridge_events"] * prices["events"]["per_million"] / 1e6,
    }
    result["total"] = sum(result.values())
    return result


def cost(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """One job of `records` records through POST /jobs at the module's defaults (worker
    concurrency included), in a model that holds only this job's traffic, polled by its client
    at the Retry-After the API answers (the module's retry_after_seconds) until it ends, and
    once more when it has."""
    records = int(settings["records"])
    workers = int(defaults["worker_maximum_concurrency"])
    interval = float(defaults["retry_after_seconds"])
    h = Harness(latency=settings["latency_s"], env=_env(defaults))
    api_seconds = 0.0
    api_calls = 0
    with h.running():
        esm = _mapping(h, defaults, workers)
        body = json.dumps({"records": [{"id": i} for i in range(records)]})
        status, job = h.api("POST", "/jobs", body, {"Content-Type": "application/json"})
        assert status == 202, job
        api_seconds += h.api_seconds
        api_calls += 1
        job_id = job["job_id"]
        done = threading.Event()
        polls = 0

        def poll() -> None:
            nonlocal polls, api_seconds, api_calls
            while not done.wait(interval):
                h.api("GET", f"/jobs/{job_id}")
                polls += 1
                api_seconds += h.api_seconds
                api_calls += 1

        poller = threading.Thread(target=poll, daemon=True)
        started = time.perf_counter()
        poller.start()
        try:
            state = h.wait_terminal(job_id, timeout=600)
            # the notifications the end queued, then the client's last poll sees the end
            deadline = time.monotonic() + 30
            while (h.queue.depth() or h.dlq.depth()) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            done.set()
            poller.join()
            esm.stop()
        duration = time.perf_counter() - started
        h.api("GET", f"/jobs/{job_id}")
        polls += 1
        api_seconds += h.api_seconds
        api_calls += 1
    requests = h.requests.snapshot()
    lambda_requests = esm.invocations.count + api_calls
    billable = _billable(requests, h.requests.sqs_units, h.requests.events, lambda_requests)
    total = sum(billable.values())
    gb_seconds = esm.invocations.seconds * WORKER_MEMORY_GB + api_seconds * API_MEMORY_GB
    money = dollars(billable, gb_seconds)
    return {
        "records": records,
        "status": state["status"],
        "workers": workers,
        "latency_s": settings["latency_s"],
        "poll_interval_s": interval,
        "polls": polls,
        "job_seconds": round(duration, 3),
        "requests": requests,
        "billable": billable,
        "billable_requests": total,
        "aws_requests_per_1000_records": round(total * 1000 / records, 2),
        "by_kind_per_1000_records": {k: round(v * 1000 / records, 2) for k, v in billable.items()},
        "gb_seconds": round(gb_seconds, 3),
        "dollars": {k: round(v, 8) for k, v in money.items()},
        "dollars_per_million_records": round(money["total"] * 1e6 / records, 4),
    }


def sync_cost(settings: dict[str, Any]) -> dict[str, Any]:
    """The synchronous design this project replaces (bench/sync_handler.py): records processed
    one by one inside the request, one S3 PutObject per record to the same sink and a progress
    PutObject every 100, at the same write latency; `records_per_request` records a request."""
    per_request = int(settings["sync_records_per_request"])
    latency = float(settings["latency_s"])
    million = 1_000_000
    requests = million // per_request
    puts = million + million // 100
    seconds = puts * latency
    billable = {
        "s3_put_class": puts,
        "s3_get_class": 0,
        "sqs_64kb_units": 0,
        "lambda_requests": requests,
        "apigateway_requests": requests,
        "eventbridge_events": 0,
    }
    money = dollars(billable, seconds * WORKER_MEMORY_GB)
    return {
        "records_per_request": per_request,
        "latency_s": latency,
        "request_seconds": round(per_request * 1.01 * latency, 2),
        "aws_requests_per_1000_records": round(sum(billable.values()) / 1000, 2),
        "dollars_per_million_records": round(money["total"], 4),
    }


# -- submit ------------------------------------------------------------------------------------
def submit_overhead(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """POST /jobs of `records` records: its latency over its own AWS calls made alone (each call
    one model latency, nothing else)."""
    records = int(settings["records"])
    body = json.dumps({"records": [{"id": i} for i in range(records)]})
    h = Harness(latency=settings["latency_s"], env=_env(defaults))
    samples = []
    with h.running():
        for _ in range(int(settings["samples"])):
            before = sum(h.requests.snapshot().values())
            status, answer = h.api("POST", "/jobs", body, {"Content-Type": "application/json"})
            assert status == 202, answer
            calls = sum(h.requests.snapshot().values()) - before - 1  # less the API request
            samples.append((h.api_seconds, calls))
    seconds = statistics.median(s for s, _ in samples)
    calls = max(c for _, c in samples)
    floor = calls * settings["latency_s"]
    return {
        "records": records,
        "latency_s": settings["latency_s"],
        "aws_calls": calls,
        "seconds_median": round(seconds, 4),
        "aws_calls_alone_s": round(floor, 4),
        "overhead_over_aws_calls": round(seconds / floor, 3),
    }


# -- chaos -------------------------------------------------------------------------------------
def chaos(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Jobs run under duplicated deliveries and killed invocations, one of them cancelled while
    it runs; each ends with its records counted once and the sink holding its succeeded ones."""
    faults = Chaos(kill=settings["kill"], duplicate=settings["duplicate"], seed=settings.get("seed", 7))
    h = Harness(latency=settings["latency_s"], env=_env(defaults))
    jobs: list[dict[str, Any]] = []
    with h.running():
        esm = _mapping(h, defaults, int(settings["workers"]), faults)
        clock = Clock()
        try:
            for cancel in (False, True):
                records = int(settings["chunks"]) * int(defaults["chunk_size"])
                job_id = upload_job(h, records)
                if cancel:
                    # once it runs (or, on a fast machine, has ended: then the DELETE answers 409)
                    with h.changed:
                        while (h.state(job_id) or {}).get("status") in (None, "awaiting_upload", "queued"):
                            h.changed.wait(1.0)
                    time.sleep(settings["cancel_after_s"])
                    h.api("DELETE", f"/jobs/{job_id}")
                state = h.wait_terminal(job_id, timeout=600)
                jobs.append(_outcome(h, job_id, state, cancel, records))
        finally:
            esm.stop()
        window = clock.read()
    return {
        "kill_share": faults.kill,
        "duplicate_share": faults.duplicate,
        "workers": settings["workers"],
        "invocations": esm.invocations.count,
        "killed_invocations": esm.invocations.killed,
        "jobs": jobs,
        "records_lost": sum(j["records_lost"] for j in jobs),
        "records_counted_twice": sum(j["records_counted_twice"] for j in jobs),
        "sink_rows_equal_succeeded": all(j["sink_rows"] == j["succeeded_records"] for j in jobs),
        **window,
    }


def _outcome(h: Harness, job_id: str, state: dict[str, Any], cancelled: bool, records: int) -> dict[str, Any]:
    total = int(state["total_records"] or 0)
    if state["status"] != "cancelled" or state.get("chunks_total") is not None:
        assert total == records, f"the job holds {total} of its {records} records"
    succeeded, failed = int(state["succeeded_records"]), int(state["failed_records"])
    skipped = int(state.get("skipped_records") or 0)
    rows = h.sink.row_indices(job_id)
    accounted = succeeded + failed + skipped
    return {
        "cancelled": cancelled,
        "status": state["status"],
        "total_records": total,
        "succeeded_records": succeeded,
        "failed_records": failed,
        "skipped_records": skipped,
        "sink_rows": len(rows),
        "sink_rows_distinct": len(set(rows)),
        "records_lost": max(0, total - accounted),
        "records_counted_twice": max(0, accounted - total) + (len(rows) - len(set(rows))),
    }


def measure(settings: dict[str, Any]) -> dict[str, Any]:
    defaults = module_defaults()
    started = time.monotonic()
    result: dict[str, Any] = {"module_defaults": defaults}
    result["submit"] = submit_overhead(settings["submit"], defaults)
    result["cost"] = cost(settings["cost"], defaults)
    result["sync"] = sync_cost(settings["cost"])
    result["scaling"] = scaling(settings["scaling"], defaults)
    result["chaos"] = chaos(settings["chaos"], defaults)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def ratios(design: dict[str, Any]) -> dict[str, Any]:
    runs = design["scaling"]["runs"]
    fifty = runs.get("50")
    async_money = design["cost"]["dollars_per_million_records"]
    return {
        "state_completions_per_s_at_50": fifty["completions_per_s"] if fifty else None,
        "worker_scaling_efficiency_8": (runs.get("8") or {}).get("efficiency"),
        "aws_requests_per_1000_records": design["cost"]["aws_requests_per_1000_records"],
        "aws_requests_per_1000_records_sync": design["sync"]["aws_requests_per_1000_records"],
        "submit_overhead_over_aws_calls": design["submit"]["overhead_over_aws_calls"],
        "lost_races_per_completion_at_50": fifty["lost_races_per_completion"] if fifty else None,
        "dollars_per_million_records_async": async_money,
        "dollars_per_million_records_sync": design["sync"]["dollars_per_million_records"],
        "dollars_per_million_records_async_over_sync": round(
            async_money / design["sync"]["dollars_per_million_records"], 4
        ),
        "all_points_valid": all(r["valid"] for r in runs.values()) and design["chaos"]["valid"],
    }
