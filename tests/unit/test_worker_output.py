"""What the worker sends on: strictly JSON records to the sink, chunk messages in bounded slices."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from .conftest import BUCKET, Api, Aws, Worker, load_handler, records, result_lines


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


def test_a_split_dispatches_in_slices_with_follow_up_messages(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 25 one-record chunks and a split that sends at most 10 chunk messages a delivery
    monkeypatch.setenv("CHUNK_SIZE", "1")
    api, worker = Api(submit=load_handler("submit")), Worker(load_handler("worker"), aws)
    job_id = api.submit_json({"records": records(25)}).body["job_id"]
    engine = worker.module.runtime().engine
    engine.settings = replace(engine.settings, dispatch_slice=10)
    sent: list[int] = []
    send_chunks = engine.queue.send_chunks

    def spy(job: str, messages: list, *, owner: str | None) -> None:
        sent.append(len(messages))
        send_chunks(job, messages, owner=owner)

    engine.queue.send_chunks = spy
    # WHEN every message is delivered twice
    worker.drain(twice=True)
    # THEN no delivery sent more than a slice, and the job ended with each record once
    assert sent and max(sent) <= 10
    state = aws.state(job_id)
    assert (state["status"], state["succeeded_records"], state["dispatched_through"]) == ("succeeded", 25, 25)
    assert sorted(line["record_index"] for line in result_lines(aws, job_id)) == list(range(25))
