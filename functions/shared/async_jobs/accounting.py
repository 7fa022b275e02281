"""Chunk accounting spread over state segments, rolled up into the job's state.

One object per job takes every completion in the simplest design, and a compare-and-swap on one
S3 object commits about one update per round trip, whatever the worker count. Here a chunk's
completion goes to its segment, jobs/{id}/state/seg-{k}[.a{attempt}].json, which holds
SEGMENT_CHUNKS chunks; a worker adds all the completions of one invocation that fall in a
segment in one compare-and-swap. When a segment holds every chunk it expects, its counts are
rolled into state.json in one more compare-and-swap, once (the state's `done` set says which
chunks are in). The job ends in the roll-up that brings the last chunk in.

A segment expects the chunks of its range that the state does not count yet: all of them in a
job's first run, the failed chunks a retry runs again in a later attempt (the retry removed
them from `done`). A segment of an older attempt never rolls up: the roll-up compares attempts.
The status function sums the open segments, so progress stays live between roll-ups.
The rules are pure functions of the stored dicts; `engine` applies them through the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from async_jobs import model

if TYPE_CHECKING:
    from async_jobs.chunks import ChunkMarker

SEGMENT_CHUNKS = 50
# The status function reads at most this many open segments (the lowest ones): a bound on its
# reads per request; progress beyond them shows once they roll up.
MAX_OPEN_SEGMENTS_READ = 8


def segment_of(chunk: int) -> int:
    return chunk // SEGMENT_CHUNKS


def segment_range(segment: int, chunks_total: int) -> range:
    return range(segment * SEGMENT_CHUNKS, min((segment + 1) * SEGMENT_CHUNKS, chunks_total))


def segments(chunks_total: int) -> int:
    return -(-chunks_total // SEGMENT_CHUNKS)


def expected(state: dict[str, Any], segment: int) -> list[int]:
    """The chunks of a segment that the state does not count yet."""
    done = model.ranges(state.get("done"))
    total = int(state.get("chunks_total") or 0)
    return [n for n in segment_range(segment, total) if not model.range_contains(done, n)]


def new_segment(attempt: int) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "done": [],
        "succeeded": 0,
        "failed": 0,
        "skipped": 0,
        "errors": [],
        "chunks_with_errors": [],
    }


def add_markers(segment: dict[str, Any], markers: Iterable[ChunkMarker]) -> bool:
    """Add each marker whose chunk the segment does not hold yet; whether anything changed."""
    changed = False
    done = model.ranges(segment["done"])
    with_errors = model.ranges(segment["chunks_with_errors"])
    for marker in markers:
        if model.range_contains(done, marker.chunk):
            continue
        done = model.range_add(done, marker.chunk)
        segment["succeeded"] += marker.succeeded
        segment["failed"] += marker.failed
        segment["skipped"] += marker.skipped
        if marker.errors:
            segment["errors"] = model.merge_errors(
                segment["errors"], list(marker.errors[: model.MAX_STATE_ERRORS])
            )
            with_errors = model.range_add(with_errors, marker.chunk)
        changed = True
    segment["done"], segment["chunks_with_errors"] = done, with_errors
    return changed


def is_complete(segment: dict[str, Any], wanted: Sequence[int]) -> bool:
    done = model.ranges(segment["done"])
    return bool(wanted) and all(model.range_contains(done, n) for n in wanted)


@dataclass(frozen=True)
class Rolled:
    """What a roll-up did: "stale" (another attempt), "duplicate", "added" or "finished"."""

    outcome: str

    @property
    def wrote(self) -> bool:
        return self.outcome in ("added", "finished")


def roll_up(
    state: dict[str, Any], segment: dict[str, Any], tolerated_failure_percent: float, moment: datetime
) -> Rolled:
    """Add a complete segment's counts to the job's state once (pure; inside a compare-and-swap).

    Everything written is computed from `state` as read in the swap; a segment of another
    attempt than the state's is refused."""
    if int(state.get("attempt") or 0) != int(segment["attempt"]):
        return Rolled("stale")
    chunks = model.chunk_numbers(model.ranges(segment["done"]))
    done = model.ranges(state.get("done"))
    if not chunks or any(model.range_contains(done, n) for n in chunks):
        return Rolled("duplicate")
    finished = model.add_counts(
        state,
        chunks=chunks,
        succeeded=int(segment["succeeded"]),
        failed=int(segment["failed"]),
        skipped=int(segment["skipped"]),
        errors=list(segment["errors"]),
        chunks_with_errors=model.chunk_numbers(model.ranges(segment["chunks_with_errors"])),
        tolerated_failure_percent=tolerated_failure_percent,
        moment=moment,
    )
    return Rolled("finished" if finished else "added")


def open_segments(state: dict[str, Any]) -> list[int]:
    """The segments whose chunks the state does not all count yet (the lowest first, bounded)."""
    total = state.get("chunks_total")
    if total is None or model.is_terminal(str(state["status"])):
        return []
    found = [k for k in range(segments(int(total))) if expected(state, k)]
    return found[:MAX_OPEN_SEGMENTS_READ]


def live_counts(segments_read: Iterable[dict[str, Any] | None], attempt: int) -> tuple[int, int]:
    """(succeeded, failed) in open segments of the current attempt, for the job's progress."""
    succeeded = failed = 0
    for segment in segments_read:
        if segment and int(segment.get("attempt") or 0) == attempt:
            succeeded += int(segment["succeeded"])
            failed += int(segment["failed"])
    return succeeded, failed
