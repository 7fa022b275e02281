"""What one worker invocation reads once and what it accounts at its end.

A worker invocation takes a batch of messages. The job's state and its plan are read once per
job per invocation (`JobReads`), and the chunk completions of the batch are accounted together
at its end (`Pending`), one compare-and-swap per accounting segment touched, instead of one
state read, one plan read and one state write per chunk. Each thread has its own invocation:
one Lambda environment runs one invocation at a time, the benchmark runs many in one process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from async_jobs.chunks import ChunkMarker
from async_jobs.planner import PLAN_LINE_BYTES, Chunk, chunk_from_line
from async_jobs.store import JobStore, Keys

# A plan of up to this many chunks is read whole (128 bytes a chunk: 512 KiB); a larger one a
# window of this many lines from the first chunk asked for (batches hold neighbouring chunks).
PLAN_WINDOW = 4096


@dataclass
class JobReads:
    state: dict[str, Any]
    etag: str | None = None  # of `state` as read or last written: saves a read before a write
    plan_lines: dict[int, bytes] = field(default_factory=dict)


@dataclass
class Invocation:
    jobs: dict[str, JobReads] = field(default_factory=dict)
    # (message id or None, marker): completions to account at the invocation's end
    pending: list[tuple[str | None, ChunkMarker]] = field(default_factory=list)


class Invocations:
    """The current thread's invocation, if a batch is open."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def current(self) -> Invocation | None:
        return getattr(self._local, "invocation", None)

    def open(self) -> Invocation:
        invocation = Invocation()
        self._local.invocation = invocation
        return invocation

    def close(self) -> Invocation | None:
        invocation = self.current
        self._local.invocation = None
        return invocation


def planned_chunk(
    store: JobStore, reads: JobReads | None, job_id: str, number: int, chunks_total: int
) -> Chunk | None:
    """Chunk `number` of the job's plan, read through the invocation's plan lines."""
    if reads is None or number not in reads.plan_lines:
        lines = _read_plan_lines(store, job_id, number, chunks_total)
        if reads is None:
            line = lines.get(number)
            return chunk_from_line(line) if line else None
        reads.plan_lines.update(lines)
    line = reads.plan_lines.get(number)
    return chunk_from_line(line) if line else None


def _read_plan_lines(store: JobStore, job_id: str, number: int, chunks_total: int) -> dict[int, bytes]:
    first = 0 if chunks_total <= PLAN_WINDOW else number
    last = min(chunks_total, first + PLAN_WINDOW)
    data = store.get_range_or_none(
        Keys.plan_lines(job_id), (first + 1) * PLAN_LINE_BYTES, (last + 1) * PLAN_LINE_BYTES
    )
    if not data:
        return {}
    found: dict[int, bytes] = {}
    for offset in range(0, len(data), PLAN_LINE_BYTES):
        line = data[offset : offset + PLAN_LINE_BYTES]
        if line.strip():
            found[first + offset // PLAN_LINE_BYTES] = line
    return found
