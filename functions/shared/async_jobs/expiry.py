"""Upload slots that expire: the `expire` message writes the ending a reader already sees.

An upload slot (POST /jobs/uploads) whose object never lands reads as `expired` once its
landing deadline has passed (`expires_at` plus `model.UPLOAD_LANDING_MARGIN_SECONDS`, for a PUT
that began before `expires_at`; `model.effective_status`). That ending is written, and so notified like
every terminal transition, by an `{"kind": "expire", "job_id"}` message that submit sends before
it stores the slot's state, with `DelaySeconds` up to the landing deadline (at most 900 s). Sent first, a
slot a caller can see always has its expiry queued; a send that fails stores nothing and the
request fails (5xx), a state write that fails after the send leaves a message the worker drops.

The worker trusts nothing of the message but the job id; the state decides:
  - unknown job: dropped (logged);
  - not `awaiting_upload` (the upload landed, a cancel, an earlier expiry): dropped;
  - not yet due: sent again with the remaining delay (standard queues), or, on a FIFO queue,
    which takes no per-message delay, left to come back after its visibility timeout;
  - due, and the upload object exists (its S3 notification not handled yet, or lost): the
    upload is handled as its notification would be (`uploads.Landing`): its time of landing
    decides between starting the job and expiring it;
  - due, no upload: a compare-and-swap `awaiting_upload -> expired`, which asks for the job's
    notifications in the same write (`model.ended`); a duplicate message finds it ended.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from async_jobs import model
from async_jobs.chunks import BadMessage
from async_jobs.messaging import JobQueue
from async_jobs.model import JobStatus
from async_jobs.observability import logger
from async_jobs.store import JobStore, StateNotFound

KIND = "expire"
# SQS's longest DelaySeconds; a longer wait is covered by sending the message again.
MAX_DELAY_SECONDS = 900


class ExpiryNotDue(Exception):
    """A FIFO queue's expire message came early; SQS delivers it again after its visibility timeout."""


@dataclass(frozen=True)
class ExpireRef:
    """An expire message: the job id and nothing else (the state holds when it is due)."""

    job_id: str

    @classmethod
    def parse(cls, message: dict[str, Any]) -> ExpireRef:
        job_id = message.get("job_id")
        if not isinstance(job_id, str) or not model.is_job_id(job_id):
            raise BadMessage("expire message: job_id is not a UUID")
        return cls(job_id)

    def to_message(self) -> dict[str, Any]:
        return {"kind": KIND, "job_id": self.job_id}


def delay_seconds(deadline: datetime, moment: datetime) -> int:
    """The DelaySeconds of an expire message sent at `moment`: until the slot's landing deadline
    (`expires_at` and the landing margin), at most what SQS takes."""
    remaining = math.ceil((deadline - moment).total_seconds())
    return max(0, min(MAX_DELAY_SECONDS, remaining))


class Expiry:
    """Queues a slot's expiry (submit) and applies it when due (worker)."""

    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        *,
        landed: Callable[[str], bool] | None = None,
        clock: Callable[[], datetime] = model.now,
    ) -> None:
        self.store = store
        self.queue = queue
        # the upload handling (`uploads.Landing.look`): True when the object exists
        self.landed = landed
        self.clock = clock

    def queue_expiry(self, job_id: str, owner: str | None, deadline: datetime) -> None:
        self.queue.send_expire(
            ExpireRef(job_id).to_message(),
            owner=owner,
            delay_seconds=delay_seconds(deadline, self.clock()),
        )

    def handle(self, ref: ExpireRef) -> None:
        found = self.store.get_state(ref.job_id)
        if found is None:
            logger.warning("expiry of an unknown job; dropped", extra={"job_id": ref.job_id})
            return
        state = found[0]
        if state["status"] != JobStatus.AWAITING_UPLOAD or not state.get("expires_at"):
            logger.info(
                "expiry of a job no longer awaiting its upload; dropped",
                extra={"job_id": ref.job_id, "status": state["status"]},
            )
            return
        deadline = model.upload_deadline(state)
        assert deadline is not None  # expires_at is set
        moment = self.clock()
        if moment < deadline:
            self._again(ref, state, deadline, moment)
            return
        if self.landed is not None and self.landed(ref.job_id):
            logger.info("upload found at expiry; handled as landed", extra={"job_id": ref.job_id})
            return

        def expire(current: dict[str, Any]) -> bool:
            if current["status"] != JobStatus.AWAITING_UPLOAD:
                return False
            model.transition(current, JobStatus.EXPIRED, moment)
            return True

        try:
            state, wrote = self.store.update_state(ref.job_id, expire)
        except StateNotFound:
            return
        if wrote:
            logger.info("upload slot expired", extra={"job_id": ref.job_id})

    def _again(self, ref: ExpireRef, state: dict[str, Any], deadline: datetime, moment: datetime) -> None:
        if self.queue.fifo:
            raise ExpiryNotDue(f"upload slot of {ref.job_id} is due at {model.isoformat(deadline)}")
        self.queue.send_expire(
            ref.to_message(), owner=state.get("owner"), delay_seconds=delay_seconds(deadline, moment)
        )
        logger.info("expiry not due yet; sent again", extra={"job_id": ref.job_id})
