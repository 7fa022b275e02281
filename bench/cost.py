"""AWS requests and dollars per job, counted inside the functions, priced from bench/prices.json.

Requests are what the functions' own botocore clients sent (``before-call``, one per operation
attempt the function made), plus the event source mapping's receive and delete per batch (SQS
bills them to the account; its empty long polls are left out), plus one API request per job.
Lambda GB-seconds are the measured invocation durations on this machine against moto times the
configured memory: an indication, not AWS's billed duration.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from async_jobs_local import JobsClient, LocalDeployment

from .workload import SYNC_FUNCTION, body, post, wait_terminal

PRICES = Path(__file__).with_name("prices.json")
ARCHITECTURE = json.loads((Path(__file__).resolve().parents[1] / "functions" / "platform.json").read_text())[
    "architecture"
]


def load_prices() -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(PRICES.read_text())
    return prices


def operation(name: str) -> str:
    """``s3.PutObject@state!412`` → ``s3.PutObject`` (the billable operation)."""
    return name.split("@", maxsplit=1)[0].split("!", maxsplit=1)[0]


def dollars(usage: dict[str, Any], prices: dict[str, Any]) -> dict[str, float]:
    """Dollars of ``usage`` (``requests`` by operation, ``lambda_requests``, ``gb_seconds``,
    ``api_requests``) by service."""
    s3 = prices["s3"]
    s3_cost = sqs_cost = 0.0
    for name, count in usage["requests"].items():
        service, _, api = name.partition(".")
        if service == "s3" and api not in s3["free_operations"]:
            per = s3["put_class_per_1000"] if api in s3["put_class_operations"] else s3["get_class_per_1000"]
            s3_cost += count * per / 1000
        elif service == "sqs":
            sqs_cost += count * prices["sqs"]["standard_per_million"] / 1e6
    lam = prices["lambda"]
    result = {
        "s3": s3_cost,
        "sqs": sqs_cost,
        "lambda_requests": usage["lambda_requests"] * lam["requests_per_million"] / 1e6,
        "lambda_duration": usage["gb_seconds"] * lam["gb_second"][ARCHITECTURE],
        "apigateway": usage["api_requests"] * prices["apigateway"]["rest_per_million"] / 1e6,
    }
    result["total"] = sum(result.values())
    return result


def _usage(stack: LocalDeployment, functions: list[str]) -> dict[str, Any]:
    assert stack.instruments is not None
    snapshot = stack.instruments.snapshot()
    requests: Counter[str] = Counter()
    for name in functions:
        for op, count in snapshot["requests"].get(name, {}).items():
            if "!" not in op:  # an error answer was already counted as its request
                requests[operation(op)] += count
    stats = stack.event_source.stats if stack.event_source else None
    batches = stats.invocations if stats else 0
    return {
        "requests": requests,
        "esm_batches": batches,
        "lambda_requests": sum(snapshot["invocations"].get(name, 0) for name in functions),
        "gb_seconds": sum(snapshot["gb_seconds"].get(name, 0.0) for name in functions),
    }


def _difference(after: dict[str, Any], before: dict[str, Any], api_requests: int) -> dict[str, Any]:
    requests = Counter(after["requests"])
    requests.subtract(before["requests"])
    batches = after["esm_batches"] - before["esm_batches"]
    if batches:
        requests["sqs.ReceiveMessage"] += batches  # the mapping's pollers, one receive per batch
        requests["sqs.DeleteMessageBatch"] += batches
    return {
        "requests": {name: count for name, count in sorted(requests.items()) if count},
        "lambda_requests": after["lambda_requests"] - before["lambda_requests"],
        "gb_seconds": after["gb_seconds"] - before["gb_seconds"],
        "api_requests": api_requests,
    }


def _summarise(usage: dict[str, Any], records: int, prices: dict[str, Any]) -> dict[str, Any]:
    total = sum(usage["requests"].values()) + usage["lambda_requests"] + usage["api_requests"]
    by_service: Counter[str] = Counter()
    for name, count in usage["requests"].items():
        by_service[name.partition(".")[0]] += count
    by_service["lambda"] += usage["lambda_requests"]
    by_service["apigateway"] += usage["api_requests"]
    cost = dollars(usage, prices)
    return {
        "records": records,
        **usage,
        "requests_by_service": dict(by_service),
        "aws_requests": total,
        "aws_requests_per_1000_records": total * 1000 / records,
        "dollars": cost,
        "dollars_per_million_records": cost["total"] * 1e6 / records,
    }


def measure(stack: LocalDeployment, sizes: list[int], sync_records: int) -> dict[str, Any]:
    prices = load_prices()
    submit, worker = stack.outputs["submit_function_name"], stack.outputs["worker_function_name"]
    client = JobsClient(stack.stage_url, timeout=120)
    results: dict[str, Any] = {"prices_as_of": prices["as_of"], "architecture": ARCHITECTURE, "async": {}}
    for records in sizes:
        before = _usage(stack, [submit, worker])
        status, _, document = post(client, "/jobs", body(records, compact=True))
        assert status == 202, (status, document)
        wait_terminal(stack, [document["job_id"]], timeout=600)
        after = _usage(stack, [submit, worker])
        results["async"][str(records)] = _summarise(_difference(after, before, 1), records, prices)
    # The replaced design, measured on one request and scaled per record (it cannot take 10,000
    # records inside API Gateway's 29 s).
    before = _usage(stack, [SYNC_FUNCTION])
    status, _, document = post(client, "/sync/jobs", body(sync_records, compact=True))
    assert status == 200, (status, document)
    after = _usage(stack, [SYNC_FUNCTION])
    measured = _summarise(_difference(after, before, 1), sync_records, prices)
    results["sync_measured"] = measured
    results["sync"] = {}
    for records in sizes:
        scale = records / sync_records
        usage = {
            "requests": {name: round(count * scale) for name, count in measured["requests"].items()},
            "lambda_requests": round(measured["lambda_requests"] * scale),
            "gb_seconds": measured["gb_seconds"] * scale,
            "api_requests": round(scale),
        }
        results["sync"][str(records)] = _summarise(usage, records, prices)
    return results
