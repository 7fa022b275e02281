"""Jobs on the local stack under injected failures: 0 records lost, 0 counted twice, every job ends.

The local runtime (``async_jobs_local.faults``) makes the worker's S3 and SQS requests fail as
S3/SQS do under load (500 InternalError, 503 SlowDown; the function's own SDK retries them),
kills worker processes mid-invocation (as Lambda does on a timeout or out of memory: the
message returns after the visibility timeout), delivers messages twice and hands some back to
the queue for a few seconds so that later ones overtake them. Then every record must be in the
s3 sink exactly once, every count must add up and every job must end, within a time budget.
The counts of faults are the injector's own, measured as it injects them.

The budget comes from the configuration deployed: a job's slowest path is its split message, then
a chunk message, and each delivery of either that fails (a kill, a timeout, a throttle) costs the
queue's visibility timeout, up to the redrive policy's receive count; plus the work itself. The
run's expected length stays well inside it: the plan kills at most one delivery of a message.
When a job has not ended by then, the report says for each: its counts and chunk markers, its
messages still queued (receive count, when each is visible again) and what hit its deliveries.

``FAULT_RUNS=N`` runs the scenario N times on the one stack, with the plan's seed and the N-1
seeds after it (each run reseeds the injector); the default is the plan's seed alone.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from async_jobs_local import JobsClient, LocalDeployment

from .conftest import FAULT_PLAN as PLAN
from .conftest import TERMINAL, queue_depth, s3_keys, s3_lines, wait_for
from .fault_report import describe

JOBS = 20
MAX_RECORDS = 3000
# A job's messages, one after the other: the split, then each chunk (in parallel with the others).
SLOWEST_PATH = ("split", "chunk")
# The work of the 20 jobs without a fault, with the two cores shared with other test workers.
WORK_SECONDS = 120
SEEDS = [PLAN.seed + run for run in range(int(os.environ.get("FAULT_RUNS") or 1))]


def budget_seconds(stack: LocalDeployment) -> float:
    """The longest a job can take and still end without its messages reaching the DLQ."""
    attributes = stack.queue_attributes
    visibility = int(attributes["VisibilityTimeout"])
    receives = int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])
    return WORK_SECONDS + len(SLOWEST_PATH) * (receives - 1) * visibility


def _records(job: int, count: int) -> list[dict[str, Any]]:
    return [{"job": job, "n": index, "pad": "x" * (index % 17)} for index in range(count)]


def _sink(stack: LocalDeployment, job_id: str) -> Counter[int]:
    """How often each record index of the job is in the s3 sink (and that it holds its record)."""
    seen: Counter[int] = Counter()
    for key in s3_keys(stack, f"jobs/{job_id}/results/"):
        for line in s3_lines(stack, key):
            entry = json.loads(line)
            assert entry["record"]["n"] == entry["record_index"], (key, entry)
            seen[entry["record_index"]] += 1
    return seen


@pytest.mark.parametrize("seed", SEEDS)
def test_no_record_lost_or_counted_twice_and_every_job_ends(faulty_stack: LocalDeployment, seed: int) -> None:
    # GIVEN 20 jobs of 1-3,000 records, submitted at once to a stack injecting faults
    stack = faulty_stack
    assert stack.faults is not None
    stack.faults.reseed(seed)
    before = stack.faults.totals()
    budget = budget_seconds(stack)
    client = JobsClient(stack.url)
    rng = random.Random(seed)
    sizes = [rng.randint(1, MAX_RECORDS) for _ in range(JOBS)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda job: client.submit(_records(job, sizes[job])), range(JOBS)))
    assert [response.status for response in responses] == [202] * JOBS, responses[0].body
    job_ids = [response.json()["job_id"] for response in responses]

    # WHEN the worker runs them to the end (or the budget runs out)
    final: dict[str, dict[str, Any]] = {}

    def all_ended() -> bool:
        for job_id in job_ids:
            if job_id not in final:
                job = client.get(job_id).json()
                if job["status"] in TERMINAL:
                    final[job_id] = job
        return len(final) == JOBS

    try:
        wait_for(all_ended, timeout=budget, interval=1.0, what="every job to end")
    except AssertionError:
        pass  # reported below with the counts
    elapsed = time.monotonic() - started
    late = [describe(stack, client, job_id, started) for job_id in job_ids if job_id not in final]

    # THEN every record is in the sink exactly once and every count adds up
    lost = duplicated = 0
    miscounted = []
    for job_id, size in zip(job_ids, sizes, strict=True):
        seen = _sink(stack, job_id)
        lost += sum(1 for index in range(size) if seen[index] == 0)
        duplicated += sum(count - 1 for count in seen.values() if count > 1)
        assert set(seen) <= set(range(size)), f"{job_id}: indexes outside the job"
        job = final.get(job_id)
        if job is not None and not (
            job["status"] == "succeeded"
            and job["total_records"] == job["processed_records"] == job["succeeded_records"] == size
            and job["failed_records"] == 0
        ):
            miscounted.append(job)
    not_terminal = JOBS - len(final)
    injected = {kind: count - before.get(kind, 0) for kind, count in stack.faults.totals().items()}
    slowest = max(final, key=lambda job_id: _seconds(final[job_id]), default=None)
    print(
        f"\nfaults (seed {seed}): {JOBS} jobs, {sum(sizes)} records, {elapsed:.0f} s of a {budget:.0f} s "
        "budget; injected "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(injected.items()))
        + f"; records lost {lost}, duplicated {duplicated}, jobs not terminal {not_terminal}, "
        f"miscounted {len(miscounted)}"
    )
    failures = Counter(
        entry.what
        for job_id in job_ids
        for entry in stack.faults.journal(job_id)
        if entry.what in ("invocation_error", "timeout", "throttled", "record_failed")
    )
    print(
        "failed deliveries: " + (", ".join(f"{what} {n}" for what, n in sorted(failures.items())) or "none")
    )
    if slowest is not None:
        print(f"slowest job: {_seconds(final[slowest]):.0f} s\n" + describe(stack, client, slowest, started))
    for report in late:
        print(report)
    assert (lost, duplicated, not_terminal) == (0, 0, 0), "\n".join(late)
    assert miscounted == []
    # nothing went to the dead-letter queue: no message ran out of receives
    assert queue_depth(stack, stack.outputs["dlq_url"]) == 0
    # and each kind of fault did happen in this run (otherwise the test proves nothing)
    for kind in ("aws_errors", "kills", "duplicates", "delays"):
        assert injected.get(kind, 0) > 0, f"no {kind} injected: {injected}"


def _seconds(job: dict[str, Any]) -> float:
    """From the job's creation to its end, by its own timestamps."""
    created, finished = (datetime.fromisoformat(job[name]) for name in ("created_at", "finished_at"))
    return (finished - created).total_seconds()
