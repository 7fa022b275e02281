"""Where processed records go. Every write is idempotent by (job_id, record_index)."""

from __future__ import annotations

from async_jobs.sinks.base import Row, Sink, SinkError
from async_jobs.sinks.s3 import S3Sink

__all__ = ["Row", "S3Sink", "Sink", "SinkError"]
