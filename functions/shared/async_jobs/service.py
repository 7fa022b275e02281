"""The API side of the engine: submit, upload slots, cancel and read jobs.

Handlers call these with plain values taken from the request; every problem is raised as a
ProblemError before the first write, so a rejected request stores nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from async_jobs import accounting, index, model
from async_jobs.callbacks import validate_callback_url
from async_jobs.expiry import Expiry
from async_jobs.idempotency import STALE_CLAIM_SECONDS, IdempotencyRecord, IdempotencyStore, validate_key
from async_jobs.messaging import JobQueue
from async_jobs.model import JobStatus
from async_jobs.normalize import NormalizedInput, normalize, normalize_upload_request
from async_jobs.problems import ProblemError, bad_request, not_found
from async_jobs.store import NDJSON, JobStore, Keys

UrlFor = Callable[[str], str]


@dataclass
class Outcome:
    status_code: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


def require_job_id(value: str) -> str:
    if not model.is_job_id(value):
        raise bad_request(
            "The job id must be a UUID.",
            errors=[{"parameter": "job_id", "detail": "must be a lower-case UUID"}],
            slug="invalid-job-id",
        )
    return value


class JobViews:
    """Renders stored states as the public job resource."""

    def __init__(
        self,
        store: JobStore,
        *,
        retry_after_seconds: int,
        errors_url_ttl_seconds: int = 3600,
        clock: Callable[[], datetime] = model.now,
    ) -> None:
        self.store = store
        self.retry_after_seconds = retry_after_seconds
        self.errors_url_ttl_seconds = errors_url_ttl_seconds
        self.clock = clock

    def errors_url(self, state: dict[str, Any]) -> str | None:
        if state.get("errors_report") != "written":
            return None
        return self.store.presign_get(Keys.errors(state["job_id"]), self.errors_url_ttl_seconds)

    def render(self, state: dict[str, Any], url_for: UrlFor) -> dict[str, Any]:
        return model.render_job(
            state,
            self_url=url_for(state["job_id"]),
            errors_url=self.errors_url(state),
            moment=self.clock(),
            live=self.live_counts(state),
        )

    def live_counts(self, state: dict[str, Any]) -> tuple[int, int]:
        """(succeeded, failed) of the job's open accounting segments: progress between roll-ups."""
        attempt = int(state.get("attempt") or 0)
        keys = [Keys.segment(state["job_id"], k, attempt) for k in accounting.open_segments(state)]
        return accounting.live_counts((self.store.get_json(key) for key in keys), attempt)

    def headers(self, resource: dict[str, Any], url_for: UrlFor) -> dict[str, str]:
        headers = {"Location": url_for(resource["job_id"])}
        if not model.is_terminal(resource["status"]):
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers

    def load_visible(self, job_id: str, caller: str | None, authorization: str) -> tuple[dict[str, Any], str]:
        """The state and its S3 ETag; 404 for an unknown job or another owner's."""
        found = self.store.get_state(require_job_id(job_id))
        if found is None:
            raise not_found()
        state, etag = found
        if authorization != "NONE" and state.get("owner") != caller:
            raise not_found()
        return state, etag


class StatusService:
    def __init__(self, views: JobViews, authorization: str) -> None:
        self.views = views
        self.authorization = authorization

    def get(self, job_id: str, caller: str | None, if_none_match: str | None, url_for: UrlFor) -> Outcome:
        state, s3_etag = self.views.load_visible(job_id, caller, self.authorization)
        resource = self.views.render(state, url_for)
        # The body carries freshly presigned links, so the ETag follows the stored version and the
        # status a reader sees (an upload slot turns `expired` without a write), not the bytes.
        etag = '"' + hashlib.sha256(f"{s3_etag}|{resource['status']}".encode()).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if not model.is_terminal(resource["status"]):
            headers["Retry-After"] = str(self.views.retry_after_seconds)
        if if_none_match and _etag_matches(if_none_match, etag):
            return Outcome(304, None, headers)
        return Outcome(200, resource, headers)


def in_progress() -> ProblemError:
    return ProblemError(
        409,
        "A request with this Idempotency-Key is still in progress; retry shortly.",
        headers={"Retry-After": "1"},
        slug="idempotency-key-in-progress",
    )


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


class SubmitService:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        views: JobViews,
        *,
        authorization: str,
        max_records_per_job: int,
        max_body_bytes: int,
        upload_url_ttl_seconds: int,
        max_upload_bytes: int = 1024 * 1024 * 1024,
        callback_hosts: Sequence[str] = (),
        clock: Callable[[], datetime] = model.now,
    ) -> None:
        self.store = store
        self.queue = queue
        self.views = views
        self.idempotency = IdempotencyStore(store)
        self.authorization = authorization
        self.max_records_per_job = max_records_per_job
        self.max_body_bytes = max_body_bytes
        self.upload_url_ttl_seconds = upload_url_ttl_seconds
        self.max_upload_bytes = max_upload_bytes
        # hosts a job's callback URL may name (`callbacks.py`); empty: callbacks refused
        self.callback_hosts = tuple(callback_hosts)
        self.clock = clock
        self.expiry = Expiry(store, queue, clock=clock)

    # -- POST /jobs ----------------------------------------------------------------------
    def submit(
        self,
        *,
        body: bytes,
        content_type: str | None,
        idempotency_key: str | None,
        owner: str | None,
        url_for: UrlFor,
        callback_url: str | None = None,
    ) -> Outcome:
        key = validate_key(idempotency_key)
        callback = validate_callback_url(callback_url, self.callback_hosts)
        if len(body) > self.max_body_bytes:
            raise ProblemError(
                413,
                f"The body is larger than {self.max_body_bytes} bytes; use POST /jobs/uploads.",
                title="Body too large",
                slug="body-too-large",
            )
        normalized = normalize(body, content_type, self.max_records_per_job)
        if key is None:
            state = self._create(
                model.new_job_id(), normalized, owner, callback_url=callback, url_for=url_for
            )
            return self._accepted(state, url_for, replayed=False)

        existing = self.idempotency.get(owner, key)
        if existing is None:
            candidate = IdempotencyRecord(
                model.new_job_id(),
                normalized.body_hash,
                claimed_at=model.isoformat(self.clock()),
                committed=False,
            )
            if self.idempotency.claim(owner, key, candidate):
                try:
                    state = self._create(
                        candidate.job_id, normalized, owner, callback_url=callback, url_for=url_for
                    )
                except Exception:
                    self._release(owner, key)
                    raise
                self.idempotency.commit(owner, key, candidate)
                return self._accepted(state, url_for, replayed=False)
            existing = self.idempotency.get(owner, key)
            if existing is None:  # claimed and released meanwhile: the client may retry
                raise in_progress()
        if existing.body_hash != normalized.body_hash:
            raise ProblemError(
                422,
                "This Idempotency-Key was already used with a different body.",
                title="Idempotency-Key reused",
                slug="idempotency-key-reused",
            )
        if not existing.committed:
            if not self._stale(existing):
                # The first request is still creating the job and may yet take it back.
                raise in_progress()
            # The first request stopped for good between its claim and its commit: finish the
            # same job (every step of _create is idempotent) and commit it here.
            state = self._create(existing.job_id, normalized, owner, callback_url=callback, url_for=url_for)
            self.idempotency.commit(owner, key, existing)
            return self._accepted(state, url_for, replayed=True)
        found = self.store.get_state(existing.job_id)
        if found is None:
            raise ProblemError(
                409,
                "The job of this Idempotency-Key no longer exists; send the job with a new key.",
                slug="idempotency-key-expired",
            )
        return self._accepted(found[0], url_for, replayed=True)

    def _stale(self, record: IdempotencyRecord) -> bool:
        if not record.claimed_at:
            return True
        age = (self.clock() - model.parse_time(record.claimed_at)).total_seconds()
        return age > STALE_CLAIM_SECONDS

    def _create(
        self,
        job_id: str,
        normalized: NormalizedInput,
        owner: str | None,
        *,
        callback_url: str | None,
        url_for: UrlFor,
    ) -> dict[str, Any]:
        moment = self.clock()
        state = model.new_state(
            job_id=job_id,
            owner=owner,
            status=JobStatus.QUEUED,
            input_key=Keys.input(job_id),
            total_records=normalized.total_records,
            metadata=normalized.metadata,
            moment=moment,
            callback_url=callback_url,
            self_url=url_for(job_id),
        )
        self.store.put(Keys.input(job_id), normalized.ndjson)
        # The index entry goes before the state: a job the caller can read is always listed.
        entry = index.entry_key(state)
        self.store.put_json(entry, {})
        if not self.store.create_state(state):
            # A stale claim taken over: the state landed but the split may not have; a second
            # split message is harmless (the split is idempotent).
            found = self.store.get_state(job_id)
            self.queue.send_split(job_id, owner=owner)
            if found and index.entry_key(found[0]) != entry:
                self.store.delete(entry)  # the first request listed the job at its own moment
            return found[0] if found else state
        try:
            self.queue.send_split(job_id, owner=owner)
        except Exception:
            # Not queued means not accepted: take the job back so nothing is left behind.
            self.store.delete(Keys.state(job_id), Keys.input(job_id), entry)
            raise
        return state

    def _release(self, owner: str | None, key: str) -> None:
        try:
            self.idempotency.release(owner, key)
        except Exception:  # noqa: BLE001 - best effort; the replay path completes the job later
            return

    def _accepted(self, state: dict[str, Any], url_for: UrlFor, *, replayed: bool) -> Outcome:
        resource = self.views.render(state, url_for)
        headers = self.views.headers(resource, url_for)
        if "Retry-After" not in headers:
            headers["Retry-After"] = str(self.views.retry_after_seconds)
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return Outcome(202, resource, headers)

    # -- POST /jobs/uploads -----------------------------------------------------------------
    def create_upload(
        self,
        *,
        owner: str | None,
        body: bytes,
        content_type: str | None,
        url_for: UrlFor,
        callback_url: str | None = None,
    ) -> Outcome:
        callback = validate_callback_url(callback_url, self.callback_hosts)
        if len(body) > self.max_body_bytes:
            raise ProblemError(
                413, f"The body is larger than {self.max_body_bytes} bytes.", slug="body-too-large"
            )
        metadata = normalize_upload_request(body, content_type)
        job_id = model.new_job_id()
        moment = self.clock()
        expires_at = moment + timedelta(seconds=self.upload_url_ttl_seconds)
        state = model.new_state(
            job_id=job_id,
            owner=owner,
            status=JobStatus.AWAITING_UPLOAD,
            input_key=Keys.upload(job_id),
            total_records=None,
            metadata=metadata,
            moment=moment,
            expires_at=expires_at,
            max_records=self.max_records_per_job,
            callback_url=callback,
            self_url=url_for(job_id),
        )
        # the bound travels with the slot: the worker applies it when the object lands (uploads.py)
        state["max_upload_bytes"] = self.max_upload_bytes
        deadline = model.upload_deadline(state)
        assert deadline is not None  # the slot has its expires_at
        url = self.store.presign_put(Keys.upload(job_id), self.upload_url_ttl_seconds, NDJSON)
        # The expiry goes out before the state: a slot that can be read always ends, written and
        # notified, even when its upload never comes. Not queued: nothing stored, no URL (5xx).
        self.expiry.queue_expiry(job_id, owner, deadline)
        self.store.put_json(index.entry_key(state), {})
        self.store.create_state(state)
        resource = {
            "job_id": job_id,
            "status": JobStatus.AWAITING_UPLOAD.value,
            "upload": {
                "url": url,
                "method": "PUT",
                # both are signed into the URL: the PUT must send them (S3 answers 403 otherwise),
                # and If-None-Match makes every PUT after the first landed one a 412
                "headers": {"Content-Type": NDJSON, "If-None-Match": "*"},
                # a PUT must begin by expires_at (S3 checks the URL when it starts) and land by
                # complete_by; an object larger than max_bytes fails the job when it lands
                "expires_at": model.isoformat(expires_at),
                "complete_by": model.isoformat(deadline),
                "max_bytes": self.max_upload_bytes,
            },
        }
        return Outcome(201, resource, {"Location": url_for(job_id)})

    # -- DELETE /jobs/{job_id} ------------------------------------------------------------
    def cancel(self, job_id: str, caller: str | None, url_for: UrlFor) -> Outcome:
        state, _ = self.views.load_visible(job_id, caller, self.authorization)
        moment = self.clock()
        outcome: dict[str, str] = {}

        def mutate(current: dict[str, Any]) -> bool:
            outcome.clear()
            status = model.effective_status(current, moment)
            if model.is_terminal(status):
                outcome["conflict"] = status
                return False
            if status == JobStatus.CANCELLING:
                return False
            started = bool(current.get("started_at")) or status == JobStatus.RUNNING
            target = JobStatus.CANCELLING if started else JobStatus.CANCELLED
            model.transition(current, target, moment)
            return True

        state, _ = self.store.update_state(state["job_id"], mutate)
        if "conflict" in outcome:
            raise ProblemError(409, f"The job is already {outcome['conflict']}.", slug="job-terminal")
        resource = self.views.render(state, url_for)
        return Outcome(202, resource, self.views.headers(resource, url_for))
