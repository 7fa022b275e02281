"""Property-based: random jobs under random deliveries keep the engine's invariants.

Each example submits a job through the real submit service and then delivers its queue messages
to the real engine (moto S3, mock_aws) in an order hypothesis chooses: duplicated, out of order,
two at once in threads (the same one twice or two different ones), killed part way (the worker
stops at a random S3 call, before or after the sink, marker or state write), cancelled, retried
(POST /jobs/{id}/retry once the job has ended with failed records: its chunks run again under a
new attempt, among the earlier attempt's late redeliveries). Then every message still pending is
delivered until none is left, and the invariants are checked:

1. each record is counted once in processed_records (and succeeded + failed + skipped = total);
2. the job is terminal once every message has been delivered;
5. the sink holds each (job_id, record_index) at most once, and exactly the succeeded records.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from async_jobs import model
from async_jobs.store import JobStore, Keys
from async_jobs_local.moto_patches import S3_WRITE_LOCK, atomic_conditional_writes

from .conftest import BUCKET


class Killed(BaseException):
    """The worker's process ended mid-message (BaseException: no handler in the engine sees it)."""


@dataclass
class ListQueue:
    """The queue as a list of pending message bodies; sends may be repeated (at-least-once)."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send_split(self, job_id: str, *, owner: str | None, part: int | None = None) -> None:
        with self.lock:
            self.pending.append({"kind": "split", "job_id": job_id})

    def send_chunks(
        self, job_id: str, messages: Sequence[dict[str, Any]], *, owner: str | None, attempt: int = 0
    ) -> None:
        with self.lock:
            self.pending.extend(messages)

    def send_retry(self, job_id: str, attempt: int, *, owner: str | None) -> None:
        with self.lock:
            self.pending.append({"kind": "split", "job_id": job_id})


class KillSwitch:
    """An S3 client that raises Killed on its n-th call (a Lambda timeout at that point)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.calls_left: int | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._s3, name)
        if not callable(attribute) or name.startswith("_") or name == "generate_presigned_url":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.calls_left is not None:
                if self.calls_left == 0:
                    raise Killed(name)
                self.calls_left -= 1
            return attribute(*args, **kwargs)

        return call


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with mock_aws(), atomic_conditional_writes():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def reads_atomic(s3: Any) -> None:
    """moto closes an object's buffer when it is overwritten, so a GET racing a PUT of the same key
    can fail in-process (AWS never does): reads take the lock moto's patched writes hold."""
    from moto.s3.responses import S3Response

    if getattr(S3Response.get_object, "_atomic", False):
        return
    original = S3Response.get_object

    def get_object(self: Any) -> Any:
        with S3_WRITE_LOCK:
            return original(self)

    get_object._atomic = True  # type: ignore[attr-defined]
    S3Response.get_object = get_object  # type: ignore[method-assign]


Step = tuple[str, int, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["deliver", "duplicate", "kill", "twice_at_once", "two_at_once", "cancel", "retry"]),
        st.integers(0, 1_000),  # which pending message
        st.integers(0, 12),  # S3 calls before a kill
    ),
    max_size=40,
)


class Run:
    """One job and its queue; each delivery gets a fresh engine (a fresh Lambda environment)."""

    def __init__(self, s3: Any, rows: list[bool], chunk_size: int) -> None:
        # imported here, not at collection: the Powertools singletons read their environment
        # (metrics namespace) when first imported, which must be inside the tests' environment
        from async_jobs.retries import RetryService
        from async_jobs.service import JobViews, SubmitService

        self.s3, self.chunk_size = s3, chunk_size
        self.queue = ListQueue()
        self.store = JobStore(s3, BUCKET, base_delay=0.0, max_delay=0.001)
        views = JobViews(self.store, retry_after_seconds=1)
        self.retries = RetryService(self.store, self.queue, views, authorization="NONE")  # type: ignore[arg-type]
        self.service = SubmitService(
            self.store,
            self.queue,  # type: ignore[arg-type]
            views,
            authorization="NONE",
            max_records_per_job=1_000,
            max_body_bytes=1_000_000,
            upload_url_ttl_seconds=60,
        )
        # records marked False fail the check: a mix of succeeded and failed records
        body = b"".join(json.dumps({"i": i, "ok": ok}).encode() + b"\n" for i, ok in enumerate(rows))
        outcome = self.service.submit(
            body=body, content_type="application/x-ndjson", idempotency_key=None, owner=None, url_for=str
        )
        assert outcome.body is not None
        self.job_id = str(outcome.body["job_id"])

    def take(self, index: int, keep: bool) -> dict[str, Any] | None:
        with self.queue.lock:
            pending = self.queue.pending
            if not pending:
                return None
            return pending[index % len(pending)] if keep else pending.pop(index % len(pending))

    def deliver(self, message: dict[str, Any], kill_after: int | None = None) -> bool:
        from async_jobs.engine import Engine, EngineSettings
        from async_jobs.sinks.s3 import S3Sink

        switch = KillSwitch(self.s3)
        switch.calls_left = kill_after
        store = JobStore(switch, BUCKET, base_delay=0.0, max_delay=0.001)
        engine = Engine(
            store,
            self.queue,  # type: ignore[arg-type]
            S3Sink(store),
            EngineSettings(
                chunk_size=self.chunk_size,
                tolerated_failure_percent=50.0,
                max_receive_count=5,
                dispatch_slice=3,
            ),
            check=lambda record: None if record["ok"] else "not ok",
        )
        try:
            engine.handle(message, 1)
        except Killed:
            return False
        return True

    def at_once(self, *messages: dict[str, Any] | None) -> None:
        threads = [threading.Thread(target=self.deliver, args=(m,)) for m in messages if m]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def play(self, action: str, index: int, kill_after: int) -> None:
        if action == "cancel":
            if _cancellable(self.store, self.job_id):
                self.service.cancel(self.job_id, None, str)
            return
        if action == "retry":
            found = self.store.get_state(self.job_id)
            if found is not None and model.retry_problem(found[0]) is None:
                self.retries.retry(self.job_id, None, str)
            return
        message = self.take(index, keep=action != "deliver")
        if message is None:
            return
        if action == "deliver" and not self.deliver(message):
            self.queue.pending.append(message)
        elif action == "duplicate":
            self.deliver(message)
        elif action == "kill":
            self.deliver(message, kill_after)  # stays pending: SQS redelivers it
        elif action == "twice_at_once":
            self.at_once(message, message)
        elif action == "two_at_once":
            self.at_once(message, self.take(index + 1, keep=True))

    def drain(self) -> None:
        """Every message is eventually delivered (once more, whatever happened before)."""
        while (message := self.take(0, keep=False)) is not None:
            assert self.deliver(message)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.booleans(), min_size=1, max_size=24),
    chunk_size=st.integers(1, 6),
    schedule=steps,
)
# found by this test: a chunk's delivery dies after its sink write, before its marker (the 6th S3
# call of the delivery: state, plan, input, started, sink, marker); the job is
# cancelled; the redelivery must not skip the chunk whose rows are in the sink
@example(
    rows=[False, True],
    chunk_size=1,
    schedule=[("deliver", 0, 0), ("deliver", 0, 0), ("kill", 0, 5), ("cancel", 0, 0)],
)
# a retry, then a cancel before the retried chunk runs: the chunk's first run left its succeeded
# record in the sink, so the skipped re-run must keep that run's counts (counting the chunk
# skipped left a sink row the job did not count as succeeded)
@example(
    rows=[True, False],
    chunk_size=2,
    schedule=[
        ("deliver", 0, 0),
        ("deliver", 0, 0),
        ("retry", 0, 0),
        ("deliver", 0, 0),
        ("cancel", 0, 0),
        ("deliver", 0, 0),
    ],
)
def test_any_delivery_order_keeps_the_invariants(
    s3: Any, rows: list[bool], chunk_size: int, schedule: list[Step]
) -> None:
    reads_atomic(s3)
    run = Run(s3, rows, chunk_size)
    for step in schedule:
        run.play(*step)
    run.drain()

    state = run.store.get_state(run.job_id)[0]  # type: ignore[index]
    assert model.is_terminal(state["status"]), state["status"]
    indexes = _sink_indexes(s3, run.job_id)
    assert len(indexes) == len(set(indexes)), "a record is in the sink twice"
    if state["chunks_total"] is None:
        # cancelled before its split: nothing planned, nothing run, nothing counted
        assert state["status"] == "cancelled" and model.processed_records(state) == 0 and indexes == []
        return
    total = len(rows)
    assert model.processed_records(state) + state["skipped_records"] == total
    assert state["succeeded_records"] + state["failed_records"] + state["skipped_records"] == total
    assert state["done"] == [[0, state["chunks_total"]]]
    assert len(indexes) == state["succeeded_records"], "the sink holds exactly the succeeded records"
    if state["status"] != "cancelled":
        assert state["failed_records"] == rows.count(False)
        assert sorted(indexes) == [i for i, ok in enumerate(rows) if ok]


def _cancellable(store: JobStore, job_id: str) -> bool:
    found = store.get_state(job_id)
    return found is not None and not model.is_terminal(model.effective_status(found[0], model.now()))


def _sink_indexes(s3: Any, job_id: str) -> list[int]:
    indexes: list[int] = []
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=Keys.results_prefix(job_id))
    for item in listing.get("Contents", []):
        data = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        indexes.extend(json.loads(line)["record_index"] for line in data.splitlines())
    return indexes
