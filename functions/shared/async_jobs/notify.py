"""Completion notifications: one EventBridge event and one signed callback per terminal transition.

Every status change goes through `model.transition`; a terminal one sets `notify: "pending"` in
the same compare-and-swap that stores the status, wherever it happens (the last chunk, a cancel,
a failed split, dead-letter accounting, an expired upload). The store calls `queue_pending` with
every state it reads or writes; a pending state queues one `{"kind": "notify"}` message and then
marks itself `queued`. A crash between the two leaves it pending, and the next read of the job
(the redelivered message that made it terminal, a split, a DELETE) queues it again; several
notify messages of one ending are harmless, because the worker's `handle` claims each channel
with a marker written with `If-None-Match: *`:

  jobs/{id}/notifications/a{attempt}/event.json         the EventBridge event
  jobs/{id}/notifications/a{attempt}/callback-{n}.json  callback delivery attempt n

A claim is `claimed` while its worker publishes and `done` afterwards. A second delivery that
finds a fresh claim waits a few seconds for it to be done, then gives up (SQS delivers it again);
a claim older than `CLAIM_LEASE_SECONDS` belongs to a worker that died before publishing and is
taken over, so a crash delays a notification but never loses it. A publication that fails
releases its claim and raises, so SQS redelivers the message.

A callback attempt that meets a network error, 5xx, 408 or 429 queues attempt n + 1 with an
exponential delay (SQS DelaySeconds, at most 900 s) before its own claim is marked done; after
`max_attempts` the callback is `failed`. The job resource shows `callback.status`, `attempts`,
`last_attempt_at` and `last_status`.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from async_jobs import model
from async_jobs.callbacks import CallbackClient, backoff_seconds
from async_jobs.chunks import BadMessage
from async_jobs.contract import contract
from async_jobs.messaging import JobQueue
from async_jobs.observability import logger
from async_jobs.store import JobStore, Keys, dumps

KIND = "notify"
DETAIL_TYPE = "Job Ended"
CLAIM_LEASE_SECONDS = 60.0
CLAIM_WAIT_SECONDS = 6.0


class NotificationBusy(Exception):
    """Another delivery holds this notification's claim; SQS delivers the message again."""


class PublishFailed(Exception):
    """EventBridge did not take the event after retries."""


@dataclass(frozen=True)
class NotifyRef:
    """A notify message: the job, its run (`attempt`, a retry ends again) and callback attempt."""

    job_id: str
    attempt: int
    delivery: int = 1
    not_before: float = 0.0

    @classmethod
    def parse(cls, message: dict[str, Any]) -> NotifyRef:
        job_id = message.get("job_id")
        if not isinstance(job_id, str) or not model.is_job_id(job_id):
            raise BadMessage("notify message: job_id is not a UUID")
        values = []
        for name in ("attempt", "delivery"):
            value = message.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BadMessage(f"notify message: {name} must be a non-negative integer")
            values.append(value)
        not_before = message.get("not_before", 0)
        if not isinstance(not_before, int | float) or isinstance(not_before, bool):
            raise BadMessage("notify message: not_before must be a number")
        return cls(job_id, values[0], max(1, values[1]), float(not_before))

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "kind": KIND,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "delivery": self.delivery,
        }
        if self.not_before:
            message["not_before"] = self.not_before
        return message

    def event_id(self) -> str:
        return f"{self.job_id}:{self.attempt}"


@dataclass(frozen=True)
class EventSettings:
    enabled: bool = True
    bus_name: str | None = None  # None: the account's default bus
    source: str = "async-jobs"


class EventPublisher:
    """PutEvents of one entry, retried while EventBridge reports it failed (FailedEntryCount)."""

    def __init__(
        self,
        events: Any,
        settings: EventSettings,
        *,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.events = events
        self.settings = settings
        self.max_attempts = max_attempts
        self._sleep = sleep

    def publish(self, detail: dict[str, Any], resources: list[str] | None = None) -> None:
        entry: dict[str, Any] = {
            "Source": self.settings.source,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail, separators=(",", ":")),
            "Resources": resources or [],
        }
        if self.settings.bus_name:
            entry["EventBusName"] = self.settings.bus_name
        error = "unknown"
        for attempt in range(self.max_attempts):
            response = self.events.put_events(Entries=[entry])
            if not response.get("FailedEntryCount"):
                return
            failed = (response.get("Entries") or [{}])[0]
            error = str(failed.get("ErrorCode") or "unknown")
            self._sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))
        raise PublishFailed(f"PutEvents kept failing: {error}")


class Claims:
    """Per-channel claims of one notification, as S3 objects created once."""

    def __init__(
        self,
        store: JobStore,
        *,
        lease_seconds: float = CLAIM_LEASE_SECONDS,
        wait_seconds: float = CLAIM_WAIT_SECONDS,
        clock: Callable[[], datetime] = model.now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock
        self._sleep = sleep

    @staticmethod
    def key(job_id: str, attempt: int, channel: str) -> str:
        return f"{Keys.prefix(job_id)}notifications/a{attempt}/{channel}.json"

    def claim(self, key: str) -> bool:
        """True: this delivery publishes. False: it was already published. Raises NotificationBusy
        while another live delivery holds the claim."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            if self.store.create_json(key, self._claimed()):
                return True
            current = self.store.get_json(key)
            if current is None:
                continue  # released meanwhile: try to create it again
            if current.get("state") == "done":
                return False
            age = (self.clock() - model.parse_time(str(current["claimed_at"]))).total_seconds()
            if age > self.lease_seconds and self._take_over(key, current):
                return True
            if time.monotonic() >= deadline:
                raise NotificationBusy(key)
            self._sleep(0.25)

    def _claimed(self) -> dict[str, Any]:
        return {"state": "claimed", "claimed_at": model.isoformat(self.clock())}

    def _take_over(self, key: str, seen: dict[str, Any]) -> bool:
        def take(current: dict[str, Any]) -> bool:
            if current != seen:
                return False
            current.update(self._claimed())
            return True

        found = self.store.update_json(key, take)
        return found is not None and found[1]

    def done(self, key: str, **fields: Any) -> None:
        self.store.put_json(key, {"state": "done", "done_at": model.isoformat(self.clock()), **fields})

    def release(self, key: str) -> None:
        try:
            self.store.delete(key)
        except Exception:  # noqa: BLE001 - the lease frees it anyway
            logger.warning("notification claim not released", extra={"key": key})


@dataclass(frozen=True)
class CallbackSettings:
    max_attempts: int = field(
        default_factory=lambda: int(contract().settings["callback_max_attempts"].default)
    )


class Notifier:
    """Queues a job's notifications once it has ended (API and worker) and publishes them (worker)."""

    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        *,
        events: EventPublisher | None = None,
        events_enabled: bool | None = None,
        callbacks: CallbackClient | None = None,
        callback_settings: CallbackSettings | None = None,
        clock: Callable[[], datetime] = model.now,
        claims: Claims | None = None,
        errors_url_ttl_seconds: int | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.events = events
        # the API side queues without publishing: it only needs to know whether events are on
        self.events_enabled = events is not None if events_enabled is None else events_enabled
        self.callbacks = callbacks
        self.callback_settings = callback_settings or CallbackSettings()
        self.clock = clock
        self.claims = claims or Claims(store, clock=clock)
        # links.errors of the resource an event or callback carries: the worker's
        # ERRORS_URL_TTL_SECONDS, the status function's setting (the contract's default otherwise)
        self.errors_url_ttl_seconds = int(
            errors_url_ttl_seconds or contract().settings["errors_url_ttl_seconds"].default
        )
        self._local = threading.local()

    def attach(self) -> Notifier:
        """Have the store hand every state it reads or writes to `queue_pending`."""
        self.store.on_state = self.queue_pending
        return self

    # -- queueing (wherever a job ends) ---------------------------------------------------------
    def wanted(self, state: dict[str, Any]) -> bool:
        return self.events_enabled or bool(state.get("callback"))

    def queue_pending(self, state: dict[str, Any]) -> None:
        if state.get("notify") != model.NOTIFY_PENDING or not self.wanted(state):
            return
        if getattr(self._local, "busy", False):
            return  # the store call below reports back here
        self._local.busy = True
        try:
            attempt = int(state.get("attempt") or 0)
            self.queue.send_notify(NotifyRef(state["job_id"], attempt).to_message(), dedup=f"a{attempt}")

            def queued(current: dict[str, Any]) -> bool:
                if (
                    current.get("notify") != model.NOTIFY_PENDING
                    or int(current.get("attempt") or 0) != attempt
                ):
                    return False
                current["notify"] = model.NOTIFY_QUEUED
                return True

            self.store.update_state(state["job_id"], queued)
        finally:
            self._local.busy = False

    # -- publishing (the worker) ----------------------------------------------------------------
    def handle(self, ref: NotifyRef) -> None:
        if ref.not_before and time.time() < ref.not_before:
            # a FIFO queue takes no per-message delay: the message comes back after its
            # visibility timeout
            raise NotificationBusy(f"callback attempt {ref.delivery} is not due yet")
        found = self.store.get_state(ref.job_id)
        if found is None:
            logger.warning("notification of an unknown or expired job; dropped", extra={"job_id": ref.job_id})
            return
        state = found[0]
        if not model.is_terminal(state["status"]) or int(state.get("attempt") or 0) != ref.attempt:
            logger.info(
                "notification of an ending that no longer stands; dropped", extra={"job_id": ref.job_id}
            )
            return
        if self.events is not None and ref.delivery == 1:
            self._publish_event(ref, event_detail(self.resource(state, presign=False)))
        callback = state.get("callback")
        if self.callbacks is not None and callback and callback["status"] == "pending":
            if int(callback["attempts"]) < ref.delivery:
                self._deliver_callback(ref, str(callback["url"]), self.resource(state))

    def resource(self, state: dict[str, Any], *, presign: bool = True) -> dict[str, Any]:
        errors_url = None
        if presign and state.get("errors_report") == "written":
            errors_url = self.store.presign_get(Keys.errors(state["job_id"]), self.errors_url_ttl_seconds)
        return model.render_job(
            state, self_url=state.get("self_url") or "", errors_url=errors_url, moment=self.clock()
        )

    def _publish_event(self, ref: NotifyRef, resource: dict[str, Any]) -> None:
        assert self.events is not None
        key = Claims.key(ref.job_id, ref.attempt, "event")
        if not self.claims.claim(key):
            _duplicate(ref, "event")
            return
        try:
            self.events.publish(resource)
        except Exception:
            self.claims.release(key)
            raise
        self.claims.done(key, event_id=ref.event_id())
        logger.info("job event published", extra={"job_id": ref.job_id, "status": resource["status"]})

    def _deliver_callback(self, ref: NotifyRef, url: str, resource: dict[str, Any]) -> None:
        assert self.callbacks is not None
        key = Claims.key(ref.job_id, ref.attempt, f"callback-{ref.delivery}")
        if not self.claims.claim(key):
            _duplicate(ref, "callback")
            return
        try:
            body = dumps(resource)
            delivery = self.callbacks.deliver(url, body, ref.event_id())
            outcome = delivery.outcome
            last = ref.delivery >= self.callback_settings.max_attempts
            if outcome == "retry" and last:
                outcome = "failed"
            if outcome == "retry":
                outcome = "pending"
                delay = backoff_seconds(ref.delivery)
                following = NotifyRef(ref.job_id, ref.attempt, ref.delivery + 1, time.time() + delay)
                self.queue.send_notify(
                    following.to_message(), dedup=f"a{ref.attempt}d{following.delivery}", delay_seconds=delay
                )
            moment = self.clock()

            def record(current: dict[str, Any]) -> bool:
                if int(current.get("attempt") or 0) != ref.attempt:
                    return False
                return model.record_callback_attempt(
                    current,
                    attempt=ref.delivery,
                    outcome=outcome,
                    http_status=delivery.http_status,
                    moment=moment,
                )

            self.store.update_state(ref.job_id, record)
        except Exception:
            self.claims.release(key)
            raise
        self.claims.done(key, outcome=outcome, http_status=delivery.http_status)
        log = logger.info if outcome != "failed" else logger.warning
        log(
            "callback attempt",
            extra={
                "job_id": ref.job_id,
                "callback_attempt": ref.delivery,
                "outcome": outcome,
                "http_status": delivery.http_status,
                "detail": delivery.detail,
            },
        )


def event_detail(resource: dict[str, Any]) -> dict[str, Any]:
    """The job resource as a completion event carries it: no presigned link, no callback URL.

    Anyone allowed to put rules on the bus receives the event, so it carries nothing that grants
    access (the errors report's presigned GET) or names the owner's endpoint (the callback URL).
    The owner reads both with GET /jobs/{job_id}; a callback, sent to the owner's own URL, has them.
    """
    detail = dict(resource)
    detail["links"] = {**(resource.get("links") or {}), "errors": None}
    if resource.get("callback"):
        detail["callback"] = {k: v for k, v in resource["callback"].items() if k != "url"}
    return detail


def _duplicate(ref: NotifyRef, channel: str) -> None:
    logger.info(
        "notification already sent; this delivery sends nothing",
        extra={"job_id": ref.job_id, "channel": channel, "callback_attempt": ref.delivery},
    )
