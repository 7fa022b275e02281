"""End-to-end fixtures: each example applied with Terraform to a moto server, served by the local runtime.

One apply per example per test module (Fabric style: apply -> outputs -> destroy); the tests talk
to the API over real HTTP on 127.0.0.1.

Parallel runs (`make test`: pytest-xdist, --dist loadscope) keep each module whole in one worker
process, and a worker runs one module at a time. What keeps that safe, and what a module must not
break: stacks come from start_stack() in a module-scoped (never session- or package-scoped)
fixture, since moto's backends are global to the process (a deployment resets them when it starts
and stops: it never sees what an earlier module of its worker left); every port is 0; every
file a test writes goes under tmp_path or the deployment's own work_dir, never a fixed path in
the checkout; Terraform runs through LocalDeployment, whose init holds the shared init lock.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

from async_jobs_local import JobsClient, LocalDeployment, moto_patches  # noqa: E402
from async_jobs_local.deployment import MANAGED_POLICIES_SETTING as MANAGED_POLICIES  # noqa: E402
from async_jobs_local.faults import FaultPlan  # noqa: E402

TERMINAL = {"succeeded", "completed_with_errors", "failed", "cancelled", "expired"}


def _require_tools() -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not installed: the e2e tests apply the examples with it")
    missing = [
        name for name in ("submit", "worker", "status") if not (ROOT / "dist" / f"{name}.zip").is_file()
    ]
    if missing:
        pytest.fail(f"dist/{missing[0]}.zip is missing: run `make build`")


def start_stack(example: str, **kwargs: Any) -> Iterator[LocalDeployment]:
    _require_tools()
    quota = moto_patches.ACCOUNT_CONCURRENCY
    before = (quota.concurrent_executions, quota.minimum_unreserved, os.environ.get(MANAGED_POLICIES))
    stack = LocalDeployment(ROOT / "examples" / example, port=0, **kwargs)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
    # the next module of this worker process must find moto's process-wide settings as they were
    after = (quota.concurrent_executions, quota.minimum_unreserved, os.environ.get(MANAGED_POLICIES))
    assert after == before, "the stack left moto's process-wide settings changed"


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalDeployment]:
    yield from start_stack("local")


@pytest.fixture(scope="module")
def complete_stack() -> Iterator[LocalDeployment]:
    yield from start_stack("complete")


# The local example with the worker under injected faults (async_jobs_local.faults) and chunks
# small enough that every job of more than 250 records has several. One stack per module: moto's
# backends are global to the test process, so a stack that outlived its module would share them
# with the next module's stack (same names) and be wiped by that stack's teardown.
FAULT_CHUNK_SIZE = 250
# A message goes to the DLQ on its 5th receive (max_receive_count); each fault costs at most one
# receive, so at these rates no message of a run comes near it. A kill costs its message the
# queue's visibility timeout (60 s here): two kills of one chunk message made a job take 160 s
# where the work took 40, so no message is killed more than once, and a job's slowest path (its
# split, then a chunk) waits out at most two visibility timeouts for kills.
FAULT_PLAN = FaultPlan(
    aws_error_rate=0.1,
    kill_rate=0.08,
    kill_within=0.5,
    max_kills_per_message=1,
    duplicate_rate=0.15,
    delay_rate=0.1,
    delay_seconds=(1, 4),
    seed=20261124,
)


@pytest.fixture(scope="module")
def faulty_stack() -> Iterator[LocalDeployment]:
    yield from start_stack("local", variables={"chunk_size": FAULT_CHUNK_SIZE}, faults=FAULT_PLAN)


def wait_for(
    probe: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.3, what: str = "condition"
) -> Any:
    """Call ``probe`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_terminal(client: JobsClient, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    def terminal() -> dict[str, Any] | None:
        response = client.get(job_id)
        assert response.status == 200, (response.status, response.body[:300])
        job = response.json()
        return job if job["status"] in TERMINAL else None

    return wait_for(terminal, timeout=timeout, what=f"job {job_id} to end")  # type: ignore[no-any-return]


def queue_depth(stack: LocalDeployment, queue_url: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def s3_keys(stack: LocalDeployment, prefix: str) -> list[str]:
    s3 = stack.client("s3")
    bucket = stack.outputs["state_bucket_name"]
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def s3_lines(stack: LocalDeployment, key: str) -> list[str]:
    body = stack.client("s3").get_object(Bucket=stack.outputs["state_bucket_name"], Key=key)["Body"].read()
    return [line for line in body.decode().splitlines() if line.strip()]


def assert_nothing_left(stack: LocalDeployment) -> None:
    leftovers = {kind: names for kind, names in stack.inventory().items() if names}
    assert leftovers == {}, f"terraform destroy left resources behind: {leftovers}"
