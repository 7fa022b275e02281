"""The worker side of the engine: split a job into chunks, process chunks, finish the job.

Exactly-once accounting over at-least-once delivery:
  1. the sink write is idempotent by (job_id, record_index) (overwrite / replace by key);
  2. the chunk marker jobs/{id}/chunks/{n}.json is created once (If-None-Match: *) and the
     first marker's counts are the chunk's counts for ever;
  3. the job summary adds a chunk only when n is not yet in its `done` set, with an
     If-Match compare-and-swap, so concurrent completions never lose an update;
  4. jobs/{id}/chunks/{n}.started is written before the sink write: a delivery that finds the
     job cancelled skips the chunk only when no earlier delivery may have written any of it
     (one that did is run to the end, so the sink holds exactly the succeeded records).
Every chunk message is parsed into a ChunkRef and compared with the job's plan before anything
is read: a message the plan does not hold is logged and dropped, never counted. The state
rules themselves are pure functions in `model`; this module applies them through the store.
A worker may die between any two steps; the redelivered message repeats the steps and the
conditions above make the repeat count nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from async_jobs import jsontext, model
from async_jobs.chunks import BadMessage, ChunkMarker, ChunkRef
from async_jobs.expiry import ExpireRef, Expiry
from async_jobs.messaging import JobQueue
from async_jobs.model import JobStatus
from async_jobs.notify import NotifyRef
from async_jobs.observability import logger
from async_jobs.planner import Chunk, Plan, chunk_from_line, chunk_line_range, iter_chunk_records, plan_chunks
from async_jobs.records import RecordCheck, RecordTransform
from async_jobs.reports import ErrorsReport
from async_jobs.sinks.base import Row, Sink
from async_jobs.store import JobStore, Keys, StateNotFound, error_code

_UPLOAD_KEY = re.compile(r"^jobs/([0-9a-f-]{36})/upload\.ndjson$")

Emit = Callable[[str, float, str], None]


class DispatchNotRecorded(Exception):
    """The split sent every chunk message but could not record it; the chunks end the job."""


class RetryChunk(Exception):
    """Raised by a record processor to have the whole chunk retried (e.g. downstream throttling)."""


__all__ = ["BadMessage", "Engine", "EngineSettings", "RetryChunk"]


@dataclass(frozen=True)
class Upload:
    """An S3 ObjectCreated notification for a job's upload object."""

    key: str
    event_time: datetime
    version_id: str | None
    etag: str | None


def _no_metrics(name: str, value: float, unit: str) -> None:
    return None


@dataclass(frozen=True)
class EngineSettings:
    """The worker's settings the engine applies; their defaults and bounds are the contract's
    (WorkerConfig parses them), so none is repeated here."""

    chunk_size: int
    progress_every: int
    tolerated_failure_percent: float
    max_receive_count: int
    dispatch_slice: int = 1000


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
        notify: Callable[[NotifyRef], None] | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.sink = sink
        self.settings = settings
        self.check = check
        self.transform = transform
        self.emit = emit
        self.clock = clock
        self.reports = ErrorsReport(store)
        # publishes a job's completion event and callback (notify.Notifier.handle)
        self.notify = notify
        # writes the expiry of an upload slot nothing was uploaded to (expiry.py)
        self.expiry = Expiry(store, queue, landed=self.upload_found, clock=clock)

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, message: dict[str, Any], receive_count: int) -> str | None:
        """Process one queue message; returns the job id it concerned (for log correlation).

        On the message's last receive a failure is first recorded in the job (its records
        failed, or the job failed) and then re-raised, so the job still reaches an end.
        """
        try:
            kind, job_id, ref = self.classify(message)
        except BadMessage as exc:
            last = receive_count >= self.settings.max_receive_count
            (logger.error if last else logger.warning)(
                "unreadable message", extra={"receive_count": receive_count, "reason": str(exc)}
            )
            raise
        try:
            if kind == "split" and job_id is not None:
                self.split(job_id)
            elif kind == "chunk" and ref is not None:
                self.process_chunk(ref)
            elif kind == "upload":
                for upload in _uploads(message):
                    self.upload_landed(upload)
            elif kind == "notify" and self.notify is not None:
                self.notify(NotifyRef.parse(message))
            elif kind == "expire":
                self.expiry.handle(ExpireRef.parse(message))
            return job_id
        except Exception as exc:
            last = receive_count >= self.settings.max_receive_count
            log = logger.error if last else logger.warning
            log(
                "message failed; it goes to the dead-letter queue" if last else "message failed; retried",
                extra={
                    "job_id": job_id,
                    "kind": kind,
                    "chunk": ref.chunk if ref else None,
                    "receive_count": receive_count,
                    "max_receive_count": self.settings.max_receive_count,
                    "error_type": exc.__class__.__name__,
                    "error_code": failure_code(exc),
                },
            )
            if last and job_id is not None:
                self._give_up(kind, job_id, ref, receive_count, exc)
            raise

    def classify(self, message: dict[str, Any]) -> tuple[str, str | None, ChunkRef | None]:
        if message.get("Event") == "s3:TestEvent":
            return "ignore", None, None
        kind = message.get("kind")
        if kind == "chunk":
            ref = ChunkRef.parse(message)
            return "chunk", ref.job_id, ref
        if kind in ("notify", "expire"):
            parse = NotifyRef.parse if kind == "notify" else ExpireRef.parse
            return str(kind), parse(message).job_id, None
        if kind == "split":
            job_id = message.get("job_id")
            if not isinstance(job_id, str) or not model.is_job_id(job_id):
                raise BadMessage("job_id is not a UUID")
            return "split", job_id, None
        uploads = _uploads(message)
        if uploads:
            match = _UPLOAD_KEY.match(uploads[0].key)
            return "upload", match.group(1) if match else None, None
        if isinstance(message.get("Records"), list):
            return "ignore", None, None  # other S3 notifications (not an upload object)
        raise BadMessage("unknown message")

    def _give_up(
        self, kind: str, job_id: str, ref: ChunkRef | None, receive_count: int, exc: Exception
    ) -> None:
        reason = f"failed after {receive_count} attempts ({exc.__class__.__name__})"
        if kind == "chunk" and ref is not None:
            self.fail_chunk(ref, reason)
        elif kind in ("notify", "expire"):
            # notify: the job has ended already; its notification goes to the DLQ as it is.
            # expire: a slot is never failed for its expiry message; the DLQ handler retries it.
            return
        elif isinstance(exc, DispatchNotRecorded):
            return  # the chunks were sent in this very delivery; they end the job
        else:
            self.fail_job(job_id, f"The input could not be split into chunks: {reason}.")

    # -- split -----------------------------------------------------------------------------------
    def split(self, job_id: str) -> None:
        found = self.store.get_state(job_id)
        if found is None:
            return
        state = found[0]
        if state.get("rerun"):
            self._redispatch(job_id, state)
            return
        if state["status"] == JobStatus.AWAITING_UPLOAD or state["chunks_dispatched"]:
            return
        if model.is_terminal(state["status"]) and not state.get("dispatched_through"):
            return  # ended before any chunk was sent: nothing was planned to run
        plan: Plan | None = None
        if state["chunks_total"] is None:
            plan = self._plan(job_id, state)
            planned = plan
            moment = self.clock()
            results = self.sink.results_location(job_id)

            def record(current: dict[str, Any]) -> bool:
                return model.record_plan(
                    current,
                    chunks_total=len(planned.chunks),
                    total_records=planned.total_records,
                    results=results,
                    moment=moment,
                )

            state, wrote = self.store.update_state(job_id, record)
            if wrote and state["status"] == JobStatus.FAILED:
                logger.info("job failed at split", extra={"job_id": job_id, "reason": state.get("reason")})
                self._job_finished(state)
        if model.is_terminal(state["status"]) and not state.get("dispatched_through"):
            return  # failed at planning
        # A dispatch once begun is finished even if the job was cancelled meanwhile: its chunks
        # are then counted as skipped, so the job's counts still add up to its total.
        if plan is None:
            plan = self._read_plan(job_id)
        self._dispatch(job_id, state.get("owner"), plan, int(state.get("dispatched_through") or 0))

    def _dispatch(self, job_id: str, owner: str | None, plan: Plan, start: int) -> None:
        """Send one slice of the chunk messages and record how far dispatch got.

        A split message sends at most `dispatch_slice` chunks and queues a follow-up split for
        the rest, so no delivery's work grows with the input (20,000 chunks are 2,000
        SendMessageBatch calls). A slice sent twice is harmless: chunks count once."""
        end = min(start + self.settings.dispatch_slice, len(plan.chunks))
        messages = [chunk.message(job_id) for chunk in plan.chunks[start:end]]
        self.queue.send_chunks(job_id, messages, owner=owner)
        last = end == len(plan.chunks)

        def dispatched(current: dict[str, Any]) -> bool:
            if current["chunks_dispatched"] or int(current.get("dispatched_through") or 0) >= end:
                return False
            current["dispatched_through"] = end
            current["chunks_dispatched"] = last
            return True

        try:
            self.store.update_state(job_id, dispatched)
        except Exception as exc:
            if last:
                # Every chunk is on the queue: from here the chunks decide the job's end.
                raise DispatchNotRecorded(job_id) from exc
            raise
        if not last:
            self.queue.send_split(job_id, owner=owner, part=end)

    def _redispatch(self, job_id: str, state: dict[str, Any]) -> None:
        """A retry: send the chunks it re-runs again, then clear the request. Sent twice (a
        redelivered split) they count once: the job's `done` set decides."""
        attempt = int(state.get("attempt") or 0)
        numbers = model.chunk_numbers(model.ranges(state["rerun"]))
        messages = []
        for number in numbers:
            chunk = self._planned_chunk(job_id, number)
            if chunk is not None:
                messages.append(chunk.message(job_id))
        self.queue.send_chunks(job_id, messages, owner=state.get("owner"), attempt=attempt)

        def sent(current: dict[str, Any]) -> bool:
            if int(current.get("attempt") or 0) != attempt or not current.get("rerun"):
                return False
            current["rerun"] = []
            return True

        self.store.update_state(job_id, sent)

    def _plan(self, job_id: str, state: dict[str, Any]) -> Plan:
        """Read the input once, as a stream of the pinned version; the first plan written is the
        plan for every later delivery."""
        pieces = self.store.stream(
            state["input_key"], version_id=state.get("input_version"), etag=state.get("input_etag")
        )
        plan = plan_chunks(pieces, self.settings.chunk_size)
        if not self.store.create(Keys.plan_lines(job_id), plan.to_lines()):
            plan = self._read_plan(job_id)
        return plan

    def _read_plan(self, job_id: str) -> Plan:
        data = self.store.get_bytes(Keys.plan_lines(job_id))
        if data is not None:
            return Plan.from_lines(data)
        return Plan.from_dict(self.store.get_json(Keys.plan(job_id)))  # written by version 1

    def _planned_chunk(self, job_id: str, number: int) -> Chunk | None:
        start, end = chunk_line_range(number)
        line = self.store.get_range_or_none(Keys.plan_lines(job_id), start, end)
        if line is not None:
            return chunk_from_line(line) if line.strip() else None
        legacy = self.store.get_json(Keys.plan(job_id))
        if legacy is None:
            return None
        chunks = Plan.from_dict(legacy).chunks
        return chunks[number] if number < len(chunks) else None

    def upload_landed(self, upload: Upload) -> None:
        match = _UPLOAD_KEY.match(upload.key)
        if not match or not model.is_job_id(match.group(1)):
            return
        job_id = match.group(1)
        version_id, etag = upload.version_id, upload.etag
        if version_id is None and etag is None:
            version_id, etag = self.store.head(upload.key)

        def start(current: dict[str, Any]) -> bool:
            if current["status"] != JobStatus.AWAITING_UPLOAD:
                return False
            expires_at = current.get("expires_at")
            if expires_at and upload.event_time > model.parse_time(expires_at):
                model.transition(current, JobStatus.EXPIRED, self.clock())
            else:
                current["input_key"] = Keys.upload(job_id)
                current["input_version"] = version_id
                current["input_etag"] = etag
                model.transition(current, JobStatus.QUEUED, self.clock())
            return True

        try:
            state, _ = self.store.update_state(job_id, start)
        except StateNotFound:
            return
        if state["status"] == JobStatus.QUEUED:
            self.split(job_id)

    def upload_found(self, job_id: str) -> bool:
        """An upload object looked for (at its slot's expiry): when it exists it is handled as its
        S3 notification would be, with its LastModified as the time it landed."""
        key = Keys.upload(job_id)
        found = self.store.head_landed(key)
        if found is None:
            return False
        version_id, etag, last_modified = found
        self.upload_landed(Upload(key, last_modified, version_id, etag))
        return True

    def fail_job(self, job_id: str, reason: str) -> None:
        """A split that keeps failing before all its chunks were sent. Once they were dispatched
        the chunks decide the job's end, so a late failure changes nothing; before that, the
        planned chunks not yet accounted fail through their markers (a chunk a partial send
        already started adopts the failed marker, so it is counted once), and a job without a
        plan fails as a whole."""
        found = self.store.get_state(job_id)
        if found is None:
            return
        state = found[0]
        if state["chunks_dispatched"] or model.is_terminal(state["status"]):
            return
        if state["chunks_total"] is not None:
            for chunk in self._read_plan(job_id).chunks:
                if not model.is_chunk_done(state, chunk.chunk):
                    self.fail_chunk(chunk.ref(job_id), reason)
            return
        moment = self.clock()

        def fail(current: dict[str, Any]) -> bool:
            if current["chunks_total"] is not None:
                return False  # planned meanwhile: the chunks decide
            return model.fail_job(current, reason, moment)

        try:
            state, wrote = self.store.update_state(job_id, fail)
        except StateNotFound:
            return
        if wrote:
            self._job_finished(state)

    # -- chunk -----------------------------------------------------------------------------------
    def _validated(self, ref: ChunkRef, state: dict[str, Any]) -> bool:
        """True when the job's plan holds exactly this chunk; otherwise the message is logged and
        dropped (retrying a forged or corrupted message cannot make it true)."""
        total = state.get("chunks_total")
        planned = None
        if total is not None and ref.chunk < int(total):
            planned = self._planned_chunk(ref.job_id, ref.chunk)
        if planned is not None and planned.ref(ref.job_id) == ref:
            return True
        logger.error(
            "chunk message does not match the job's plan; dropped",
            extra={"job_id": ref.job_id, "chunk": ref.chunk, "chunk_message": ref.to_message()},
        )
        return False

    def process_chunk(self, ref: ChunkRef) -> None:
        found = self.store.get_state(ref.job_id)
        if found is None:
            logger.error("chunk message for an unknown job; dropped", extra={"job_id": ref.job_id})
            return
        state = found[0]
        if not self._validated(ref, state):
            return
        if model.is_chunk_done(state, ref.chunk):
            self._write_errors_report(ref.job_id, state)
            return
        if state["status"] == JobStatus.QUEUED:
            # The claim is a compare-and-swap: a cancel that lands first makes this chunk skip, a
            # cancel that lands after it sees the job started and answers `cancelling`. (A job
            # already running has `started_at`: any cancel from now on answers `cancelling`.)
            moment = self.clock()
            state, _ = self.store.update_state(ref.job_id, lambda current: model.claim_chunk(current, moment))
        attempt = int(state.get("attempt") or 0)
        if not model.may_run_chunks(state):
            # Cancelled (or ended): account the chunk with the counts of a marker an earlier
            # delivery wrote; or finish it when an earlier delivery began its sink write and died
            # before its marker (its rows may be in the sink); or else skip it without running it.
            stored = self.store.get_json(Keys.marker(ref.job_id, ref.chunk, attempt))
            if stored:
                self.account(ChunkMarker.from_dict(stored))
                return
            if self.store.get_bytes(Keys.started(ref.job_id, ref.chunk, attempt)) is None:
                self.account(replace(ChunkMarker.skipped_all(ref), attempt=attempt))
                return
        self._run_chunk(ref, state, attempt)

    def _run_chunk(self, ref: ChunkRef, state: dict[str, Any], attempt: int) -> None:
        data = self.store.get_range(
            state["input_key"],
            ref.start,
            ref.end,
            version_id=state.get("input_version"),
            etag=state.get("input_etag"),
        )
        rows, errors = self._run_records(ref, data)
        self.store.put(Keys.started(ref.job_id, ref.chunk, attempt), b"", "application/octet-stream")
        self.sink.write(ref.job_id, ref.chunk, rows)
        processed = ChunkMarker.processed(ref, len(rows), errors)
        self.account(self._create_marker(processed, attempt))

    def _create_marker(self, marker: ChunkMarker, attempt: int) -> ChunkMarker:
        """The chunk's marker in the job's current attempt (a retry runs under new keys)."""
        marker = replace(marker, attempt=attempt)
        key = Keys.marker(marker.job_id, marker.chunk, attempt)
        if self.store.create_json(key, marker.to_dict()):
            return marker
        # An earlier delivery got here first: its counts are this chunk's counts.
        stored = self.store.get_json(key)
        return ChunkMarker.from_dict(stored) if stored else marker

    def _run_records(self, ref: ChunkRef, data: bytes) -> tuple[list[Row], list[dict[str, Any]]]:
        rows: list[Row] = []
        errors: list[dict[str, Any]] = []
        every = self.settings.progress_every
        seen = 0
        for raw in iter_chunk_records(data, ref.first_record):
            seen += 1
            if seen > ref.count:
                break
            if raw.record is None:
                errors.append(model.record_error(raw.index, f"record {raw.index}: {raw.error}"))
            else:
                problem = self.check(raw.record) if self.check else None
                if problem is not None:
                    errors.append(model.record_error(raw.index, problem))
                else:
                    outcome = self._transform(raw.index, raw.record)
                    if isinstance(outcome, str):
                        errors.append(model.record_error(raw.index, outcome))
                    else:
                        rows.append((raw.index, outcome))
            if every and seen % every == 0 and seen < ref.count:
                self._progress(ref, seen)
        if seen != ref.count:
            raise BadMessage(f"chunk {ref.chunk} holds {seen} records, expected {ref.count}")
        return rows, errors

    def _transform(self, index: int, record: dict[str, Any]) -> dict[str, Any] | str:
        """The record to store, or a message saying why the record failed."""
        if self.transform is None:
            return record
        try:
            result = self.transform(record)
        except (RetryChunk, ConnectionError, TimeoutError):
            raise
        except Exception as exc:  # noqa: BLE001 - a processor failure fails the record
            return f"processor: {exc.__class__.__name__}: {exc}"
        result = record if result is None else result
        try:
            jsontext.dumps(result)  # what reaches the sink is strictly JSON
        except jsontext.JsonProblem as problem:
            return f"processor: the result is not valid JSON: {problem.message}"
        return result

    def _progress(self, ref: ChunkRef, seen: int) -> None:
        def partial(current: dict[str, Any]) -> bool:
            if model.is_chunk_done(current, ref.chunk) or model.is_terminal(current["status"]):
                return False
            if current["partial"].get(str(ref.chunk)) == seen:
                return False
            current["partial"][str(ref.chunk)] = seen  # replaced, never added
            return True

        self.store.update_state(ref.job_id, partial)

    def fail_chunk(self, ref: ChunkRef, reason: str) -> None:
        """Last receive of a failing chunk: its records are failed in the job before the DLQ.

        Only a chunk the plan holds is failed; a forged message is never counted."""
        found = self.store.get_state(ref.job_id)
        if found is None or not self._validated(ref, found[0]):
            return
        marker = self._create_marker(ChunkMarker.failed_all(ref, reason), int(found[0].get("attempt") or 0))
        try:
            self.account(marker)
        except StateNotFound:
            return

    # -- accounting --------------------------------------------------------------------------
    def account(self, marker: ChunkMarker) -> dict[str, Any]:
        """Add one chunk's counts to the job once, and end the job when it was the last chunk."""
        outcome: list[str] = []
        tolerated = self.settings.tolerated_failure_percent
        moment = self.clock()
        self.reports.add(marker)  # before the count: a counted chunk's errors are always kept

        def add(current: dict[str, Any]) -> bool:
            outcome[:] = [model.add_chunk(current, marker, tolerated, moment)]
            return outcome[0] != "duplicate"

        state, wrote = self.store.update_state(marker.job_id, add)
        if wrote:
            self.emit("RecordsProcessed", float(marker.succeeded + marker.failed), "Count")
            self.emit("RecordsFailed", float(marker.failed), "Count")
            if outcome == ["finished"]:
                self._job_finished(state)
        self._write_errors_report(marker.job_id, state)
        return state

    def _job_finished(self, state: dict[str, Any]) -> None:
        if state["status"] == JobStatus.FAILED:
            self.emit("JobsFailed", 1.0, "Count")
        started = state.get("started_at") or state["created_at"]
        if state.get("finished_at"):
            seconds = (model.parse_time(state["finished_at"]) - model.parse_time(started)).total_seconds()
            self.emit("JobDuration", max(0.0, seconds), "Seconds")

    def _write_errors_report(self, job_id: str, state: dict[str, Any]) -> None:
        """errors.ndjson once the job has ended with record errors."""
        if state.get("errors_report") != "pending":
            return
        self.reports.write(job_id, model.ranges(state.get("chunks_with_errors")))

        def written(current: dict[str, Any]) -> bool:
            if current.get("errors_report") != "pending":
                return False
            current["errors_report"] = "written"
            return True

        self.store.update_state(job_id, written)


def failure_code(exc: BaseException) -> str | None:
    """The AWS error code (AccessDenied, SlowDown, ...) of a failure or of its cause: the class
    name alone (ClientError) does not tell an operator a missing permission from throttling."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            return error_code(seen) or None
        seen = seen.__cause__ or seen.__context__
    return None


def _uploads(message: dict[str, Any]) -> list[Upload]:
    """The S3 ObjectCreated notifications in a message, with the version they created."""
    found: list[Upload] = []
    for record in message.get("Records") or []:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        stored = record.get("s3", {}).get("object", {})
        key = unquote_plus(str(stored.get("key", "")))
        when = record.get("eventTime")
        etag = stored.get("eTag")
        found.append(
            Upload(
                key,
                model.parse_time(when) if when else model.now(),
                stored.get("versionId") or None,
                f'"{etag}"' if etag and not str(etag).startswith('"') else etag,
            )
        )
    return found
