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

        def append(segment: dict[str, Any]) -> bool:
            if str(marker.chunk) in segment["chunks"]:
                return False
            segment["chunks"][str(marker.chunk)] = errors
            return True

        key = Keys.error_segment(marker.job_id, marker.chunk // SEGMENT_CHUNKS)
        self.store.update_json(key, append, create={"chunks": {}})

    def write(self, job_id: str, chunks_with_errors: list[list[int]]) -> None:
        """errors.ndjson in chunk order, from the segments (overwriting it again is harmless)."""
        numbers = model.chunk_numbers(chunks_with_errors)
        segments: dict[int, dict[str, Any]] = {}
        lines: list[bytes] = []
        for number in numbers:
            segment = number // SEGMENT_CHUNKS
            if segment not in segments:
                segments[segment] = self.store.get_json(Keys.error_segment(job_id, segment)) or {"chunks": {}}
            errors = segments[segment]["chunks"].get(str(number))
            if errors is None:
                # counted before segments existed: its marker holds its errors
                errors = (self.store.get_json(Keys.marker(job_id, number)) or {}).get("errors", [])
            lines.extend(
                dumps({"record_index": e["record_index"], "message": e["message"]}) + b"\n" for e in errors
            )
        self.store.put(Keys.errors(job_id), b"".join(lines))
