"""Record processors used by the tests through RECORD_PROCESSOR."""

from __future__ import annotations

from typing import Any

from async_jobs.engine import RetryChunk

calls: dict[str, int] = {}


def tag(record: dict[str, Any]) -> dict[str, Any]:
    """Returns a new record; a record asking for it fails."""
    if record.get("explode"):
        raise ValueError("cannot process this one")
    return {**record, "processed": True}


def poison(record: dict[str, Any]) -> dict[str, Any]:
    """A record marked poison fails its whole chunk every time (downstream keeps refusing)."""
    if record.get("poison"):
        raise RetryChunk("downstream refused")
    return record


def flaky(record: dict[str, Any]) -> dict[str, Any]:
    """Record id 1 fails the first time it is seen and succeeds afterwards."""
    key = str(record.get("id"))
    calls[key] = calls.get(key, 0) + 1
    if key == "1" and calls[key] == 1:
        raise ValueError("transient refusal")
    return record
