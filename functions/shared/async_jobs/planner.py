"""Cut an NDJSON object into chunks of `chunk_size` records, reading it once as a stream.

A record is a non-blank line. Chunk byte ranges are half-open `[start, end)` and cover whole
lines, so a worker fetches exactly its records with one ranged GET.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from async_jobs import jsontext
from async_jobs.chunks import ChunkRef
from async_jobs.normalize import parse_line

# plan.ndjson: fixed-width lines (JSON padded with spaces), line 0 the header and line n + 1
# chunk n, so a worker checks its message against the plan with one small ranged GET.
PLAN_LINE_BYTES = 128
PLAN_VERSION = 2
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes


@dataclass(frozen=True)
class Chunk:
    chunk: int
    start: int
    end: int
    first_record: int
    count: int

    def ref(self, job_id: str) -> ChunkRef:
        return ChunkRef(job_id, self.chunk, self.start, self.end, self.first_record, self.count)

    def message(self, job_id: str) -> dict[str, Any]:
        return self.ref(job_id).to_message()

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

    def to_lines(self) -> bytes:
        header = {"version": PLAN_VERSION, "total_records": self.total_records, "chunks": len(self.chunks)}
        return _line(header) + b"".join(_line(c.to_dict()) for c in self.chunks)

    @classmethod
    def from_lines(cls, data: bytes) -> Plan:
        lines = [data[i : i + PLAN_LINE_BYTES] for i in range(0, len(data), PLAN_LINE_BYTES)]
        header = json.loads(lines[0])
        return cls(int(header["total_records"]), [chunk_from_line(line) for line in lines[1:]])


def _line(data: dict[str, Any]) -> bytes:
    text = json.dumps(data, separators=(",", ":")).encode("ascii")
    if len(text) >= PLAN_LINE_BYTES:
        raise ValueError("plan entry too long")
    return text.ljust(PLAN_LINE_BYTES - 1) + b"\n"


def chunk_line_range(number: int) -> tuple[int, int]:
    """Half-open byte range of chunk `number` in plan.ndjson."""
    start = (number + 1) * PLAN_LINE_BYTES
    return start, start + PLAN_LINE_BYTES


def chunk_from_line(line: bytes) -> Chunk:
    return Chunk(**json.loads(line))


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
            # almost every line starts with "{": look at one byte before slicing the line
            if (
                not line_has_content
                and stop > position
                and (piece[position] not in _WHITESPACE or piece[position:stop].strip())
            ):
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
    """The records of one chunk's bytes, read by the same rules as a submitted NDJSON body.

    A line that breaks them (not JSON, not an object, too deep, a lone surrogate, a number out
    of range) is an error record of its own; the other records of the chunk go on.
    """
    index = first_record
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            yield RawRecord(index, parse_line(line), None)
        except jsontext.JsonProblem as problem:
            where = f" at {problem.pointer}" if problem.pointer else ""
            yield RawRecord(index, None, f"{problem.message}{where}")
        index += 1
