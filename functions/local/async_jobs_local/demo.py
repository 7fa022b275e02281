"""``python -m async_jobs_local demo``: a job of 20,000 records end to end on the local stack."""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from botocore.credentials import Credentials

from async_jobs_client import ApiError, InputFile, JobsApi
from async_jobs_client.api import SigV4
from async_jobs_client.contract import default_max_body_bytes

from .client import JobsClient
from .deployment import LocalDeployment

TERMINAL = {"succeeded", "completed_with_errors", "failed", "cancelled", "expired"}
DEMO_ACCESS_KEY = "AKIDLOCALDEMO0001"
POLL_SECONDS = 0.5
DEADLINE_SECONDS = 600


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT the local stack reads (it does not verify signatures); for JWT / COGNITO authorization."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def client_for(stack: LocalDeployment, identity: str = "demo") -> JobsClient:
    """A client of the stack's API with credentials its authorization accepts, as ``identity``."""
    auth = stack.gateway.authorization if stack.gateway else "NONE"
    if auth == "AWS_IAM":
        access_key = ("AKID" + identity.upper().replace("-", ""))[:20].ljust(16, "0")
        return JobsClient(stack.url, access_key=access_key)
    if auth == "API_KEY":
        return JobsClient(stack.url, api_key=str(stack.outputs.get("api_key_value") or ""))
    if auth in ("JWT", "COGNITO"):
        return JobsClient(stack.url, bearer=unsigned_jwt({"sub": identity, "token_use": "id"}))
    return JobsClient(stack.url)


def api_for(stack: LocalDeployment, identity: str = "demo") -> JobsApi:
    """The shipped client of the stack's API, with credentials its authorization accepts."""
    legacy = client_for(stack, identity)
    sigv4 = None
    if legacy.access_key:
        sigv4 = SigV4("us-east-1", credentials=Credentials(legacy.access_key, "local-demo-secret"))
    return JobsApi(stack.url, sigv4=sigv4, token=legacy.bearer, api_key=legacy.api_key)


def write_input(records: list[dict[str, Any]], metadata: dict[str, Any]) -> Path:
    """The demo's records as the JSON file a user would submit."""
    handle, name = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump({"records": records, "metadata": metadata}, out)
    return Path(name)


def demo_records(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"rec-{index:06d}", "email": f"user{index}@example.com", "amount": index % 1000}
        for index in range(count)
    ]


class Progress:
    def __init__(self, stream: Any = sys.stdout, width: int = 32) -> None:
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_line = 0.0

    def show(self, job: dict[str, Any], elapsed: float) -> None:
        total = job.get("total_records") or 0
        done = job.get("processed_records") or 0
        fraction = float(job.get("progress") or (done / total if total else 0))
        filled = int(self.width * min(1.0, fraction))
        bar = "#" * filled + "-" * (self.width - filled)
        status = job.get("status", "")
        line = f"  [{bar}] {fraction * 100:5.1f}%  {done:>7,}/{total:,}  {status:<22} {elapsed:6.1f}s"
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif time.monotonic() - self._last_line >= 2 or job.get("status") in TERMINAL:
            self._last_line = time.monotonic()
            self.stream.write(line + "\n")
            self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")


def count_results(stack: LocalDeployment, bucket: str, prefix: str) -> tuple[int, int]:
    s3 = stack.client("s3")
    objects = records = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            objects += 1
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            records += sum(1 for line in body.splitlines() if line.strip())
    return objects, records


def report_results(stack: LocalDeployment, job_id: str) -> None:
    bucket = str(stack.outputs.get("state_bucket_name"))
    prefix = f"jobs/{job_id}/results/"
    objects, result_records = count_results(stack, bucket, prefix)
    print(f"\nresults: s3://{bucket}/{prefix}  {objects} objects, {result_records:,} records")
    if stack.event_source:
        stats = stack.event_source.stats
        print(
            f"worker: {stats.invocations} invocations, {stats.messages} messages, "
            f"{stats.failed_messages} failed, {stats.timeouts} timeouts"
        )


def run_demo(
    example: str | Path | None = None, *, records: int = 20_000, port: int = 0, host: str = "127.0.0.1"
) -> int:
    out = sys.stdout
    started = time.monotonic()
    print(f"async-jobs local demo: {records:,} records", flush=True)
    print("  starting moto, terraform apply ...", flush=True)
    stack = LocalDeployment(example, port=port, host=host)
    timings: dict[str, float] = {}
    job: dict[str, Any] = {}
    try:
        stack.start()
        timings["stack up (moto + terraform init/apply + runtime)"] = time.monotonic() - started
        print(
            f"  stack up in {timings['stack up (moto + terraform init/apply + runtime)']:.1f}s "
            f"(apply {stack.timings.get('apply', 0):.1f}s); API on {stack.url}",
            flush=True,
        )
        for name, error in stack.init_errors.items():
            print(f"  ERROR: {name} cannot start: {error}", file=sys.stderr, flush=True)
        # Submit and poll with the shipped client (async_jobs_client), as a user of the API would.
        api = api_for(stack)
        source = write_input(demo_records(records), {"source": "async_jobs_local demo"})
        t = time.monotonic()
        try:
            job = api.submit_file(InputFile.open(source), max_inline_bytes=default_max_body_bytes())
        except ApiError as error:
            print(f"  submit failed: {error}", file=sys.stderr)
            return 1
        finally:
            source.unlink()
        timings["POST /jobs"] = time.monotonic() - t
        job_id = job["job_id"]
        print(
            f"  POST /jobs -> {job['status']} in {timings['POST /jobs'] * 1000:.0f} ms, job {job_id}",
            flush=True,
        )
        progress = Progress(out)
        t = time.monotonic()
        job = api.wait(
            job_id,
            timeout=DEADLINE_SECONDS,
            interval=POLL_SECONDS,
            on_poll=lambda polled: progress.show(polled, time.monotonic() - t),
        ) or api.status(job_id)
        progress.done()
        timings["processing (submit -> terminal status)"] = time.monotonic() - t + timings["POST /jobs"]
        print("\nfinal job resource:")
        print(json.dumps(job, indent=2))
        report_results(stack, job_id)
    finally:
        print("\ntearing down: terraform destroy ...", flush=True)
        t = time.monotonic()
        stack.stop()
        timings["teardown (terraform destroy + stop)"] = time.monotonic() - t
    timings["total"] = time.monotonic() - started
    print("\ntimings:")
    for name, seconds in timings.items():
        print(f"  {name:<50} {seconds:7.1f}s")
    status = job.get("status")
    print(f"\njob {status}")
    return 0 if status == "succeeded" else 1
