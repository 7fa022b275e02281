"""The typed seams of chunk processing: the chunk message (`ChunkRef`) and its marker (`ChunkMarker`).

A `ChunkRef` is parsed once from a queue message (shape and types) and then compared with the
job's plan before anything is read, so a forged or corrupted message can neither read other
bytes nor be counted. A `ChunkMarker` is what a chunk contributed to its job, written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from async_jobs import model

KIND = "chunk"


class BadMessage(ValueError):
    """A queue message the engine cannot read; it goes to the DLQ after its receives."""


def _natural(message: dict[str, Any], name: str) -> int:
    value = message.get(name)
    # bool is an int in Python but never a valid count in a message
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadMessage(f"chunk message: {name} must be a non-negative integer")
    return value


@dataclass(frozen=True)
class ChunkRef:
    job_id: str
    chunk: int
    start: int
    end: int
    first_record: int
    count: int

    @classmethod
    def parse(cls, message: Any) -> ChunkRef:
        if not isinstance(message, dict) or message.get("kind") != KIND:
            raise BadMessage("not a chunk message")
        job_id = message.get("job_id")
        if not isinstance(job_id, str) or not model.is_job_id(job_id):
            raise BadMessage("chunk message: job_id is not a UUID")
        byte_range = message.get("byte_range")
        if not isinstance(byte_range, list) or len(byte_range) != 2:
            raise BadMessage("chunk message: byte_range must be [start, end]")
        start = _natural({"start": byte_range[0]}, "start")
        end = _natural({"end": byte_range[1]}, "end")
        if end < start:
            raise BadMessage("chunk message: byte_range ends before it starts")
        count = _natural(message, "count")
        if count == 0:
            raise BadMessage("chunk message: count must be at least 1")
        return cls(job_id, _natural(message, "chunk"), start, end, _natural(message, "first_record"), count)

    def to_message(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "job_id": self.job_id,
            "chunk": self.chunk,
            "byte_range": [self.start, self.end],
            "first_record": self.first_record,
            "count": self.count,
        }


@dataclass(frozen=True)
class ChunkMarker:
    """jobs/{id}/chunks/{n}.json: the first one written is the chunk's contribution for ever."""

    job_id: str
    chunk: int
    first_record: int
    count: int
    succeeded: int
    failed: int
    skipped: int
    errors: tuple[dict[str, Any], ...] = field(default=())
    attempt: int = 0  # the job's retry attempt the chunk ran in

    @classmethod
    def processed(cls, ref: ChunkRef, succeeded: int, errors: list[dict[str, Any]]) -> ChunkMarker:
        if succeeded + len(errors) != ref.count:
            raise ValueError("a processed chunk accounts for each of its records once")
        return cls(
            ref.job_id, ref.chunk, ref.first_record, ref.count, succeeded, len(errors), 0, tuple(errors)
        )

    @classmethod
    def failed_all(cls, ref: ChunkRef, reason: str) -> ChunkMarker:
        errors = tuple(model.record_error(ref.first_record + i, f"chunk {reason}") for i in range(ref.count))
        return cls(ref.job_id, ref.chunk, ref.first_record, ref.count, 0, ref.count, 0, errors)

    @classmethod
    def skipped_all(cls, ref: ChunkRef) -> ChunkMarker:
        return cls(ref.job_id, ref.chunk, ref.first_record, ref.count, 0, 0, ref.count)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkMarker:
        return cls(
            str(data["job_id"]),
            int(data["chunk"]),
            int(data["first_record"]),
            int(data["count"]),
            int(data["succeeded"]),
            int(data["failed"]),
            int(data.get("skipped", 0)),
            tuple(data.get("errors") or ()),
            int(data.get("attempt") or 0),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "chunk": self.chunk,
            "first_record": self.first_record,
            "count": self.count,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "errors": list(self.errors),
            **({"attempt": self.attempt} if self.attempt else {}),
        }
