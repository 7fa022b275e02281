"""What a record processor returns reaches the sink only when it is strictly JSON."""

from __future__ import annotations

import json

import pytest

from .conftest import BUCKET, Api, Aws, Worker, load_handler, records


def test_a_processor_result_that_is_not_json_fails_its_record(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a processor that returns NaN for one record and a lone surrogate for another
    monkeypatch.setenv("TOLERATED_FAILURE_PERCENT", "100")
    api, worker = Api(submit=load_handler("submit")), Worker(load_handler("worker"), aws)
    job_id = api.submit_json({"records": records(4)}).body["job_id"]
    outputs = {1: {"x": float("nan")}, 2: {"s": "\ud800"}}
    worker.module.runtime().engine.transform = lambda record: outputs.get(record["id"], record)
    # WHEN the job runs
    worker.drain()
    # THEN those two records failed with a clear message, and the sink holds only strict JSON
    state = aws.state(job_id)
    assert (state["succeeded_records"], state["failed_records"]) == (2, 2)
    assert [e["record_index"] for e in state["errors"]] == [1, 2]
    assert all("not valid JSON" in e["message"] for e in state["errors"])
    for key in aws.keys(f"jobs/{job_id}/results/"):
        for line in aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines():
            json.loads(line, parse_constant=pytest.fail)
