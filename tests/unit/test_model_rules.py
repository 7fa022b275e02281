"""The job state rules as pure functions: no AWS, no moto."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from async_jobs import model
from async_jobs.chunks import ChunkMarker, ChunkRef
from async_jobs.model import JobStatus

MOMENT = datetime(2030, 1, 1, tzinfo=UTC)
JOB = "0b8f6c3e-6a9e-4f5e-9d1c-3d8c2c6f9a10"


def planned_state(chunks: int, per_chunk: int = 10, status: JobStatus = JobStatus.RUNNING) -> dict[str, Any]:
    state = model.new_state(
        job_id=JOB,
        owner=None,
        status=JobStatus.QUEUED,
        input_key="k",
        total_records=None,
        metadata=None,
        moment=MOMENT,
    )
    model.record_plan(
        state, chunks_total=chunks, total_records=chunks * per_chunk, results=None, moment=MOMENT
    )
    if status != JobStatus.QUEUED:
        model.transition(state, status, MOMENT)
    return state


def ref(number: int, per_chunk: int = 10) -> ChunkRef:
    return ChunkRef(JOB, number, number * 100, number * 100 + 100, number * per_chunk, per_chunk)


def test_ranges_merge_and_read_version_1_lists() -> None:
    spans: list[list[int]] = []
    for number in (5, 3, 4, 0, 9, 1):
        spans = model.range_add(spans, number)
    assert spans == [[0, 2], [3, 6], [9, 10]]
    assert model.range_count(spans) == 6
    assert [n for n in range(11) if model.range_contains(spans, n)] == [0, 1, 3, 4, 5, 9]
    assert model.range_add(spans, 4) == spans
    assert model.ranges([3, 0, 1, 4]) == [[0, 2], [3, 5]]  # a version-1 state's list
    assert model.ranges([]) == []


def test_a_chunk_is_added_once_and_the_job_finishes_on_the_last() -> None:
    state = planned_state(3)
    assert model.add_chunk(state, ChunkMarker.processed(ref(0), 10, []), 0.0, MOMENT) == "added"
    assert model.add_chunk(state, ChunkMarker.processed(ref(0), 10, []), 0.0, MOMENT) == "duplicate"
    assert model.add_chunk(state, ChunkMarker.skipped_all(ref(2)), 0.0, MOMENT) == "added"
    errors = [model.record_error(12, "bad")]
    assert model.add_chunk(state, ChunkMarker.processed(ref(1), 9, errors), 50.0, MOMENT) == "finished"
    assert (state["succeeded_records"], state["failed_records"], state["skipped_records"]) == (19, 1, 10)
    assert state["status"] == JobStatus.COMPLETED_WITH_ERRORS and state["finished_at"]
    assert state["errors"] == errors and state["errors_report"] == "pending"


def test_a_job_does_not_finish_while_records_are_unaccounted() -> None:
    # GIVEN a plan of 2 chunks but a total that the chunk counts do not reach
    state = planned_state(2)
    state["total_records"] = 25
    model.add_chunk(state, ChunkMarker.processed(ref(0), 10, []), 0.0, MOMENT)
    # WHEN every chunk is accounted
    model.add_chunk(state, ChunkMarker.processed(ref(1), 10, []), 0.0, MOMENT)
    # THEN the job does not end (20 of 25 accounted)
    assert state["status"] == JobStatus.RUNNING


def test_processed_marker_must_account_every_record() -> None:
    with pytest.raises(ValueError):
        ChunkMarker.processed(ref(0), 5, [])


def test_claim_moves_queued_to_running_and_refuses_after_cancel() -> None:
    state = planned_state(1, status=JobStatus.QUEUED)
    assert model.claim_chunk(state, MOMENT) and model.may_run_chunks(state) and state["started_at"]
    assert not model.claim_chunk(state, MOMENT) and model.may_run_chunks(state)
    cancelled = planned_state(1, status=JobStatus.QUEUED)
    model.transition(cancelled, JobStatus.CANCELLED, MOMENT)
    assert not model.claim_chunk(cancelled, MOMENT) and not model.may_run_chunks(cancelled)


def test_record_plan_fails_empty_and_oversized_inputs_with_a_reason() -> None:
    empty = planned_state(0, status=JobStatus.QUEUED)
    assert empty["status"] == JobStatus.FAILED and "no records" in empty["reason"]
    state = model.new_state(
        job_id=JOB,
        owner=None,
        status=JobStatus.QUEUED,
        input_key="k",
        total_records=None,
        metadata=None,
        moment=MOMENT,
        max_records=5,
    )
    assert model.record_plan(state, chunks_total=1, total_records=6, results=None, moment=MOMENT)
    assert (state["status"], state["failed_records"]) == (JobStatus.FAILED, 6)
    assert "at most 5" in state["reason"]
    assert not model.record_plan(state, chunks_total=1, total_records=6, results=None, moment=MOMENT)


def _peak_state_size(order: list[int]) -> tuple[int, int]:
    """(largest, final) JSON size of the state while the chunks in `order` complete."""
    state = planned_state(len(order), per_chunk=1)
    largest = 0
    for step, number in enumerate(order):
        model.add_chunk(state, ChunkMarker.processed(ref(number, 1), 1, []), 0.0, MOMENT)
        if step % 101 == 0:
            largest = max(largest, len(json.dumps(state)))
    assert state["status"] == JobStatus.SUCCEEDED and state["done"] == [[0, len(order)]]
    return largest, len(json.dumps(state))


def test_state_stays_small_at_10000_chunks() -> None:
    # 10,000 chunks completing in order (SQS's usual order): the state never grows
    largest, final = _peak_state_size(list(range(10_000)))
    assert largest < 1_500 and final < 1_500, (largest, final)
    # a random order is bounded by the gaps still open, and ends as small as it started
    largest, final = _peak_state_size(random.Random(7).sample(range(2_000), 2_000))
    assert largest < 12_000 and final < 1_500, (largest, final)


def test_the_split_streams_a_large_input_in_bounded_memory() -> None:
    # GIVEN 256 MiB of NDJSON arriving in 1 MiB pieces (as the split reads an upload)
    import time
    import tracemalloc

    from async_jobs.planner import plan_chunks

    line = b'{"id": 123456, "name": "item-123456", "value": 3.14159, "tags": ["a", "b"]}\n'
    piece = line * (1024 * 1024 // len(line))
    started = time.perf_counter()
    plan = plan_chunks((piece for _ in range(256)), 500)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    plan_chunks((piece for _ in range(64)), 500)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # THEN every record is planned, memory holds the plan (not the input), and the pace
    # leaves a 1 GiB upload well inside a worker timeout
    assert plan.total_records == 256 * (1024 * 1024 // len(line))
    assert peak < 4 * 1024 * 1024, peak
    assert 256 / seconds > 20, f"{256 / seconds:.0f} MiB/s"
