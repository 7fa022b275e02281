"""The local stack's fault injector: AWS errors the SDK retries, kills, held-back and duplicate deliveries."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from async_jobs_local import databases, runtime_loop
from async_jobs_local.esm import SqsEventSource
from async_jobs_local.faults import ENV_VAR, AwsErrors, FaultPlan, Faults


def _s3(hook: AwsErrors, attempts: int) -> Any:
    client = boto3.client(
        "s3", region_name="us-east-1", config=Config(retries={"mode": "standard", "max_attempts": attempts})
    )
    client.meta.events.register("before-send.s3", hook.before_send)
    client.meta.events.register("before-send.sqs", hook.before_send)
    return client


def test_the_runtime_loop_reads_the_variable_the_deployment_sets() -> None:
    # the runtime loop loads each local hook by the variable its module reads
    assert runtime_loop.LOCAL_HOOKS[ENV_VAR] == "faults.py"
    assert runtime_loop.LOCAL_HOOKS[databases.ENV_VAR] == "databases.py"
    plan = FaultPlan(aws_error_rate=0.25, delay_seconds=(2, 3), seed=4)
    assert FaultPlan.from_environment(plan.to_environment()) == plan


def test_a_rate_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="kill_rate = 1.5"):
        FaultPlan(kill_rate=1.5)


@mock_aws
def test_every_request_failing_exhausts_the_sdk_retries_and_each_attempt_is_counted(tmp_path: Path) -> None:
    # GIVEN every S3 request answered with an error before it leaves
    hook = AwsErrors(FaultPlan(aws_error_rate=1.0, seed=1, counts_dir=str(tmp_path)))
    s3 = _s3(hook, attempts=3)
    # WHEN a request is made THEN the SDK retried it (retries max_attempts=3: 3 retries after the
    # first attempt) and gave up with S3's error
    with pytest.raises(ClientError) as error:
        s3.list_buckets()
    assert error.value.response["Error"]["Code"] in {"InternalError", "SlowDown"}
    assert error.value.response["ResponseMetadata"]["RetryAttempts"] == 3
    lines = next(tmp_path.glob("aws-*.log")).read_text().splitlines()
    assert len(lines) == 4 and all(line.startswith("aws:s3.ListBuckets:5") for line in lines)


@mock_aws
def test_some_requests_failing_are_retried_to_success(tmp_path: Path) -> None:
    # GIVEN half the requests failing WHEN 20 objects are written THEN all are there after retries
    hook = AwsErrors(FaultPlan(aws_error_rate=0.5, seed=3, counts_dir=str(tmp_path)))
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="faults")
    s3 = _s3(hook, attempts=10)
    retries = sum(
        s3.put_object(Bucket="faults", Key=f"k{n}", Body=b"x")["ResponseMetadata"]["RetryAttempts"]
        for n in range(20)
    )
    assert len(boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="faults")["Contents"]) == 20
    injected = len(next(tmp_path.glob("aws-*.log")).read_text().splitlines())
    assert injected == retries > 0


def test_a_kill_is_counted_only_when_it_lands_during_the_invocation(tmp_path: Path) -> None:
    faults = Faults(FaultPlan(kill_rate=1.0, kill_within=0.05, seed=1), tmp_path)
    killed = threading.Event()
    disarm = faults.arm_kill(killed.set)
    assert killed.wait(2)
    disarm()
    assert faults.totals() == {"kills": 1}

    slow = Faults(FaultPlan(kill_rate=1.0, kill_within=5.0, seed=1), tmp_path / "other")
    never = threading.Event()
    slow.arm_kill(never.set)()  # the invocation ended before the timer
    assert not never.wait(0.2)
    assert slow.totals() == {}


def _record(message_id: str, body: dict[str, Any], receives: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receives)},
    }


def test_no_delivery_of_a_message_is_killed_past_the_plans_bound_and_each_kill_is_journaled(
    tmp_path: Path,
) -> None:
    # GIVEN a plan that kills every invocation, at most once per message
    faults = Faults(FaultPlan(kill_rate=1.0, kill_within=0.01, max_kills_per_message=1, seed=3), tmp_path)
    chunk = _record("m1", {"kind": "chunk", "job_id": "j1", "chunk": 4})
    killed = threading.Event()
    # WHEN a delivery of the message is killed
    disarm = faults.arm_kill(killed.set, [chunk])
    assert killed.wait(2)
    disarm()
    # THEN the next delivery of it is not, nor one of a batch holding it; another message is
    again = threading.Event()
    faults.arm_kill(again.set, [_record("m2", {"kind": "split", "job_id": "j2"}), chunk])
    assert not again.wait(0.2)
    other = threading.Event()
    faults.arm_kill(other.set, [_record("m3", {"kind": "split", "job_id": "j2"}, receives=2)])
    assert other.wait(2)
    assert faults.totals() == {"kills": 2}
    # AND each job's journal says which of its messages was killed, on which receive
    assert [(e.what, e.kind, e.chunk, e.receive_count) for e in faults.journal("j1")] == [
        ("kill", "chunk", 4, 1)
    ]
    assert [(e.what, e.kind, e.receive_count) for e in faults.journal("j2")] == [("kill", "split", 2)]

    # AND without a bound the same message is killed again
    unbounded = Faults(FaultPlan(kill_rate=1.0, kill_within=0.01, seed=3), tmp_path / "unbounded")
    for _ in range(2):
        fired = threading.Event()
        unbounded.arm_kill(fired.set, [chunk])
        assert fired.wait(2)
    assert unbounded.totals() == {"kills": 2}


class FakeSqs:
    def __init__(self) -> None:
        self.visibility: list[tuple[str, int]] = []

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:  # noqa: N803
        self.visibility.append((ReceiptHandle, VisibilityTimeout))


def test_held_back_messages_go_back_to_the_queue_and_duplicates_are_delivered_again(tmp_path: Path) -> None:
    # GIVEN a mapping that holds back and duplicates every message
    faults = Faults(FaultPlan(delay_rate=1.0, delay_seconds=(2, 2), seed=5), tmp_path)
    sqs = FakeSqs()
    delivered: list[dict[str, Any]] = []
    source = SqsEventSource(
        sqs=sqs,
        queue_url="q",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        function_name="worker",
        invoke=lambda name, event: delivered.append(event),
        faults=faults,
    )
    batch = [{"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": "{}"} for n in range(3)]
    # WHEN a batch arrives THEN nothing is invoked now and each message is visible again in 2 s
    source._process(batch)
    assert delivered == []
    assert sqs.visibility == [("r0", 2), ("r1", 2), ("r2", 2)]
    assert faults.totals() == {"delays": 3}

    twice = Faults(FaultPlan(duplicate_rate=1.0, seed=5), tmp_path / "twice")
    source.faults = twice
    source._delete = lambda messages: None  # type: ignore[method-assign]
    source._process(batch[:1])
    threading.Event().wait(1.5)  # the second delivery comes within a second
    assert [event["Records"][0]["messageId"] for event in delivered] == ["m0", "m0"]
    assert twice.totals() == {"duplicates": 1}


class ScriptedSqs:
    """Answers each receive with the next scripted batch, then nothing."""

    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.batches = batches
        self.deleted: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {"Messages": self.batches.pop(0)} if self.batches else {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.deleted += [entry["ReceiptHandle"] for entry in Entries]
        return {}


def test_a_poller_outlives_a_batch_whose_invocation_raises_unexpectedly(tmp_path: Path) -> None:
    # GIVEN one poller whose first invocation raises what no invocation error covers
    sqs = ScriptedSqs([[{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}"}]] * 1)
    sqs.batches.append([{"MessageId": "m2", "ReceiptHandle": "r2", "Body": "{}"}])
    calls: list[str] = []

    def invoke(name: str, event: dict[str, Any]) -> None:
        calls.append(event["Records"][0]["messageId"])
        if len(calls) == 1:
            raise TypeError("a seam of the stand-in broke")

    source = SqsEventSource(
        sqs=sqs,
        queue_url="q",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        function_name="worker",
        invoke=invoke,
        batch_size=1,
        maximum_concurrency=1,
    )
    # WHEN it polls
    source.start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        source.stop(timeout=5)
    # THEN the next batch is still invoked and deleted; the failed one is left for redelivery
    assert calls == ["m1", "m2"]
    assert sqs.deleted == ["r2"]
