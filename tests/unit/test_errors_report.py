"""errors.ndjson is written from one read per segment of chunks, not one read per chunk."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from async_jobs.reports import SEGMENT_CHUNKS

from .conftest import BUCKET, Api, Aws, Worker, load_handler, records


def test_the_report_reads_one_object_per_segment(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 120 one-record chunks whose every record fails
    monkeypatch.setenv("CHUNK_SIZE", "1")
    monkeypatch.setenv("RECORD_PROCESSOR", "tests.unit.sample_processors:tag")
    api, worker = Api(submit=load_handler("submit")), Worker(load_handler("worker"), aws)
    rows = [{**row, "explode": True} for row in records(120)]
    job_id = api.submit_json({"records": rows}).body["job_id"]
    engine = worker.module.runtime().engine
    reads: list[str] = []
    write = engine.reports.write

    def counted(*args: Any) -> None:
        def record(**kwargs: Any) -> None:
            reads.append(kwargs["model"].name)

        engine.store.s3.meta.events.register("before-call.s3.GetObject", record)
        try:
            write(*args)
        finally:
            engine.store.s3.meta.events.unregister("before-call.s3.GetObject", record)

    engine.reports.write = counted
    # WHEN the job runs (chunks out of order and twice) and ends
    worker.drain(twice=True)
    # THEN the report lists every record once in order, read from 3 segments, not 120 markers
    state = aws.state(job_id)
    assert (state["status"], state["failed_records"], state["errors_report"]) == ("failed", 120, "written")
    body = aws.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/errors.ndjson")["Body"].read()
    assert [json.loads(line)["record_index"] for line in body.splitlines()] == list(range(120))
    assert len(reads) == math.ceil(120 / SEGMENT_CHUNKS) == 3


def test_a_report_still_reads_markers_counted_before_segments_existed(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a job whose chunk errors were counted without a segment (an earlier version)
    monkeypatch.setenv("CHUNK_SIZE", "2")
    monkeypatch.setenv("RECORD_PROCESSOR", "tests.unit.sample_processors:tag")
    api, worker = Api(submit=load_handler("submit")), Worker(load_handler("worker"), aws)
    rows = records(4)
    rows[1]["explode"] = True
    job_id = api.submit_json({"records": rows}).body["job_id"]
    engine = worker.module.runtime().engine
    engine.reports.add = lambda marker: None
    worker.drain()
    # THEN the report still holds the error, from the chunk's marker
    body = aws.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/errors.ndjson")["Body"].read()
    assert [json.loads(line)["record_index"] for line in body.splitlines()] == [1]
