"""Cut an NDJSON object into chunks of `chunk_size` records, reading it once as a stream.

A record is a non-blank line. Chunk byte ranges are half-open `[start, end)` and cover whole
lines, so a worker fetches exactly its records with one ranged GET.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Chunk:
    chunk: int
    start: int
    end: int
    first_record: int
    count: int

    def message(self, job_id: str) -> dict[str, Any]:
        return {
            "kind": "chunk",
            "job_id": job_id,
            "chunk": self.chunk,
            "byte_range": [self.start, self.end],
            "first_record": self.first_record,
            "count": self.count,
        }

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    total_records: int
    chunks: list[Chunk]

    def to_dict(self) -> dict[str, Any]:
        return {"total_records": self.total_records, "chunks": [c.to_dict() for c in self.chunks]}

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        return cls(int(data["total_records"]), [Chunk(**c) for c in data["chunks"]])


def plan_chunks(pieces: Iterable[bytes], chunk_size: int) -> Plan:
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    chunks: list[Chunk] = []
    total = 0
    offset = 0
    chunk_start = 0
    in_chunk = 0
    line_has_content = False

    def close(end: int) -> None:
        nonlocal chunk_start, in_chunk
        chunks.append(Chunk(len(chunks), chunk_start, end, total - in_chunk, in_chunk))
        chunk_start = end
        in_chunk = 0

    for piece in pieces:
        position = 0
        while True:
            newline = piece.find(b"\n", position)
            stop = len(piece) if newline == -1 else newline
            if not line_has_content and piece[position:stop].strip():
                line_has_content = True
            if newline == -1:
                offset += len(piece) - position
                break
            offset += newline - position + 1
            position = newline + 1
            if line_has_content:
                total += 1
                in_chunk += 1
                line_has_content = False
                if in_chunk == chunk_size:
                    close(offset)
    if line_has_content:
        total += 1
        in_chunk += 1
    if in_chunk:
        close(offset)
    return Plan(total, chunks)


@dataclass(frozen=True)
class RawRecord:
    index: int
    record: dict[str, Any] | None
    error: str | None


def iter_chunk_records(data: bytes, first_record: int) -> Iterator[RawRecord]:
    """The records of one chunk's bytes; a line that is not a JSON object is an error record."""
    index = first_record
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            yield RawRecord(index, None, f"not valid JSON: {exc.__class__.__name__}")
        else:
            if isinstance(value, dict):
                yield RawRecord(index, value, None)
            else:
                yield RawRecord(index, None, "not a JSON object")
        index += 1
