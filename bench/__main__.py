"""``python -m bench [--profile full|quick|smoke] [--out DIR]``: measure, then write the results.

``full`` (``make bench``) applies ``bench/stack`` to a local moto server once and runs every
measurement against it; ``quick`` the same with few samples; ``smoke`` (``make bench-smoke``)
needs no deployment: cold start and submit's AWS-call floor against an in-process moto server.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from async_jobs_local import LocalDeployment
from async_jobs_local.instrumentation import Instruments
from async_jobs_local.local_functions import LocalFunction
from async_jobs_local.packages import build_packages

from . import coldstart, contention, cost, fairness, latency, report, throughput
from .database import measure as measure_database
from .design import measure as design
from .profiles import PROFILES
from .stats import ratio
from .workload import SYNC_FUNCTION

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench")


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (
        "-dirty" if git("status", "--porcelain", "--", "functions", "bench") else ""
    )


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _smoke(settings: dict[str, Any], results: dict[str, Any]) -> None:
    import boto3  # noqa: PLC0415
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {
            "endpoint_url": f"http://{host}:{port}",
            "region_name": "us-east-1",
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }
        s3, sqs = boto3.client("s3", **options), boto3.client("sqs", **options)
        s3.create_bucket(Bucket="bench")
        queue = sqs.create_queue(QueueName="bench")["QueueUrl"]
        results["submit_latency"] = {
            "sizes": {
                str(n): {
                    "records": n,
                    "body_bytes": 0,
                    "floor": latency.floor(s3, sqs, bucket="bench", queue=queue, count=n, samples=k),
                }
                for n, k in settings["floor"].items()
            }
        }
    finally:
        server.stop()


def _full(settings: dict[str, Any], results: dict[str, Any]) -> None:
    instruments = Instruments()
    sync = LocalFunction(SYNC_FUNCTION, "sync_handler.handler", ROOT / "bench" / "sync_handler.py", "worker")
    stack = LocalDeployment(
        ROOT / "bench" / "stack",
        port=0,
        instruments=instruments,
        extra_routes={"POST /sync/jobs": sync},
        # The stack goes with its moto server: a terraform destroy would delete every object the
        # runs wrote (the sync design writes one per record), one version at a time, for minutes.
        destroy_on_stop=False,
    )
    started = time.monotonic()
    stack.start()
    results["timings"] = {"stack_start_s": time.monotonic() - started}
    try:
        worker = stack.outputs["worker_function_name"]
        results["settings"]["chunk_size"] = int(stack.functions[worker].environment["CHUNK_SIZE"])
        phases = [
            ("submit_latency", lambda: latency.measure(stack, settings["latency"])),
            ("throughput", lambda: throughput.measure_clients(stack, settings["throughput"])),
            ("worker_scaling", lambda: throughput.measure_scaling(stack, settings["scaling"])),
            ("state_contention", lambda: contention.measure(stack, settings["contention"])),
            ("fairness", lambda: fairness.measure(stack, settings["fairness"])),
            ("cost", lambda: _cost(stack, settings)),
            (
                "cold_start",
                lambda: coldstart.measure(
                    stack.packages_dir,
                    settings["cold_start_runs"],
                    coldstart.function_environments(stack),
                    {_module(stack, n): c for n, c in instruments.clients.items()},
                ),
            ),
        ]
        for name, phase in phases:
            log.info("measuring %s", name)
            started = time.monotonic()
            results[name] = phase()
            results["timings"][f"{name}_s"] = time.monotonic() - started
    finally:
        stack.stop()


def _module(stack: LocalDeployment, function_name: str) -> str:
    return stack.functions[function_name].handler.split(".")[0]


def _cost(stack: LocalDeployment, settings: dict[str, Any]) -> dict[str, Any]:
    stack.set_worker_concurrency(settings["cost"]["worker_concurrency"])
    return cost.measure(stack, settings["cost"]["sizes"], settings["cost"]["sync_records"])


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    def get(*path: str) -> Any:
        value: Any = results
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    cold = results.get("cold_start") or {}
    # The design layer's figures (bench/design) carry the design's ratios; the stack layer's
    # own measurements of the same things run through moto on this machine's CPU and are kept
    # beside them under stack_* names.
    found = {
        **(design.ratios(results["design"]) if results.get("design") else {}),
        "submit_p95_async_over_sync_10000": get("submit_latency", "sizes", "10000", "p95_async_over_sync"),
        "throughput_async_over_sync_50_clients": get("throughput", "50", "async_over_sync"),
        "stack_worker_scaling_efficiency_8": get("worker_scaling", "runs", "8", "efficiency"),
        "stack_aws_requests_per_1000_records": get("cost", "async", "10000", "aws_requests_per_1000_records"),
        "stack_submit_overhead_over_aws_calls": get(
            "submit_latency", "sizes", "10000", "overhead_over_aws_calls"
        ),
        # The worst function's: the one that sets the slowest cold start.
        "import_time_over_bare_boto3": max(
            (e["import_over_bare_boto3"] for e in cold.values() if e["import_over_bare_boto3"] is not None),
            default=None,
        ),
        "stack_state_completions_per_s_at_50": get("state_contention", "runs", "50", "completions_per_s"),
        "small_job_beside_big_unfair_over_fair": ratio(
            get("fairness", "small_beside_big_unfair_s"), get("fairness", "small_beside_big_fair_s")
        ),
    }
    return found


def run(profile: str, out: Path, layers: tuple[str, ...] = ("design", "stack")) -> dict[str, Path]:
    settings = PROFILES[profile]
    command = "make bench" if profile == "full" else f"python -m bench --profile {profile}"
    if set(layers) != {"design", "stack"}:
        command = f"python -m bench --profile {profile} --layer {','.join(layers)}"
    results: dict[str, Any] = {
        "command": command,
        "profile": profile,
        "commit": _commit(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_start": _load(),
        },
        "settings": settings,
        # The PostgreSQL comparison (bench/database.py); not in the smoke profile.
        "database": None,
    }
    if "design" in layers:
        log.info("measuring the design layer")
        results["design"] = design.measure(settings["design"])
        results["chaos"] = {
            key: results["design"]["chaos"][key]
            for key in ("records_lost", "records_counted_twice", "sink_rows_equal_succeeded", "jobs")
        }
    if "stack" not in layers:
        pass
    elif profile == "smoke":
        _smoke(settings, results)
        with tempfile.TemporaryDirectory() as scratch:
            packages = build_packages(ROOT, Path(scratch) / "packages")
            results["cold_start"] = coldstart.measure(packages, settings["cold_start_runs"])
    else:
        _full(settings, results)
        # its own deployment (examples/postgres), after the bench stack's: one per process
        log.info("measuring database")
        started = time.monotonic()
        results["database"] = measure_database(settings["database"]["records"])
        results.setdefault("timings", {})["database_s"] = time.monotonic() - started
    results["machine"]["load_average_end"] = _load()
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["ratios"] = ratios(results)
    return report.write(results, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--layer",
        default="design,stack",
        help="design (the handlers against the AWS model), stack (the local stack), or both",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    layers = tuple(layer.strip() for layer in args.layer.split(",") if layer.strip())
    for path in run(args.profile, args.out, layers).values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
