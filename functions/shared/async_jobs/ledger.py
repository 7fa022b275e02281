"""Accounting applied through the store: chunk markers into segments, segments into the state.

`accounting` holds the rules (pure); this applies them with compare-and-swap writes: one per
segment a batch of completions touches, and one roll-up of the state per segment completed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from async_jobs import accounting, model
from async_jobs.chunks import ChunkMarker
from async_jobs.reports import ErrorsReport
from async_jobs.store import JobStore, Keys, StateNotFound

Emit = Callable[[str, float, str], None]


class Ledger:
    def __init__(
        self,
        store: JobStore,
        reports: ErrorsReport,
        *,
        tolerated_failure_percent: float,
        clock: Callable[[], datetime],
        emit: Emit,
        finished: Callable[[dict[str, Any]], None],
    ) -> None:
        self.store = store
        self.reports = reports
        self.tolerated = tolerated_failure_percent
        self.clock = clock
        self.emit = emit
        self.finished = finished

    def account(
        self, job_id: str, markers: Sequence[ChunkMarker], state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Count the chunks of `markers` once each; returns the job's state as last known.

        `state` is the state the markers' chunks ran under (read once by the invocation); the
        segments written are those of its attempt."""
        for marker in markers:
            self.reports.add(marker)  # before the count: a counted chunk's errors are always kept
        if state is None:
            found = self.store.get_state(job_id)
            if found is None:
                raise StateNotFound(job_id)
            state = found[0]
        attempt = int(state.get("attempt") or 0)
        by_segment: dict[int, list[ChunkMarker]] = {}
        for marker in markers:
            by_segment.setdefault(accounting.segment_of(marker.chunk), []).append(marker)
        for segment, in_segment in sorted(by_segment.items()):
            wanted = accounting.expected(state, segment)
            group = [m for m in in_segment if m.chunk in wanted]
            if not group:
                continue  # counted in the state already: a duplicate
            added: list[ChunkMarker] = []

            def add(
                current: dict[str, Any], group: list[ChunkMarker] = group, added: list[ChunkMarker] = added
            ) -> bool:
                done = model.ranges(current["done"])
                added[:] = [m for m in group if not model.range_contains(done, m.chunk)]
                return accounting.add_markers(current, group)

            stored, wrote = self.store.update_json(  # type: ignore[misc]
                Keys.segment(job_id, segment, attempt), add, create=accounting.new_segment(attempt)
            )
            if wrote:
                self.emit("RecordsProcessed", float(sum(m.succeeded + m.failed for m in added)), "Count")
                self.emit("RecordsFailed", float(sum(m.failed for m in added)), "Count")
            if accounting.is_complete(stored, wanted):
                state = self.roll_up(job_id, stored)
        return state

    def roll_up(self, job_id: str, segment: dict[str, Any]) -> dict[str, Any]:
        outcome: list[accounting.Rolled] = []
        moment = self.clock()

        def rule(current: dict[str, Any]) -> bool:
            rolled = accounting.roll_up(current, segment, self.tolerated, moment)
            outcome[:] = [rolled]
            return rolled.wrote

        state, wrote = self.store.update_state(job_id, rule)
        if wrote and outcome and outcome[0].outcome == "finished":
            self.finished(state)
        return state
