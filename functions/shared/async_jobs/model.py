"""Job model: statuses, transitions, the stored state and the public job resource."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

MAX_STATE_ERRORS = 20
MAX_ERROR_MESSAGE = 500
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
}


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
) -> dict[str, Any]:
    stamp = isoformat(moment)
    return {
        "job_id": job_id,
        "owner": owner,
        "status": status.value,
        "created_at": stamp,
        "updated_at": stamp,
        "started_at": None,
        "finished_at": None,
        "expires_at": isoformat(expires_at) if expires_at else None,
        "input_key": input_key,
        "metadata": metadata,
        "total_records": total_records,
        "succeeded_records": 0,
        "failed_records": 0,
        "skipped_records": 0,
        "errors": [],
        # plan: None until the split step has cut the input into chunks
        "chunks_total": None,
        "chunks_dispatched": False,
        "results": None,
        # chunk number (as str) -> records already through validation/transform (progress only)
        "partial": {},
        # chunks accounted for (done, failed for good, or skipped by cancellation)
        "done": [],
        "chunks_with_errors": [],
        "errors_report": None,
    }


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


def all_chunks_accounted(state: dict[str, Any]) -> bool:
    total = state.get("chunks_total")
    return total is not None and len(state["done"]) >= total


def effective_status(state: dict[str, Any], moment: datetime) -> str:
    """The status a reader sees: an upload slot past its expiry reads as `expired`."""
    status = str(state["status"])
    if (
        status == JobStatus.AWAITING_UPLOAD
        and state.get("expires_at")
        and parse_time(state["expires_at"]) <= moment
    ):
        return JobStatus.EXPIRED.value
    return status


def processed_records(state: dict[str, Any]) -> int:
    partial = sum(int(v) for v in (state.get("partial") or {}).values())
    return int(state["succeeded_records"]) + int(state["failed_records"]) + partial


def render_job(
    state: dict[str, Any],
    *,
    self_url: str,
    errors_url: str | None,
    moment: datetime,
) -> dict[str, Any]:
    """The public job resource, with exactly the fields of the HTTP contract."""
    total = state.get("total_records")
    processed = processed_records(state)
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
        "succeeded_records": state["succeeded_records"],
        "failed_records": state["failed_records"],
        "progress": round(progress, 4),
        "metadata": copy.deepcopy(state.get("metadata")),
        "errors": copy.deepcopy(state.get("errors") or [])[:MAX_STATE_ERRORS],
        "links": {"self": self_url, "errors": errors_url, "results": state.get("results")},
    }
