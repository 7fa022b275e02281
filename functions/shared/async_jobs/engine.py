"""The worker side of the engine: split a job into chunks, process chunks, finish the job.

Exactly-once accounting over at-least-once delivery:
  1. the sink write is idempotent by (job_id, record_index) (overwrite / replace by key);
  2. jobs/{id}/chunks/{n}.claim is created once (If-None-Match: *) before the sink write and
     says "run" or "skip" for every delivery of the chunk in this attempt: a chunk that may have
     rows in the sink is always run to its end and counted, one claimed "skip" never writes;
  3. the chunk marker jobs/{id}/chunks/{n}.json is created once and the first marker's counts
     are the chunk's counts for ever;
  4. completions are accounted in segments of the state and rolled up into it (`ledger`,
     `accounting`), each chunk once, by compare-and-swap: no update is lost.
A worker invocation reads each job's state and plan once and accounts all its completions at
its end (`begin_batch` / `end_batch`). Every chunk message is parsed into a ChunkRef and
compared with the job's plan before anything is read: a message the plan does not hold is
logged and dropped, never counted. A worker may die between any two steps; the redelivered
message repeats them and the conditions above make the repeat count nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from async_jobs import jsontext, messages, model
from async_jobs.chunks import BadMessage, ChunkMarker, ChunkRef
from async_jobs.expiry import Expiry
from async_jobs.invocation import Invocations, JobReads, planned_chunk
from async_jobs.ledger import Ledger
from async_jobs.messages import DispatchNotRecorded
from async_jobs.messaging import JobQueue
from async_jobs.model import JobStatus
from async_jobs.notify import NotifyRef
from async_jobs.observability import logger
from async_jobs.planner import Chunk, Plan, iter_chunk_records, plan_chunks
from async_jobs.records import RecordCheck, RecordTransform
from async_jobs.reports import ErrorsReport
from async_jobs.sinks.base import Row, Sink
from async_jobs.store import JobStore, Keys, StateNotFound, error_code
from async_jobs.uploads import Landing

Emit = Callable[[str, float, str], None]
RUN, SKIP = "run", "skip"


class RetryChunk(Exception):
    """Raised by a record processor to have the whole chunk retried (e.g. downstream throttling)."""


__all__ = ["BadMessage", "Engine", "EngineSettings", "RetryChunk"]


def _no_metrics(name: str, value: float, unit: str) -> None:
    return None


@dataclass(frozen=True)
class EngineSettings:
    """The worker's settings the engine applies; their defaults and bounds are the contract's
    (WorkerConfig parses them), so none is repeated here."""

    chunk_size: int
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
        self.invocations = Invocations()
        self.ledger = Ledger(
            store,
            self.reports,
            tolerated_failure_percent=settings.tolerated_failure_percent,
            clock=clock,
            emit=emit,
            finished=self._job_finished,
        )
        # publishes a job's completion event and callback (notify.Notifier.handle)
        self.notify = notify
        # applies a landed upload to its slot (uploads.py)
        self.landing = Landing(store, start=self.split, clock=clock)
        # writes the expiry of an upload slot nothing was uploaded to (expiry.py)
        self.expiry = Expiry(store, queue, landed=self.landing.look, clock=clock)

    # -- dispatch ------------------------------------------------------------------------------
    def handle(
        self, message: dict[str, Any], receive_count: int, message_id: str | None = None
    ) -> str | None:
        """Process one queue message; returns the job id it concerned (for log correlation).

        Inside a batch (`begin_batch`) a chunk's completion is accounted at `end_batch`; outside
        one, at once.

        On the message's last receive a failure is first recorded in the job (its records
        failed, or the job failed) and then re-raised, so the job still reaches an end.
        """
        try:
            parsed = messages.parse(message, message_id)
        except BadMessage as exc:
            last = receive_count >= self.settings.max_receive_count
            (logger.error if last else logger.warning)(
                "unreadable message", extra={"receive_count": receive_count, "reason": str(exc)}
            )
            raise
        try:
            parsed.handle(self)
            return parsed.job_id
        except Exception as exc:
            last = receive_count >= self.settings.max_receive_count
            log = logger.error if last else logger.warning
            log(
                "message failed; it goes to the dead-letter queue" if last else "message failed; retried",
                extra={
                    "job_id": parsed.job_id,
                    "kind": parsed.kind,
                    "chunk": parsed.chunk,
                    "receive_count": receive_count,
                    "max_receive_count": self.settings.max_receive_count,
                    "error_type": exc.__class__.__name__,
                    "error_code": failure_code(exc),
                },
            )
            if last:
                parsed.give_up(self, f"failed after {receive_count} attempts ({exc.__class__.__name__})", exc)
            raise

    # -- split -----------------------------------------------------------------------------------
    def split(self, job_id: str) -> None:
        found = self.store.get_state(job_id)
        if found is None:
            return
        state = found[0]
        etag: str | None = found[1]
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

            known = (state, etag) if etag else None
            state, wrote, etag = self.store.swap_state(job_id, record, known=known)
            if wrote and state["status"] == JobStatus.FAILED:
                logger.info("job failed at split", extra={"job_id": job_id, "reason": state.get("reason")})
                self._job_finished(state)
        if model.is_terminal(state["status"]) and not state.get("dispatched_through"):
            return  # failed at planning
        # A dispatch once begun is finished even if the job was cancelled meanwhile: its chunks
        # are then counted as skipped, so the job's counts still add up to its total.
        if plan is None:
            plan = self._read_plan(job_id)
        known = (state, etag) if etag else None
        self._dispatch(job_id, state.get("owner"), plan, int(state.get("dispatched_through") or 0), known)

    def _dispatch(
        self,
        job_id: str,
        owner: str | None,
        plan: Plan,
        start: int,
        known: tuple[dict[str, Any], str] | None = None,
    ) -> None:
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
            self.store.update_state(job_id, dispatched, known=known)
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
        reads = JobReads(state)
        messages = []
        for number in numbers:
            chunk = self._planned_chunk(job_id, number, reads)
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
        if data is None:
            raise LookupError(f"job {job_id} has no plan")
        return Plan.from_lines(data)

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
    def _reads(self, job_id: str) -> JobReads | None:
        """The job's state as this invocation read it (once), or None for an unknown job."""
        invocation = self.invocations.current
        if invocation is not None and job_id in invocation.jobs:
            return invocation.jobs[job_id]
        found = self.store.get_state(job_id)
        if found is None:
            return None
        reads = JobReads(found[0], found[1])
        if invocation is not None:
            invocation.jobs[job_id] = reads
        return reads

    def _planned_chunk(self, job_id: str, number: int, reads: JobReads | None = None) -> Chunk | None:
        if reads is None:
            found = self.store.get_state(job_id)
            total = found[0].get("chunks_total") if found else None
        else:
            total = reads.state.get("chunks_total")
        if total is None or number >= int(total):
            return None
        return planned_chunk(self.store, reads, job_id, number, int(total))

    def _validated(self, ref: ChunkRef, reads: JobReads) -> bool:
        """True when the job's plan holds exactly this chunk; otherwise the message is logged and
        dropped (retrying a forged or corrupted message cannot make it true)."""
        planned = self._planned_chunk(ref.job_id, ref.chunk, reads)
        if planned is not None and planned.ref(ref.job_id) == ref:
            return True
        logger.error(
            "chunk message does not match the job's plan; dropped",
            extra={"job_id": ref.job_id, "chunk": ref.chunk, "chunk_message": ref.to_message()},
        )
        return False

    def process_chunk(self, ref: ChunkRef, message_id: str | None = None) -> None:
        """Run (or skip) one chunk; its completion is accounted at the invocation's end, or at
        once outside a batch."""
        reads = self._reads(ref.job_id)
        if reads is None:
            logger.error("chunk message for an unknown job; dropped", extra={"job_id": ref.job_id})
            return
        if not self._validated(ref, reads):
            return
        state = reads.state
        if model.is_chunk_done(state, ref.chunk):
            self._write_errors_report(ref.job_id, state)
            return
        if state["status"] == JobStatus.QUEUED:
            # The start is a compare-and-swap: a cancel that lands first makes this chunk skip, a
            # cancel that lands after it sees the job started and answers `cancelling`. (A job
            # already running has `started_at`: any cancel from now on answers `cancelling`.)
            moment = self.clock()
            known = (reads.state, reads.etag) if reads.etag else None
            reads.state, _, reads.etag = self.store.swap_state(
                ref.job_id, lambda current: model.claim_chunk(current, moment), known=known
            )
            state = reads.state
        marker = self._run_or_skip(ref, state)
        self._completed(message_id, marker, reads)

    def _run_or_skip(self, ref: ChunkRef, state: dict[str, Any]) -> ChunkMarker:
        """The chunk's claim decides, once for every delivery of this attempt: "run" when the job
        may run chunks as this invocation read it, "skip" otherwise. A chunk claimed "run" is run
        to its end even if the job was cancelled since (its rows may be in the sink already); a
        chunk claimed "skip" never writes to the sink."""
        attempt = int(state.get("attempt") or 0)
        wanted = RUN if model.may_run_chunks(state) else SKIP
        key = Keys.claim(ref.job_id, ref.chunk, attempt)
        claimed = self.store.create_json(key, {"decision": wanted})
        decision = wanted
        if not claimed:
            decision = str((self.store.get_json(key) or {}).get("decision", RUN))
            stored = self.store.get_json(Keys.marker(ref.job_id, ref.chunk, attempt))
            if stored:
                return ChunkMarker.from_dict(stored)  # an earlier delivery finished it
        if decision == SKIP:
            return self._create_marker(self._skipped(ref, attempt), attempt)
        data = self.store.get_range(
            state["input_key"],
            ref.start,
            ref.end,
            version_id=state.get("input_version"),
            etag=state.get("input_etag"),
        )
        rows, errors = self._run_records(ref, data)
        self.sink.write(ref.job_id, ref.chunk, rows)
        return self._create_marker(ChunkMarker.processed(ref, len(rows), errors), attempt)

    def _skipped(self, ref: ChunkRef, attempt: int) -> ChunkMarker:
        """A chunk not run in this attempt. In a retry the chunk's last run stands (its rows stay
        in the sink, its failed records stay failed), so the job's counts match its sink; in the
        first run every record is skipped."""
        for earlier in range(attempt - 1, -1, -1):
            stored = self.store.get_json(Keys.marker(ref.job_id, ref.chunk, earlier))
            if stored:
                return replace(ChunkMarker.from_dict(stored), attempt=attempt)
        return replace(ChunkMarker.skipped_all(ref), attempt=attempt)

    def _completed(self, message_id: str | None, marker: ChunkMarker, reads: JobReads) -> None:
        invocation = self.invocations.current
        if invocation is not None:
            invocation.pending.append((message_id, marker))
            return
        self._account_with(marker.job_id, [marker], reads.state)

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
        seen = 0
        for raw in iter_chunk_records(data, ref.first_record):
            seen += 1
            if seen > ref.count:
                break
            if raw.record is None:
                errors.append(model.record_error(raw.index, f"record {raw.index}: {raw.error}"))
                continue
            problem = self.check(raw.record) if self.check else None
            if problem is not None:
                errors.append(model.record_error(raw.index, problem))
                continue
            outcome = self._transform(raw.index, raw.record)
            if isinstance(outcome, str):
                errors.append(model.record_error(raw.index, outcome))
            else:
                rows.append((raw.index, outcome))
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

    def fail_chunk(self, ref: ChunkRef, reason: str) -> None:
        """Last receive of a failing chunk: its records are failed in the job before the DLQ.

        Only a chunk the plan holds is failed; a forged message is never counted. Accounted at
        once, not at the invocation's end: the message leaves for the dead-letter queue."""
        found = self.store.get_state(ref.job_id)
        if found is None:
            return
        reads = JobReads(found[0])
        if not self._validated(ref, reads):
            return
        attempt = int(found[0].get("attempt") or 0)
        marker = self._create_marker(ChunkMarker.failed_all(ref, reason), attempt)
        try:
            self._account_with(ref.job_id, [marker], found[0])
        except StateNotFound:
            return

    # -- accounting --------------------------------------------------------------------------
    def begin_batch(self) -> None:
        """Open this thread's invocation: states and plans read once, completions held."""
        self.invocations.open()

    def end_batch(self) -> list[str]:
        """Account the invocation's completions, one job at a time; returns the message ids of the
        completions that could not be accounted (their messages are to be received again)."""
        invocation = self.invocations.close()
        if invocation is None:
            return []
        failed: list[str] = []
        by_job: dict[str, list[tuple[str | None, ChunkMarker]]] = {}
        for message_id, marker in invocation.pending:
            by_job.setdefault(marker.job_id, []).append((message_id, marker))
        for job_id, entries in by_job.items():
            reads = invocation.jobs.get(job_id)
            try:
                self._account_with(job_id, [m for _, m in entries], reads.state if reads else None)
            except Exception as exc:  # noqa: BLE001 - the messages come back; counted once then
                logger.warning(
                    "chunk completions not accounted; their messages are retried",
                    extra={
                        "job_id": job_id,
                        "error_type": exc.__class__.__name__,
                        "error_code": failure_code(exc),
                    },
                )
                failed.extend(i for i, _ in entries if i is not None)
        return failed

    def account(self, marker: ChunkMarker) -> dict[str, Any]:
        """Add one chunk's counts to the job once, and end the job when it was the last chunk."""
        return self.account_markers(marker.job_id, [marker])

    def account_markers(
        self, job_id: str, markers: list[ChunkMarker], state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        state = self.ledger.account(job_id, markers, state)
        self._write_errors_report(job_id, state)
        return state

    def _account_with(self, job_id: str, markers: list[ChunkMarker], state: dict[str, Any] | None) -> None:
        self.account_markers(job_id, markers, state)

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
