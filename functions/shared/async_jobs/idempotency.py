"""Idempotency-Key records: idempotency/{sha256(owner, key)}.json -> job id and body hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from async_jobs.problems import bad_request
from async_jobs.store import JobStore

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def validate_key(value: str | None) -> str | None:
    """None when absent; the key when 1-255 printable ASCII characters; 400 otherwise."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in value):
        raise bad_request(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            errors=[{"header": HEADER, "detail": "1-255 printable ASCII characters"}],
            slug="invalid-idempotency-key",
        )
    return value


def record_key(owner: str | None, key: str) -> str:
    digest = hashlib.sha256()
    digest.update((owner or "").encode("utf-8"))
    digest.update(b"\x00")
    digest.update(key.encode("ascii"))
    return f"idempotency/{digest.hexdigest()}.json"


# A claim that was never committed is taken over after this long: longer than any submit
# invocation can run (Lambda's maximum timeout), so its first request has certainly stopped.
STALE_CLAIM_SECONDS = 15 * 60 + 60


@dataclass(frozen=True)
class IdempotencyRecord:
    """`committed` turns true only once the job's state exists and its split is queued, so a
    replay never answers for a job that the first request may still take back."""

    job_id: str
    body_hash: str
    claimed_at: str | None = None
    committed: bool = True  # records written before the flag existed were written after the job

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "body_hash": self.body_hash,
            "claimed_at": self.claimed_at,
            "committed": self.committed,
        }


class IdempotencyStore:
    def __init__(self, store: JobStore) -> None:
        self._store = store

    def get(self, owner: str | None, key: str) -> IdempotencyRecord | None:
        data = self._store.get_json(record_key(owner, key))
        if data is None:
            return None
        return IdempotencyRecord(
            str(data["job_id"]),
            str(data["body_hash"]),
            data.get("claimed_at"),
            bool(data.get("committed", True)),
        )

    def claim(self, owner: str | None, key: str, record: IdempotencyRecord) -> bool:
        """Create the record once; False when another request claimed the key first."""
        return self._store.create_json(record_key(owner, key), record.to_dict())

    def commit(self, owner: str | None, key: str, record: IdempotencyRecord) -> None:
        """Only the request that claimed the key writes here, so a plain overwrite is safe."""
        self._store.put_json(record_key(owner, key), {**record.to_dict(), "committed": True})

    def release(self, owner: str | None, key: str) -> None:
        self._store.delete(record_key(owner, key))
