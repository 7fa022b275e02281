"""Default sink: one NDJSON object per chunk under jobs/{id}/results/; overwriting is idempotent."""

from __future__ import annotations

import json
from collections.abc import Sequence

from async_jobs.sinks.base import Row
from async_jobs.store import JobStore, Keys


class S3Sink:
    def __init__(self, store: JobStore) -> None:
        self._store = store

    def results_location(self, job_id: str) -> str:
        return f"s3://{self._store.bucket}/{Keys.results_prefix(job_id)}"

    def write(self, job_id: str, chunk: int, rows: Sequence[Row]) -> None:
        body = b"".join(
            json.dumps(
                {"record_index": index, "record": record}, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
            + b"\n"
            for index, record in rows
        )
        self._store.put(Keys.result(job_id, chunk), body)
