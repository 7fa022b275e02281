"""Cold start: package sizes, and handler import + init in fresh ``python -I -S`` processes.

Each function's host-built package (what the local stack runs; the same sources and pins as its
Lambda zip) is imported in a new process with the package alone on ``sys.path``, as Lambda's
runtime does, and compared with a bare handler that imports boto3 and builds the same clients.
The clients a handler builds at import are the ones the local stack saw it build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .stats import ratio, summary

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("submit", "worker", "status")
# Without a deployment: enough configuration for each handler's import (clients are not called).
MINIMAL_ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "STATE_BUCKET": "bench-state",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/bench",
}
DEFAULT_CLIENTS = {"submit": ["s3", "sqs"], "worker": ["s3", "sqs"], "status": ["s3"]}

PROBE = """
import sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "handler":
    __import__(sys.argv[3])
else:
    import boto3
    clients = [boto3.client(name) for name in sys.argv[3].split(",") if name]
print(time.perf_counter() - started)
"""


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _probe(package: Path, mode: str, target: str, environment: dict[str, str]) -> float:
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(package), mode, target],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), **environment},
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{package.name} {mode}: {result.stderr.strip().splitlines()[-1:]}")
    return float(result.stdout.strip().splitlines()[-1])


def measure(
    packages: Path,
    runs: int,
    environments: dict[str, dict[str, str]] | None = None,
    clients: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in FUNCTIONS:
        package = packages / name
        environment = (environments or {}).get(name) or MINIMAL_ENVIRONMENT
        built = (clients or {}).get(name) or DEFAULT_CLIENTS[name]
        handler_times, bare_times = [], []
        for _ in range(runs):  # alternated, so both see the same machine load
            handler_times.append(_probe(package, "handler", name, environment))
            bare_times.append(_probe(package, "bare", ",".join(built), environment))
        zip_path = ROOT / "dist" / f"{name}.zip"
        results[name] = {
            "zip_bytes": zip_path.stat().st_size if zip_path.is_file() else None,
            "unpacked_bytes": _tree_bytes(package),
            "clients": built,
            "handler_import_s": summary(handler_times),
            "bare_boto3_s": summary(bare_times),
            "import_over_bare_boto3": ratio(summary(handler_times)["p50"], summary(bare_times)["p50"]),
        }
    return results


def function_environments(stack: Any) -> dict[str, dict[str, str]]:
    """Each deployed function's environment (as its execution environments get it), by package name."""
    environments = {}
    for spec in stack.functions.values():
        module = spec.handler.split(".")[0]
        if module in FUNCTIONS:
            env = {k: v for k, v in spec.process_environment(None).items() if k != "PATH"}
            environments[module] = env
    return environments
