"""The worker side of the engine: split a job into chunks, process chunks, finish the job.

Exactly-once accounting over at-least-once delivery:
  1. the sink write is idempotent by (job_id, record_index) (overwrite / replace by key);
  2. the chunk marker jobs/{id}/chunks/{n}.json is created once (If-None-Match: *) and the
     first marker's counts are the chunk's counts for ever;
  3. the job summary adds a chunk only when n is not yet in its `done` set, with an
     If-Match compare-and-swap, so concurrent completions never lose an update.
A worker may die between any two steps; the redelivered message repeats the steps and the
conditions above make the repeat count nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from async_jobs import model
from async_jobs.messaging import JobQueue
from async_jobs.model import JobStatus
from async_jobs.planner import Plan, iter_chunk_records, plan_chunks
from async_jobs.records import RecordCheck, RecordTransform
from async_jobs.sinks.base import Row, Sink
from async_jobs.store import JobStore, Keys, StateNotFound, dumps

_UPLOAD_KEY = re.compile(r"^jobs/([0-9a-f-]{36})/upload\.ndjson$")

Emit = Callable[[str, float, str], None]


class RetryChunk(Exception):
    """Raised by a record processor to have the whole chunk retried (e.g. downstream throttling)."""


class BadMessage(ValueError):
    """A queue message the engine cannot read; it goes to the DLQ after its receives."""


def _no_metrics(name: str, value: float, unit: str) -> None:
    return None


@dataclass(frozen=True)
class EngineSettings:
    chunk_size: int = 500
    progress_every: int = 100
    tolerated_failure_percent: float = 0.0
    max_receive_count: int = 5


class Engine:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        sink: Sink,
        settings: EngineSettings,
        *,
        check: RecordCheck | None = None,
        transform: RecordTransform | None = None,
        emit: Emit = _no_metrics,
        clock: Callable[[], datetime] = model.now,
    ) -> None:
        self.store = store
        self.queue = queue
        self.sink = sink
        self.settings = settings
        self.check = check
        self.transform = transform
        self.emit = emit
        self.clock = clock

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, message: dict[str, Any], receive_count: int) -> str | None:
        """Process one queue message; returns the job id it concerned (for log correlation).

        On the message's last receive a failure is first recorded in the job (its records
        failed, or the job failed) and then re-raised, so the job still reaches an end.
        """
        kind, job_id = self._classify(message)
        try:
            if kind == "split" and job_id is not None:
                self.split(job_id)
            elif kind == "chunk":
                self.process_chunk(message)
            elif kind == "upload":
                for key, event_time in _uploads(message):
                    self.upload_landed(key, event_time)
            return job_id
        except Exception as exc:
            if receive_count >= self.settings.max_receive_count and job_id is not None:
                self._give_up(kind, job_id, message, receive_count, exc)
            raise

    def _classify(self, message: dict[str, Any]) -> tuple[str, str | None]:
        if message.get("Event") == "s3:TestEvent":
            return "ignore", None
        kind = message.get("kind")
        if kind in ("split", "chunk"):
            job_id = str(message.get("job_id", ""))
            if not model.is_job_id(job_id):
                raise BadMessage("job_id is not a UUID")
            if kind == "chunk":
                _check_chunk_message(message)
            return str(kind), job_id
        uploads = _uploads(message)
        if uploads:
            match = _UPLOAD_KEY.match(uploads[0][0])
            return "upload", match.group(1) if match else None
        if isinstance(message.get("Records"), list):
            return "ignore", None  # other S3 notifications (not an upload object)
        raise BadMessage("unknown message")

    def _give_up(
        self, kind: str, job_id: str, message: dict[str, Any], receive_count: int, exc: Exception
    ) -> None:
        reason = f"failed after {receive_count} attempts ({exc.__class__.__name__})"
        if kind == "chunk":
            self.fail_chunk(message, reason)
        else:
            self.fail_job(job_id)

    # -- split -----------------------------------------------------------------------------------
    def split(self, job_id: str) -> None:
        found = self.store.get_state(job_id)
        if found is None:
            return
        state = found[0]
        if model.is_terminal(state["status"]) or state["status"] == JobStatus.AWAITING_UPLOAD:
            return
        plan: Plan | None = None
        if state["chunks_total"] is None:
            plan = self._plan(job_id, state["input_key"])
            planned = plan

            def record_plan(current: dict[str, Any]) -> bool:
                if current["chunks_total"] is not None or model.is_terminal(current["status"]):
                    return False
                current["chunks_total"] = len(planned.chunks)
                current["total_records"] = planned.total_records
                current["results"] = self.sink.results_location(job_id)
                if not planned.chunks:
                    model.transition(current, JobStatus.FAILED, self.clock())
                return True

            state, wrote = self.store.update_state(job_id, record_plan)
            if wrote and state["status"] == JobStatus.FAILED:
                self._job_finished(state)
        if model.is_terminal(state["status"]) or state["chunks_dispatched"]:
            return
        if plan is None:
            stored = self.store.get_json(Keys.plan(job_id))
            plan = Plan.from_dict(stored)
        self.queue.send_chunks(job_id, [chunk.message(job_id) for chunk in plan.chunks])

        def dispatched(current: dict[str, Any]) -> bool:
            if current["chunks_dispatched"]:
                return False
            current["chunks_dispatched"] = True
            return True

        self.store.update_state(job_id, dispatched)

    def _plan(self, job_id: str, input_key: str) -> Plan:
        """Read the input once; the first plan written is the plan for every later delivery."""
        plan = plan_chunks(self.store.stream(input_key), self.settings.chunk_size)
        if not self.store.create_json(Keys.plan(job_id), plan.to_dict()):
            plan = Plan.from_dict(self.store.get_json(Keys.plan(job_id)))
        return plan

    def upload_landed(self, key: str, event_time: datetime) -> None:
        match = _UPLOAD_KEY.match(key)
        if not match or not model.is_job_id(match.group(1)):
            return
        job_id = match.group(1)

        def start(current: dict[str, Any]) -> bool:
            if current["status"] != JobStatus.AWAITING_UPLOAD:
                return False
            expires_at = current.get("expires_at")
            if expires_at and event_time > model.parse_time(expires_at):
                model.transition(current, JobStatus.EXPIRED, self.clock())
            else:
                current["input_key"] = Keys.upload(job_id)
                model.transition(current, JobStatus.QUEUED, self.clock())
            return True

        try:
            state, _ = self.store.update_state(job_id, start)
        except StateNotFound:
            return
        if state["status"] == JobStatus.QUEUED:
            self.split(job_id)

    def fail_job(self, job_id: str) -> None:
        """A split that keeps failing: the job fails with all its records failed."""

        def fail(current: dict[str, Any]) -> bool:
            if model.is_terminal(current["status"]):
                return False
            if current["status"] == JobStatus.CANCELLING:
                model.transition(current, JobStatus.CANCELLED, self.clock())
                return True
            total = current.get("total_records") or 0
            current["failed_records"] = max(0, total - current["succeeded_records"])
            current["partial"] = {}
            model.transition(current, JobStatus.FAILED, self.clock())
            return True

        try:
            state, wrote = self.store.update_state(job_id, fail)
        except StateNotFound:
            return
        if wrote:
            self._job_finished(state)

    # -- chunk -----------------------------------------------------------------------------------
    def process_chunk(self, message: dict[str, Any]) -> None:
        job_id = str(message["job_id"])
        number = int(message["chunk"])
        first, count = int(message["first_record"]), int(message["count"])
        start, end = (int(v) for v in message["byte_range"])
        found = self.store.get_state(job_id)
        if found is None:
            return
        state = found[0]
        if number in state["done"]:
            self._write_errors_report(job_id, state)
            return
        if model.is_terminal(state["status"]) or state["status"] == JobStatus.CANCELLING:
            # Cancellation is checked before the chunk starts: account it without running it
            # (or with the counts of a marker an earlier delivery already wrote).
            marker = self.store.get_json(Keys.marker(job_id, number))
            self.account(job_id, number, marker or _skipped_marker(job_id, number, first, count))
            return
        if state["status"] == JobStatus.QUEUED:
            self.store.update_state(job_id, self._mark_running)

        data = self.store.get_range(state["input_key"], start, end)
        rows, errors = self._run_records(job_id, number, data, first, count)
        self.sink.write(job_id, number, rows)
        marker = {
            "job_id": job_id,
            "chunk": number,
            "first_record": first,
            "count": count,
            "succeeded": len(rows),
            "failed": len(errors),
            "skipped": 0,
            "errors": errors,
        }
        if not self.store.create_json(Keys.marker(job_id, number), marker):
            # An earlier delivery got here first: its counts are this chunk's counts.
            marker = self.store.get_json(Keys.marker(job_id, number)) or marker
        self.account(job_id, number, marker)

    def _mark_running(self, current: dict[str, Any]) -> bool:
        if current["status"] != JobStatus.QUEUED:
            return False
        model.transition(current, JobStatus.RUNNING, self.clock())
        return True

    def _run_records(
        self, job_id: str, number: int, data: bytes, first: int, count: int
    ) -> tuple[list[Row], list[dict[str, Any]]]:
        rows: list[Row] = []
        errors: list[dict[str, Any]] = []
        every = self.settings.progress_every
        seen = 0
        for raw in iter_chunk_records(data, first):
            seen += 1
            if raw.record is None:
                errors.append(model.record_error(raw.index, f"record {raw.index}: {raw.error}"))
            else:
                problem = self.check(raw.record) if self.check else None
                if problem is not None:
                    errors.append(model.record_error(raw.index, problem))
                else:
                    try:
                        record = self.transform(raw.record) if self.transform else raw.record
                    except (RetryChunk, ConnectionError, TimeoutError):
                        raise
                    except Exception as exc:  # noqa: BLE001 - a processor failure fails the record
                        errors.append(
                            model.record_error(raw.index, f"processor: {exc.__class__.__name__}: {exc}")
                        )
                    else:
                        rows.append((raw.index, raw.record if record is None else record))
            if every and seen % every == 0 and seen < count:
                self._progress(job_id, number, seen)
        if seen != count:
            raise BadMessage(f"chunk {number} holds {seen} records, expected {count}")
        return rows, errors

    def _progress(self, job_id: str, number: int, seen: int) -> None:
        def partial(current: dict[str, Any]) -> bool:
            if number in current["done"] or model.is_terminal(current["status"]):
                return False
            if current["partial"].get(str(number)) == seen:
                return False
            current["partial"][str(number)] = seen  # replaced, never added
            return True

        self.store.update_state(job_id, partial)

    def fail_chunk(self, message: dict[str, Any], reason: str) -> None:
        """Last receive of a failing chunk: its records are failed in the job before the DLQ."""
        job_id = str(message["job_id"])
        number, first, count = int(message["chunk"]), int(message["first_record"]), int(message["count"])
        marker = {
            "job_id": job_id,
            "chunk": number,
            "first_record": first,
            "count": count,
            "succeeded": 0,
            "failed": count,
            "skipped": 0,
            "errors": [model.record_error(first + i, f"chunk {reason}") for i in range(count)],
        }
        if not self.store.create_json(Keys.marker(job_id, number), marker):
            marker = self.store.get_json(Keys.marker(job_id, number)) or marker
        try:
            self.account(job_id, number, marker)
        except StateNotFound:
            return

    # -- accounting --------------------------------------------------------------------------
    def account(self, job_id: str, number: int, marker: dict[str, Any]) -> dict[str, Any]:
        """Add one chunk's counts to the job once, and end the job when it was the last chunk."""
        finished: list[bool] = []
        tolerated = self.settings.tolerated_failure_percent

        def add(current: dict[str, Any]) -> bool:
            finished.clear()
            if number in current["done"]:
                return False
            current["done"].append(number)
            current["succeeded_records"] += int(marker["succeeded"])
            current["failed_records"] += int(marker["failed"])
            current["skipped_records"] = current.get("skipped_records", 0) + int(marker.get("skipped", 0))
            current["partial"].pop(str(number), None)
            if marker.get("errors"):
                current["errors"] = model.merge_errors(
                    current["errors"], marker["errors"][: model.MAX_STATE_ERRORS]
                )
                current["chunks_with_errors"].append(number)
            if model.all_chunks_accounted(current) and not model.is_terminal(current["status"]):
                target = model.final_status(current, tolerated)
                if current["status"] == JobStatus.QUEUED and target != JobStatus.CANCELLED:
                    model.transition(current, JobStatus.RUNNING, self.clock())  # sets started_at
                model.transition(current, target, self.clock())
                finished.append(True)
            if (
                model.all_chunks_accounted(current)
                and current["chunks_with_errors"]
                and not current["errors_report"]
            ):
                current["errors_report"] = "pending"
            return True

        state, wrote = self.store.update_state(job_id, add)
        if wrote:
            self.emit("RecordsProcessed", float(marker["succeeded"]) + float(marker["failed"]), "Count")
            self.emit("RecordsFailed", float(marker["failed"]), "Count")
            if finished:
                self._job_finished(state)
        self._write_errors_report(job_id, state)
        return state

    def _job_finished(self, state: dict[str, Any]) -> None:
        if state["status"] == JobStatus.FAILED:
            self.emit("JobsFailed", 1.0, "Count")
        started = state.get("started_at") or state["created_at"]
        if state.get("finished_at"):
            seconds = (model.parse_time(state["finished_at"]) - model.parse_time(started)).total_seconds()
            self.emit("JobDuration", max(0.0, seconds), "Seconds")

    def _write_errors_report(self, job_id: str, state: dict[str, Any]) -> None:
        """errors.ndjson from the markers with errors, once the job has ended (overwrite is safe)."""
        if state.get("errors_report") != "pending":
            return
        lines: list[bytes] = []
        for number in sorted(state["chunks_with_errors"]):
            marker = self.store.get_json(Keys.marker(job_id, number)) or {}
            lines.extend(
                dumps({"record_index": e["record_index"], "message": e["message"]}) + b"\n"
                for e in marker.get("errors", [])
            )
        self.store.put(Keys.errors(job_id), b"".join(lines))

        def written(current: dict[str, Any]) -> bool:
            if current.get("errors_report") != "pending":
                return False
            current["errors_report"] = "written"
            return True

        self.store.update_state(job_id, written)


def _skipped_marker(job_id: str, number: int, first: int, count: int) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "chunk": number,
        "first_record": first,
        "count": count,
        "succeeded": 0,
        "failed": 0,
        "skipped": count,
        "errors": [],
    }


def _check_chunk_message(message: dict[str, Any]) -> None:
    try:
        start, end = (int(v) for v in message["byte_range"])
        number, first, count = int(message["chunk"]), int(message["first_record"]), int(message["count"])
    except (KeyError, TypeError, ValueError):
        raise BadMessage("malformed chunk message") from None
    if min(start, end, number, first, count) < 0 or end < start:
        raise BadMessage("malformed chunk message")


def _uploads(message: dict[str, Any]) -> list[tuple[str, datetime]]:
    """(key, event time) of S3 ObjectCreated notifications in a message."""
    found: list[tuple[str, datetime]] = []
    for record in message.get("Records") or []:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        key = unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))
        when = record.get("eventTime")
        found.append((key, model.parse_time(when) if when else model.now()))
    return found
