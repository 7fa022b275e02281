"""Job model: statuses, transitions, the stored state and the public job resource."""

from __future__ import annotations

import bisect
import copy
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from async_jobs.chunks import ChunkMarker

MAX_STATE_ERRORS = 20
MAX_ERROR_MESSAGE = 500
# 2: `done` and `chunks_with_errors` are sorted half-open ranges [[start, end), ...] instead of
# lists of chunk numbers, so the state stays small at any chunk count. Version 1 states (lists)
# are read as ranges.
STATE_VERSION = 2
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.COMPLETED_WITH_ERRORS,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
    }
)

# Every status change the engine makes goes through `transition`, which refuses the rest.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.AWAITING_UPLOAD: frozenset(
        {JobStatus.QUEUED, JobStatus.CANCELLED, JobStatus.EXPIRED, JobStatus.FAILED}
    ),
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED} | TERMINAL),
    JobStatus.RUNNING: frozenset({JobStatus.CANCELLING} | TERMINAL - {JobStatus.EXPIRED}),
    JobStatus.CANCELLING: frozenset({JobStatus.CANCELLED}),
    # a retry re-runs a terminal job's failed chunks (`retry_chunks`)
    JobStatus.FAILED: frozenset({JobStatus.RUNNING}),
    JobStatus.COMPLETED_WITH_ERRORS: frozenset({JobStatus.RUNNING}),
}
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.COMPLETED_WITH_ERRORS})
# An upload slot's object may land this long after `expires_at`: S3 checks a presigned URL when
# the PUT starts, so a PUT begun just before the expiry lands after it. The slot answer states
# the deadline (`upload.complete_by`); the landing check and the expiry apply it.
UPLOAD_LANDING_MARGIN_SECONDS = 60


# `notify` in the state: the terminal transition's notifications still have to be queued
# (pending), or were (queued). None until the job first ends.
NOTIFY_PENDING = "pending"
NOTIFY_QUEUED = "queued"


class InvalidTransition(Exception):
    """A status change the model does not allow."""


def now() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(value: str) -> bool:
    """True for a canonical lower-case UUID; checked before an id ever becomes part of a key."""
    return bool(_UUID_RE.match(value))


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def transition(state: dict[str, Any], target: JobStatus, moment: datetime) -> None:
    current = JobStatus(state["status"])
    if current == target:
        return
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"{current} -> {target}")
    state["status"] = target.value
    stamp = isoformat(moment)
    if target == JobStatus.RUNNING and not state.get("started_at"):
        state["started_at"] = stamp
    if target in TERMINAL:
        state["finished_at"] = stamp
        ended(state)


def ended(state: dict[str, Any]) -> None:
    """Every terminal transition asks for its notifications (`notify.py`) in the same write: the
    engine queues them once it has stored this state, and again after a crash (see `notify`)."""
    state["notify"] = NOTIFY_PENDING
    callback = state.get("callback")
    if callback:
        state["callback"] = new_callback(str(callback["url"]))


def new_state(
    *,
    job_id: str,
    owner: str | None,
    status: JobStatus,
    input_key: str,
    total_records: int | None,
    metadata: dict[str, Any] | None,
    moment: datetime,
    expires_at: datetime | None = None,
    max_records: int | None = None,
    callback_url: str | None = None,
    self_url: str | None = None,
) -> dict[str, Any]:
    stamp = isoformat(moment)
    return {
        "state_version": STATE_VERSION,
        "job_id": job_id,
        "owner": owner,
        "status": status.value,
        "created_at": stamp,
        "updated_at": stamp,
        "started_at": None,
        "finished_at": None,
        "expires_at": isoformat(expires_at) if expires_at else None,
        "input_key": input_key,
        # the uploaded object the plan was cut from; every chunk reads exactly this version
        "input_version": None,
        "input_etag": None,
        # the record limit at submit time, enforced on uploads once their size is known
        "max_records": max_records,
        # why a job failed as a whole (not record by record); shown in the job resource
        "reason": None,
        "metadata": metadata,
        "total_records": total_records,
        "succeeded_records": 0,
        "failed_records": 0,
        "skipped_records": 0,
        "errors": [],
        # plan: None until the split step has cut the input into chunks
        "chunks_total": None,
        "chunks_dispatched": False,
        # chunk messages sent so far (a split dispatches in slices, see Engine._dispatch)
        "dispatched_through": 0,
        "results": None,
        # the retry attempt: a retry's chunks run under keys of their own (`retry_chunks`)
        "attempt": 0,
        # chunks a retry asked the worker to send again (ranges), cleared once sent
        "rerun": [],
        # chunks accounted for (done, failed for good, or skipped by cancellation), as ranges
        "done": [],
        "chunks_with_errors": [],
        "errors_report": None,
        # the job resource's own URL, for notifications sent where no request gives it
        "self_url": self_url,
        "callback": new_callback(callback_url) if callback_url else None,
        "notify": None,
    }


def new_callback(url: str) -> dict[str, Any]:
    """The delivery state of a job's callback, as the job resource shows it."""
    return {"url": url, "status": "pending", "attempts": 0, "last_attempt_at": None, "last_status": None}


def record_callback_attempt(
    state: dict[str, Any], *, attempt: int, outcome: str, http_status: int | None, moment: datetime
) -> bool:
    """One delivery attempt's outcome (`delivered`, `failed` or `pending` for a retry to come).

    Attempts only go up and a final outcome stays: a late duplicate changes nothing."""
    callback = state.get("callback")
    if not callback or callback["status"] != "pending" or int(callback["attempts"]) >= attempt:
        return False
    callback.update(
        attempts=attempt, status=outcome, last_attempt_at=isoformat(moment), last_status=http_status
    )
    return True


def merge_errors(existing: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first MAX_STATE_ERRORS errors by record index."""
    merged = sorted(existing + new, key=lambda e: (e.get("record_index") is None, e.get("record_index") or 0))
    return merged[:MAX_STATE_ERRORS]


def record_error(record_index: int, message: str) -> dict[str, Any]:
    return {"record_index": record_index, "message": message[:MAX_ERROR_MESSAGE]}


def final_status(state: dict[str, Any], tolerated_failure_percent: float) -> JobStatus:
    """Outcome once every chunk is accounted for.

    `completed_with_errors` when the failed share is at or below the tolerated percentage
    (inclusive), `failed` above it; a job with no records at all fails.
    """
    if state["status"] in (JobStatus.CANCELLING, JobStatus.CANCELLED):
        return JobStatus.CANCELLED
    total = state.get("total_records") or 0
    failed = state["failed_records"]
    if total == 0:
        return JobStatus.FAILED
    if failed == 0:
        return JobStatus.SUCCEEDED
    if failed * 100.0 / total <= tolerated_failure_percent:
        return JobStatus.COMPLETED_WITH_ERRORS
    return JobStatus.FAILED


# -- chunk sets as ranges ------------------------------------------------------------------------
def ranges(value: Any) -> list[list[int]]:
    """A chunk set as sorted, merged half-open ranges; a version-1 list of numbers converts."""
    items = list(value or [])
    if items and all(isinstance(item, int) for item in items):
        result: list[list[int]] = []
        for number in sorted(set(items)):
            result = range_add(result, number)
        return result
    return [[int(a), int(b)] for a, b in items]


def range_contains(spans: list[list[int]], number: int) -> bool:
    position = bisect.bisect_right([start for start, _ in spans], number) - 1
    return position >= 0 and spans[position][0] <= number < spans[position][1]


def range_add(spans: list[list[int]], number: int) -> list[list[int]]:
    """A new list with `number` added, neighbours merged (so n consecutive chunks are one pair)."""
    result = [list(span) for span in spans]
    position = bisect.bisect_right([start for start, _ in result], number)
    if position and result[position - 1][1] > number:
        return result  # already inside the span before
    joins_left = position > 0 and result[position - 1][1] == number
    joins_right = position < len(result) and result[position][0] == number + 1
    if joins_left and joins_right:
        result[position - 1][1] = result[position][1]
        del result[position]
    elif joins_left:
        result[position - 1][1] = number + 1
    elif joins_right:
        result[position][0] = number
    else:
        result.insert(position, [number, number + 1])
    return result


def range_remove(spans: list[list[int]], number: int) -> list[list[int]]:
    """A new list without `number` (a span holding it is cut in two)."""
    result: list[list[int]] = []
    for start, end in spans:
        if start <= number < end:
            result += [span for span in ([start, number], [number + 1, end]) if span[0] < span[1]]
        else:
            result.append([start, end])
    return result


def range_count(spans: list[list[int]]) -> int:
    return sum(end - start for start, end in spans)


def is_chunk_done(state: dict[str, Any], number: int) -> bool:
    return range_contains(ranges(state.get("done")), number)


def all_chunks_accounted(state: dict[str, Any]) -> bool:
    total = state.get("chunks_total")
    return total is not None and range_count(ranges(state.get("done"))) >= total


def records_accounted(state: dict[str, Any]) -> int:
    return (
        int(state["succeeded_records"])
        + int(state["failed_records"])
        + int(state.get("skipped_records") or 0)
    )


# -- state rules (pure: the engine applies them inside a compare-and-swap) -----------------------
def claim_chunk(state: dict[str, Any], moment: datetime) -> bool:
    """A chunk about to write to the sink claims the job's start: queued -> running.

    Returns whether the state changed. A cancel that reads the state afterwards sees
    `started_at` and answers `cancelling` (the chunk will finish), never `cancelled`.
    """
    if state["status"] != JobStatus.QUEUED:
        return False
    transition(state, JobStatus.RUNNING, moment)
    return True


def may_run_chunks(state: dict[str, Any]) -> bool:
    return state["status"] == JobStatus.RUNNING


def record_plan(
    state: dict[str, Any],
    *,
    chunks_total: int,
    total_records: int,
    results: str | None,
    moment: datetime,
) -> bool:
    """The split's outcome, once. A job with no records, or more than its limit, fails here."""
    if state["chunks_total"] is not None or is_terminal(state["status"]):
        return False
    state["chunks_total"] = chunks_total
    state["total_records"] = total_records
    state["results"] = results
    limit = state.get("max_records")
    if total_records == 0:
        fail_job(state, "The input holds no records.", moment)
    elif limit is not None and total_records > int(limit):
        fail_job(
            state,
            f"The input holds {total_records} records; a job holds at most {limit}. "
            "Split the input into several jobs.",
            moment,
        )
    return True


def fail_job(state: dict[str, Any], reason: str, moment: datetime) -> bool:
    """The job as a whole failed: every record not already succeeded counts as failed."""
    if is_terminal(state["status"]):
        return False
    if state["status"] == JobStatus.CANCELLING:
        transition(state, JobStatus.CANCELLED, moment)
        return True
    total = state.get("total_records") or 0
    state["failed_records"] = max(
        0, total - state["succeeded_records"] - int(state.get("skipped_records") or 0)
    )
    state["reason"] = reason[:MAX_ERROR_MESSAGE]
    transition(state, JobStatus.FAILED, moment)
    return True


def add_chunk(
    state: dict[str, Any], marker: ChunkMarker, tolerated_failure_percent: float, moment: datetime
) -> str:
    """Add one chunk's marker to the job once: "duplicate", "added" or "finished"."""
    if range_contains(ranges(state.get("done")), marker.chunk):
        return "duplicate"
    finished = add_counts(
        state,
        chunks=[marker.chunk],
        succeeded=marker.succeeded,
        failed=marker.failed,
        skipped=marker.skipped,
        errors=list(marker.errors[:MAX_STATE_ERRORS]),
        chunks_with_errors=[marker.chunk] if marker.errors else [],
        tolerated_failure_percent=tolerated_failure_percent,
        moment=moment,
    )
    return "finished" if finished else "added"


def add_counts(
    state: dict[str, Any],
    *,
    chunks: list[int],
    succeeded: int,
    failed: int,
    skipped: int,
    errors: list[dict[str, Any]],
    chunks_with_errors: list[int],
    tolerated_failure_percent: float,
    moment: datetime,
) -> bool:
    """Count chunks not yet counted (the caller checked) with their summed counts; True when this
    ended the job. The job ends only when every planned chunk is accounted for and the accounted
    records (succeeded + failed + skipped) equal its total."""
    state["state_version"] = STATE_VERSION
    done = ranges(state.get("done"))
    for number in chunks:
        done = range_add(done, number)
    state["done"] = done
    state["succeeded_records"] += succeeded
    state["failed_records"] += failed
    state["skipped_records"] = int(state.get("skipped_records") or 0) + skipped
    with_errors = ranges(state.get("chunks_with_errors"))
    if errors:
        state["errors"] = merge_errors(state["errors"], errors)
    for number in chunks_with_errors:
        with_errors = range_add(with_errors, number)
    state["chunks_with_errors"] = with_errors
    finished = False
    if (
        all_chunks_accounted(state)
        and records_accounted(state) == (state.get("total_records") or 0)
        and not is_terminal(state["status"])
    ):
        target = final_status(state, tolerated_failure_percent)
        if state["status"] == JobStatus.QUEUED and target != JobStatus.CANCELLED:
            transition(state, JobStatus.RUNNING, moment)  # sets started_at
        transition(state, target, moment)
        finished = True
    if all_chunks_accounted(state) and with_errors and not state.get("errors_report"):
        state["errors_report"] = "pending"
    return finished


def retry_problem(state: dict[str, Any]) -> str | None:
    """Why the job cannot be retried now (the 409's detail), or None."""
    status = str(state["status"])
    if not is_terminal(status):
        return f"The job is {status}; only a job that has ended can be retried."
    if status not in RETRYABLE or not ranges(state.get("chunks_with_errors")):
        return f"The job is {status} with no failed chunk to run again."
    return None


@dataclass(frozen=True)
class Rerun:
    """A chunk to run again: its records and how the job counted them."""

    chunk: int
    first_record: int
    count: int
    failed: int


def retry_chunks(state: dict[str, Any], reruns: list[Rerun], moment: datetime) -> None:
    """Redrive a terminal job's failed chunks, as Step Functions redrives a map run.

    Each chunk is no longer counted (its records neither succeeded nor failed), the job is
    `running` again and `attempt` goes up: chunk markers of the new attempt have keys of their
    own, so the markers of the failed run do not block it. `rerun` asks the worker to send them.
    """
    problem = retry_problem(state)
    if problem is not None:
        raise InvalidTransition(problem)
    done = ranges(state.get("done"))
    with_errors = ranges(state.get("chunks_with_errors"))
    rerun: list[list[int]] = []
    for item in reruns:
        if not range_contains(with_errors, item.chunk):
            raise ValueError(f"chunk {item.chunk} has no failed record")
        done = range_remove(done, item.chunk)
        with_errors = range_remove(with_errors, item.chunk)
        rerun = range_add(rerun, item.chunk)
        state["failed_records"] -= item.failed
        state["succeeded_records"] -= item.count - item.failed
        state["errors"] = [
            e
            for e in state["errors"]
            if not item.first_record <= int(e["record_index"]) < item.first_record + item.count
        ]
    if state["failed_records"] < 0 or state["succeeded_records"] < 0:
        raise ValueError("a retry uncounts only records the job counted")
    state["done"] = done
    state["chunks_with_errors"] = with_errors
    state["rerun"] = rerun
    state["attempt"] = int(state.get("attempt") or 0) + 1
    state["errors_report"] = None
    state["reason"] = None
    transition(state, JobStatus.RUNNING, moment)
    state["finished_at"] = None
    # the re-run's end is a terminal transition of its own, notified again
    state["notify"] = None


def chunk_numbers(spans: list[list[int]]) -> list[int]:
    return [number for start, end in spans for number in range(start, end)]


def upload_deadline(state: dict[str, Any]) -> datetime | None:
    """When an upload slot's object must have landed: `expires_at` plus the landing margin."""
    expires_at = state.get("expires_at")
    if not expires_at:
        return None
    return parse_time(expires_at) + timedelta(seconds=UPLOAD_LANDING_MARGIN_SECONDS)


def effective_status(state: dict[str, Any], moment: datetime) -> str:
    """The status a reader sees: an upload slot past its landing deadline reads as `expired`."""
    status = str(state["status"])
    deadline = upload_deadline(state)
    if status == JobStatus.AWAITING_UPLOAD and deadline is not None and deadline <= moment:
        return JobStatus.EXPIRED.value
    return status


def processed_records(state: dict[str, Any], live: tuple[int, int] = (0, 0)) -> int:
    """Succeeded and failed records: the state's, plus `live` (succeeded, failed) of the
    accounting segments not yet rolled into it (`accounting.live_counts`)."""
    return int(state["succeeded_records"]) + int(state["failed_records"]) + live[0] + live[1]


def render_job(
    state: dict[str, Any],
    *,
    self_url: str,
    errors_url: str | None,
    moment: datetime,
    live: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """The public job resource, with exactly the fields of the HTTP contract; `live` adds the
    counts of open accounting segments (succeeded, failed)."""
    total = state.get("total_records")
    processed = processed_records(state, live)
    if total:
        progress = min(1.0, processed / total)
    else:
        progress = 1.0 if is_terminal(state["status"]) else 0.0
    return {
        "job_id": state["job_id"],
        "status": effective_status(state, moment),
        "created_at": state["created_at"],
        "updated_at": state["updated_at"],
        "started_at": state.get("started_at"),
        "finished_at": state.get("finished_at"),
        "total_records": total,
        "processed_records": processed,
        "succeeded_records": state["succeeded_records"] + live[0],
        "failed_records": state["failed_records"] + live[1],
        "progress": round(progress, 4),
        "metadata": copy.deepcopy(state.get("metadata")),
        "reason": state.get("reason"),
        "errors": copy.deepcopy(state.get("errors") or [])[:MAX_STATE_ERRORS],
        "links": {"self": self_url, "errors": errors_url, "results": state.get("results")},
        "callback": copy.deepcopy(state.get("callback")),
    }
