"""S3 adapters: job state with create-once and compare-and-swap, input, markers, reports.

Every write that two workers could race on is conditional: creates use `If-None-Match: *`,
state updates use `If-Match: <etag>` and retry with jittered exponential backoff when S3
answers 412 PreconditionFailed or 409 ConditionalRequestConflict.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from async_jobs import model

JSON = "application/json"
NDJSON = "application/x-ndjson"


class StateNotFound(Exception):
    """The job has no state object."""


class ConcurrencyExhausted(Exception):
    """A compare-and-swap kept losing races; the caller's message is retried by SQS."""


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_precondition_failed(exc: ClientError) -> bool:
    return error_code(exc) == "PreconditionFailed" or http_status(exc) == 412


def is_conditional_conflict(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalRequestConflict" or http_status(exc) == 409


@dataclass(frozen=True)
class StoredObject:
    """One stored version of an object, as HeadObject describes it."""

    version_id: str | None  # None on an unversioned bucket
    etag: str
    last_modified: datetime
    size: int


def is_missing(exc: ClientError) -> bool:
    return error_code(exc) in ("NoSuchKey", "404", "NotFound") or http_status(exc) == 404


def dumps(data: Any) -> bytes:
    # allow_nan=False: what the engine stores is always strictly JSON (never Infinity/NaN)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def pin(version_id: str | None, etag: str | None) -> dict[str, str]:
    """GetObject arguments that read exactly one stored version of an object."""
    if version_id:
        return {"VersionId": version_id}
    if etag:
        return {"IfMatch": etag}
    return {}


class Keys:
    """The storage layout of one job (ids are validated before they get here)."""

    @staticmethod
    def prefix(job_id: str) -> str:
        return f"jobs/{job_id}/"

    @staticmethod
    def state(job_id: str) -> str:
        return f"jobs/{job_id}/state.json"

    @staticmethod
    def input(job_id: str) -> str:
        return f"jobs/{job_id}/input.ndjson"

    @staticmethod
    def upload(job_id: str) -> str:
        return f"jobs/{job_id}/upload.ndjson"

    @staticmethod
    def plan_lines(job_id: str) -> str:
        return f"jobs/{job_id}/plan.ndjson"

    @staticmethod
    def marker(job_id: str, chunk: int, attempt: int = 0) -> str:
        """A retry's markers have keys of their own: the failed run's do not block it."""
        suffix = f".a{attempt}" if attempt else ""
        return f"jobs/{job_id}/chunks/{chunk}{suffix}.json"

    @staticmethod
    def claim(job_id: str, chunk: int, attempt: int = 0) -> str:
        """Created once before a chunk's sink write: "run" or "skip", for every delivery of the
        chunk in this attempt (a "run" chunk may have rows in the sink, so it is never skipped)."""
        suffix = f".a{attempt}" if attempt else ""
        return f"jobs/{job_id}/chunks/{chunk}{suffix}.claim"

    @staticmethod
    def segment(job_id: str, segment: int, attempt: int = 0) -> str:
        """An accounting segment of the job's state (`accounting`), per attempt."""
        suffix = f".a{attempt}" if attempt else ""
        return f"jobs/{job_id}/state/seg-{segment:06d}{suffix}.json"

    @staticmethod
    def errors(job_id: str) -> str:
        return f"jobs/{job_id}/errors.ndjson"

    @staticmethod
    def error_segment(job_id: str, segment: int) -> str:
        return f"jobs/{job_id}/errors/{segment:06d}.json"

    @staticmethod
    def dead_letter(job_id: str, message_id: str) -> str:
        return f"jobs/{job_id}/dead-letters/{message_id}.json"

    @staticmethod
    def results_prefix(job_id: str) -> str:
        return f"jobs/{job_id}/results/"

    @staticmethod
    def result(job_id: str, chunk: int) -> str:
        return f"jobs/{job_id}/results/chunk-{chunk:06d}.ndjson"

    @staticmethod
    def staging(job_id: str, chunk: int) -> str:
        return f"jobs/{job_id}/staging/chunk-{chunk:06d}.ndjson"


Mutator = Callable[[dict[str, Any]], bool]


class JobStore:
    """Job objects in the state bucket, through an injected S3 client."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        max_attempts: int = 60,
        base_delay: float = 0.01,
        max_delay: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], Any] = model.now,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random()
        # handed every state read or written (notify.Notifier.queue_pending queues a job's
        # notifications from it); None in the status function, which never sends
        self.on_state: Callable[[dict[str, Any]], None] | None = None

    def _seen(self, state: dict[str, Any]) -> None:
        if self.on_state is not None:
            self.on_state(state)

    # -- state ---------------------------------------------------------------------------
    def create_state(self, state: dict[str, Any]) -> bool:
        """Write a new state; False when a state for this job already exists."""
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=Keys.state(state["job_id"]),
                Body=dumps(state),
                ContentType=JSON,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if is_precondition_failed(exc) or is_conditional_conflict(exc):
                return False
            raise
        return True

    def get_state(self, job_id: str) -> tuple[dict[str, Any], str] | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=Keys.state(job_id))
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        state = json.loads(response["Body"].read())
        self._seen(state)
        return state, str(response["ETag"])

    def update_state(
        self, job_id: str, mutate: Mutator, *, known: tuple[dict[str, Any], str] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Read-modify-write with If-Match; `mutate` edits a copy and returns whether it changed.

        Returns the state as stored afterwards and whether this call wrote it. `known` (a state
        and its ETag the caller just read or wrote) saves the first read; a stale one costs a
        412 and a fresh read.
        """
        state, wrote, _ = self.swap_state(job_id, mutate, known=known)
        return state, wrote

    def swap_state(
        self, job_id: str, mutate: Mutator, *, known: tuple[dict[str, Any], str] | None = None
    ) -> tuple[dict[str, Any], bool, str | None]:
        """`update_state`, with the ETag of the state it returns (None when unknown)."""

        def stamped(candidate: dict[str, Any]) -> bool:
            if not mutate(candidate):
                return False
            candidate["updated_at"] = model.isoformat(self._clock())
            return True

        found = self._swap(Keys.state(job_id), stamped, None, known)
        if found is None:
            raise StateNotFound(job_id)
        self._seen(found[0])
        return found

    def update_json(
        self, key: str, mutate: Mutator, *, create: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool] | None:
        """Compare-and-swap of a JSON object: If-Match on its ETag, or If-None-Match: * when it is
        absent and `create` gives its first content. None when it is absent and not created."""
        found = self._swap(key, mutate, create, None)
        return None if found is None else (found[0], found[1])

    def _swap(
        self,
        key: str,
        mutate: Mutator,
        create: dict[str, Any] | None,
        known: tuple[dict[str, Any], str] | None,
    ) -> tuple[dict[str, Any], bool, str | None] | None:
        for attempt in range(self.max_attempts):
            etag: str | None
            if known is not None and attempt == 0:
                current, etag = copy.deepcopy(known[0]), known[1]
                condition = {"IfMatch": etag}
            else:
                try:
                    response = self.s3.get_object(Bucket=self.bucket, Key=key)
                    etag = str(response["ETag"])
                    current, condition = json.loads(response["Body"].read()), {"IfMatch": etag}
                except ClientError as exc:
                    if not is_missing(exc) or create is None:
                        if is_missing(exc):
                            return None
                        raise
                    current, condition, etag = copy.deepcopy(create), {"IfNoneMatch": "*"}, None
            candidate = copy.deepcopy(current)
            if not mutate(candidate):
                if known is not None and attempt == 0:
                    continue  # decided on what the caller knew: decide again on what is stored
                return current, False, etag
            try:
                answer = self.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=dumps(candidate), ContentType=JSON, **condition
                )
            except ClientError as exc:
                if is_precondition_failed(exc) or is_conditional_conflict(exc):
                    if not (known is not None and attempt == 0):
                        self._backoff(attempt)
                    continue
                raise
            return candidate, True, answer.get("ETag")
        raise ConcurrencyExhausted(key)

    def _backoff(self, attempt: int) -> None:
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(attempt, 16)))
        self._sleep(self._random.uniform(0, ceiling))

    # -- objects ---------------------------------------------------------------------------
    def put(self, key: str, body: bytes, content_type: str = NDJSON) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def put_json(self, key: str, data: Any) -> None:
        self.put(key, dumps(data), JSON)

    def create_json(self, key: str, data: Any) -> bool:
        """Create once (If-None-Match: *); False when the object already exists."""
        return self.create(key, dumps(data), JSON)

    def create(self, key: str, body: bytes, content_type: str = NDJSON) -> bool:
        """Create once (If-None-Match: *); False when the object already exists."""
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*"
            )
        except ClientError as exc:
            if is_precondition_failed(exc) or is_conditional_conflict(exc):
                return False
            raise
        return True

    def get_bytes(self, key: str) -> bytes | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return bytes(response["Body"].read())

    def get_json(self, key: str) -> Any | None:
        data = self.get_bytes(key)
        return None if data is None else json.loads(data)

    def get_range(
        self,
        key: str,
        start: int,
        end_exclusive: int,
        *,
        version_id: str | None = None,
        etag: str | None = None,
    ) -> bytes:
        if end_exclusive <= start:
            return b""
        response = self.s3.get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end_exclusive - 1}", **pin(version_id, etag)
        )
        return bytes(response["Body"].read())

    def get_range_or_none(self, key: str, start: int, end_exclusive: int) -> bytes | None:
        try:
            return self.get_range(key, start, end_exclusive)
        except ClientError as exc:
            if is_missing(exc) or error_code(exc) == "InvalidRange" or http_status(exc) == 416:
                return None
            raise

    def head(self, key: str) -> tuple[str | None, str]:
        """(VersionId or None on an unversioned bucket, ETag) of the current object."""
        version, etag, _ = self._head(key)
        return version, etag

    def head_landed(self, key: str, version_id: str | None = None) -> StoredObject | None:
        """The current object, or the version `version_id` of it; None when there is none (a
        version id S3 refuses as malformed is none either)."""
        pinned = {"VersionId": version_id} if version_id else {}
        try:
            response = self.s3.head_object(Bucket=self.bucket, Key=key, **pinned)
        except ClientError as exc:
            if is_missing(exc) or (version_id and http_status(exc) == 400):
                return None
            raise
        version = response.get("VersionId")
        return StoredObject(
            None if version in (None, "null") else str(version),
            str(response["ETag"]),
            response["LastModified"],
            int(response.get("ContentLength") or 0),
        )

    def _head(self, key: str) -> tuple[str | None, str, datetime]:
        response = self.s3.head_object(Bucket=self.bucket, Key=key)
        version = response.get("VersionId")
        version_id = None if version in (None, "null") else str(version)
        return version_id, str(response["ETag"]), response["LastModified"]

    def stream(
        self,
        key: str,
        chunk_bytes: int = 1024 * 1024,
        *,
        version_id: str | None = None,
        etag: str | None = None,
    ) -> Iterator[bytes]:
        response = self.s3.get_object(Bucket=self.bucket, Key=key, **pin(version_id, etag))
        body = response["Body"]
        try:
            yield from body.iter_chunks(chunk_bytes)
        finally:
            body.close()

    def delete(self, *keys: str) -> None:
        for key in keys:
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    def presign_get(self, key: str, ttl_seconds: int) -> str:
        return str(
            self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_seconds
            )
        )

    def presign_put(self, key: str, ttl_seconds: int, content_type: str = NDJSON) -> str:
        """A PUT URL that creates the object once: `If-None-Match: *` is signed, so the client
        must send it and S3 answers 412 to any PUT after the first one landed."""
        return str(
            self.s3.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type, "IfNoneMatch": "*"},
                ExpiresIn=ttl_seconds,
            )
        )
