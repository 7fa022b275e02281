"""errors.ndjson, the full list of rejected records, written from a bounded number of reads.

Before a chunk with record errors is counted in the job, its errors are added to a segment
object that holds SEGMENT_CHUNKS chunks (compare-and-swap, keyed by chunk number, so a
redelivery adds nothing twice). When the job has ended, the report reads one object per
segment with errors, not one marker per chunk: 200 reads at 10,000 chunks instead of 10,000.
"""

from __future__ import annotations

from typing import Any

from async_jobs import model
from async_jobs.chunks import ChunkMarker
from async_jobs.store import JobStore, Keys, dumps

SEGMENT_CHUNKS = 50


class ErrorsReport:
    def __init__(self, store: JobStore) -> None:
        self.store = store

    def add(self, marker: ChunkMarker) -> None:
        """Keep a chunk's record errors for the report (before the chunk is counted)."""
        if not marker.errors:
            return
        errors = list(marker.errors)
        # a retry's errors replace the failed run's (attempt 0 keeps the plain list format)
        entry: Any = {"attempt": marker.attempt, "errors": errors} if marker.attempt else errors

        def append(segment: dict[str, Any]) -> bool:
            existing = segment["chunks"].get(str(marker.chunk))
            if existing is not None and _attempt(existing) >= marker.attempt:
                return False
            segment["chunks"][str(marker.chunk)] = entry
            return True

        key = Keys.error_segment(marker.job_id, marker.chunk // SEGMENT_CHUNKS)
        self.store.update_json(key, append, create={"chunks": {}})

    def chunk_errors(self, job_id: str, numbers: list[int]) -> dict[int, list[dict[str, Any]]]:
        """The record errors of each chunk (of its latest run), one read per segment."""
        segments: dict[int, dict[str, Any]] = {}
        found: dict[int, list[dict[str, Any]]] = {}
        for number in numbers:
            segment = number // SEGMENT_CHUNKS
            if segment not in segments:
                segments[segment] = self.store.get_json(Keys.error_segment(job_id, segment)) or {"chunks": {}}
            entry = segments[segment]["chunks"].get(str(number))
            if entry is None:
                # counted before segments existed: its marker holds its errors
                entry = (self.store.get_json(Keys.marker(job_id, number)) or {}).get("errors", [])
            found[number] = list(entry["errors"] if isinstance(entry, dict) else entry)
        return found

    def write(self, job_id: str, chunks_with_errors: list[list[int]]) -> None:
        """errors.ndjson in chunk order, from the segments (overwriting it again is harmless)."""
        found = self.chunk_errors(job_id, model.chunk_numbers(chunks_with_errors))
        lines = [
            dumps({"record_index": e["record_index"], "message": e["message"]}) + b"\n"
            for errors in found.values()
            for e in errors
        ]
        self.store.put(Keys.errors(job_id), b"".join(lines))


def _attempt(entry: Any) -> int:
    return int(entry.get("attempt") or 0) if isinstance(entry, dict) else 0
