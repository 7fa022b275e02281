"""Uploaded inputs: an S3 notification (or the expiry's look) starts, expires or fails a slot.

A notification is a claim, not a fact: anyone who may send to the work queue could write one.
The worker believes it only for an object it can read with the version (and ETag) the
notification names (HeadObject with that VersionId); a notification of a missing object or of
another version is dropped and logged, and the slot waits for the real one or its expiry.

What the object is decides the slot's end, read from S3, never from the message:
  - landed (LastModified) after `expires_at` plus the landing margin: `expired`. A PUT that
    began before `expires_at` (S3 checks the presigned URL when the request starts) lands
    within the margin (`model.UPLOAD_LANDING_MARGIN_SECONDS`), and the slot answer states it
    (`upload.complete_by`);
  - larger than the slot's `max_upload_bytes` (stated as `upload.max_bytes`): `failed` with the
    reason, before the split reads a byte and before any chunk runs;
  - otherwise `queued`, pinned to that version and ETag, and split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from async_jobs import model
from async_jobs.model import JobStatus
from async_jobs.observability import logger
from async_jobs.store import JobStore, Keys, StateNotFound, StoredObject

UPLOAD_KEY = re.compile(r"^jobs/([0-9a-f-]{36})/upload\.ndjson$")


@dataclass(frozen=True)
class Upload:
    """An S3 ObjectCreated notification for a job's upload object: what it claims landed."""

    key: str
    version_id: str | None
    etag: str | None

    @property
    def job_id(self) -> str | None:
        matched = UPLOAD_KEY.match(self.key)
        return matched.group(1) if matched and model.is_job_id(matched.group(1)) else None


def uploads_in(message: dict[str, Any]) -> list[Upload]:
    """The S3 ObjectCreated notifications in a message, with the version they claim."""
    found: list[Upload] = []
    for record in message.get("Records") or []:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        stored = record.get("s3", {}).get("object", {})
        etag = stored.get("eTag")
        version = stored.get("versionId")
        found.append(
            Upload(
                unquote_plus(str(stored.get("key", ""))),
                str(version) if version and version != "null" else None,
                f'"{etag}"' if etag and not str(etag).startswith('"') else etag,
            )
        )
    return found


class Landing:
    """Applies a landed upload to its slot; `start(job_id)` splits a job it queued."""

    def __init__(
        self, store: JobStore, *, start: Callable[[str], None], clock: Callable[[], datetime] = model.now
    ) -> None:
        self.store = store
        self.start = start
        self.clock = clock

    def notified(self, upload: Upload) -> None:
        """An S3 notification: applied only when the object is there in the version it names."""
        job_id = upload.job_id
        if job_id is None:
            return
        found = self.store.head_landed(upload.key, upload.version_id)
        if found is None or (upload.etag is not None and found.etag != upload.etag):
            logger.warning(
                "upload notification of an object not stored in that version; ignored",
                extra={"job_id": job_id, "version_id": upload.version_id, "etag": upload.etag},
            )
            return
        self.land(job_id, found)

    def look(self, job_id: str) -> bool:
        """The upload object looked for (at its slot's expiry): True when it exists, and then
        it is applied as its notification would be."""
        found = self.store.head_landed(Keys.upload(job_id))
        if found is None:
            return False
        self.land(job_id, found)
        return True

    def land(self, job_id: str, found: StoredObject) -> None:
        def apply(current: dict[str, Any]) -> bool:
            if current["status"] != JobStatus.AWAITING_UPLOAD:
                return False
            moment = self.clock()
            deadline = model.upload_deadline(current)
            limit = current.get("max_upload_bytes")
            if deadline is not None and found.last_modified > deadline:
                model.transition(current, JobStatus.EXPIRED, moment)
            elif limit is not None and found.size > int(limit):
                model.fail_job(
                    current,
                    f"The upload is {found.size} bytes; an upload holds at most {limit} bytes. "
                    "Split the input into several jobs.",
                    moment,
                )
            else:
                current["input_key"] = Keys.upload(job_id)
                current["input_version"] = found.version_id
                current["input_etag"] = found.etag
                model.transition(current, JobStatus.QUEUED, moment)
            return True

        try:
            state, _ = self.store.update_state(job_id, apply)
        except StateNotFound:
            return
        if state["status"] == JobStatus.QUEUED:
            self.start(job_id)
