"""POST /jobs/{job_id}/retry: run a terminal job's failed chunks again, within its retention.

As Step Functions redrives a map run: only the chunks with failed records run again, the
others keep their counts. The state change is one compare-and-swap (`model.retry_chunks`): the
chunks are no longer counted, the job is `running` and its `attempt` goes up, so the new run's
chunk markers have keys of their own. One split message then asks the worker to send the
chunks; the sink's idempotency by (job_id, record_index) makes the re-run safe. If that message
cannot be sent the state change is undone, so a job never waits for chunks nobody sends.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from async_jobs import model
from async_jobs.messaging import JobQueue
from async_jobs.model import Rerun
from async_jobs.planner import chunk_from_line, chunk_line_range
from async_jobs.problems import ProblemError
from async_jobs.reports import ErrorsReport
from async_jobs.service import JobViews, Outcome, UrlFor
from async_jobs.store import JobStore, Keys


class RetryService:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        views: JobViews,
        *,
        authorization: str,
        clock: Callable[[], datetime] = model.now,
    ) -> None:
        self.store = store
        self.queue = queue
        self.views = views
        self.authorization = authorization
        self.clock = clock

    def retry(self, job_id: str, caller: str | None, url_for: UrlFor) -> Outcome:
        state, _ = self.views.load_visible(job_id, caller, self.authorization)
        job_id = state["job_id"]
        problem = model.retry_problem(state)
        if problem is not None:
            raise _conflict(problem)
        reruns = self._reruns(job_id, state)
        moment = self.clock()
        before: dict[str, Any] = {}

        attempt = int(state.get("attempt") or 0)

        def redrive(current: dict[str, Any]) -> bool:
            before.clear()
            # The reruns' counts were read for this attempt: another retry since the read (a new
            # attempt, even one that ended with the same failed chunks) or a change of the failed
            # set makes them stale, and the caller is answered from what is stored now.
            if (
                model.retry_problem(current)
                or int(current.get("attempt") or 0) != attempt
                or current.get("chunks_with_errors") != state.get("chunks_with_errors")
            ):
                return False
            before.update(copy.deepcopy(current))
            model.retry_chunks(current, reruns, moment)
            return True

        state, wrote = self.store.update_state(job_id, redrive)
        if not wrote:
            raise _conflict(model.retry_problem(state) or "The job changed meanwhile; read it and try again.")
        attempt = int(state["attempt"])  # the new attempt
        try:
            self.queue.send_retry(job_id, attempt, owner=state.get("owner"))
        except Exception:
            self._undo(job_id, attempt, before)
            raise
        resource = self.views.render(state, url_for)
        return Outcome(202, resource, self.views.headers(resource, url_for))

    def _reruns(self, job_id: str, state: dict[str, Any]) -> list[Rerun]:
        """Each failed chunk's records (from the plan) and failed count (from its errors)."""
        numbers = model.chunk_numbers(model.ranges(state.get("chunks_with_errors")))
        errors = ErrorsReport(self.store).chunk_errors(job_id, numbers)
        reruns = []
        for number in numbers:
            start, end = chunk_line_range(number)
            line = self.store.get_range_or_none(Keys.plan_lines(job_id), start, end)
            if line is None or not line.strip():
                raise _conflict("The job's plan is no longer available; submit the job again.")
            chunk = chunk_from_line(line)
            reruns.append(Rerun(number, chunk.first_record, chunk.count, len(errors[number])))
        return reruns

    def _undo(self, job_id: str, attempt: int, before: dict[str, Any]) -> None:
        """The retry message was not sent: put the job back as it was (unless a worker already
        picked the retry up, which cannot happen without the message)."""

        def restore(current: dict[str, Any]) -> bool:
            if int(current.get("attempt") or 0) != attempt or not current.get("rerun"):
                return False
            current.clear()
            current.update(before)
            return True

        self.store.update_state(job_id, restore)


def _conflict(detail: str) -> ProblemError:
    return ProblemError(409, detail, slug="job-not-retryable")
