"""The local event log: every entry moto's EventBridge accepts is one JSON line, refused ones none."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from moto import mock_aws

from async_jobs_local import moto_patches


def test_accepted_events_are_appended_and_refused_ones_are_not(tmp_path: Path) -> None:
    log = tmp_path / "events.ndjson"
    previous = moto_patches.EVENT_LOG.path
    moto_patches.EVENT_LOG.path = log
    try:
        with mock_aws(), moto_patches.events_logged():
            events = boto3.client("events", region_name="us-east-1")
            events.create_event_bus(Name="jobs-bus")
            response = events.put_events(
                Entries=[
                    {
                        "Source": "async-jobs",
                        "DetailType": "Job Ended",
                        "Detail": json.dumps({"job_id": "a"}),
                    },
                    {
                        "Source": "async-jobs",
                        "DetailType": "Job Ended",
                        "Detail": "{}",
                        "EventBusName": "jobs-bus",
                    },
                    {"Source": "async-jobs", "DetailType": "Job Ended", "Detail": "not json"},
                ]
            )
    finally:
        moto_patches.EVENT_LOG.path = previous
    assert response["FailedEntryCount"] == 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["event-bus-name"], e["detail"]) for e in lines] == [
        ("default", {"job_id": "a"}),
        ("jobs-bus", {}),
    ]
    assert lines[0]["source"] == "async-jobs" and lines[0]["detail-type"] == "Job Ended"
    assert lines[0]["id"] == response["Entries"][0]["EventId"]
