"""The local stack's SQS fair queues (moto_patches.sqs_fair), against a moto server and through the
local event source mapping's pollers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from async_jobs_local.esm import SqsEventSource
from async_jobs_local.moto_patches import atomic_queue_operations, fair_queues, fair_queues_suspended


@pytest.fixture(scope="module")
def sqs() -> Iterator[Any]:
    with atomic_queue_operations(), fair_queues():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield boto3.client(
                "sqs",
                endpoint_url=f"http://{host}:{port}",
                region_name="us-east-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
        finally:
            server.stop()


def queue(sqs: Any, *, fifo: bool = False) -> str:
    name = f"fair-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def send(sqs: Any, url: str, bodies: list[str], group: str | None) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(n), "MessageBody": body, **({"MessageGroupId": group} if group else {})}
            for n, body in enumerate(bodies[start : start + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def receive(sqs: Any, url: str, count: int = 10) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, VisibilityTimeout=60)
    return [m["Body"] for m in messages.get("Messages", [])]


def test_a_quiet_groups_messages_come_before_a_busy_groups_backlog(sqs: Any) -> None:
    # GIVEN a backlog of 30 messages of group b, 10 of them in flight
    url = queue(sqs)
    send(sqs, url, [f"b{n}" for n in range(30)], "b")
    assert receive(sqs, url) == [f"b{n}" for n in range(10)]
    # WHEN group a sends 3 messages after them
    send(sqs, url, ["a0", "a1", "a2"], "a")
    # THEN the next receive delivers a's first, then b's backlog in sent order
    assert receive(sqs, url) == ["a0", "a1", "a2", *(f"b{n}" for n in range(10, 17))]
    # and a group with fewer in flight keeps going first (a: 3 in flight, b: 17)
    send(sqs, url, ["a3"], "a")
    assert receive(sqs, url, 2) == ["a3", "b17"]


def test_suspended_the_queue_delivers_in_sent_order(sqs: Any) -> None:
    # GIVEN the same backlog, fair delivery suspended (SQS before fair queues)
    url = queue(sqs)
    send(sqs, url, [f"b{n}" for n in range(30)], "b")
    with fair_queues_suspended():
        assert receive(sqs, url) == [f"b{n}" for n in range(10)]
        send(sqs, url, ["a0"], "a")
        # THEN a waits behind b's backlog
        assert receive(sqs, url) == [f"b{n}" for n in range(10, 20)]
    assert receive(sqs, url, 1) == ["a0"]  # fair again: a goes first


def test_without_groups_delivery_is_in_sent_order(sqs: Any) -> None:
    url = queue(sqs)
    send(sqs, url, [f"m{n}" for n in range(15)], None)
    assert receive(sqs, url) == [f"m{n}" for n in range(10)]
    send(sqs, url, ["late"], None)
    assert receive(sqs, url) == [*(f"m{n}" for n in range(10, 15)), "late"]


def test_a_fifo_queue_keeps_its_group_order(sqs: Any) -> None:
    # GIVEN a FIFO queue with group b in flight
    url = queue(sqs, fifo=True)
    send(sqs, url, ["b0", "b1"], "b")
    assert receive(sqs, url, 1) == ["b0"]
    send(sqs, url, ["a0"], "a")
    # THEN b's next message waits for b0 (in order within a group); a's is delivered
    assert receive(sqs, url) == ["a0"]


def test_the_event_source_mappings_pollers_deliver_fairly(sqs: Any) -> None:
    # GIVEN one poller taking 2 messages a batch, each batch taking 50 ms, and a backlog of group b
    url = queue(sqs)
    send(sqs, url, [f"b{n}" for n in range(40)], "b")
    handled: list[str] = []
    first_batch = threading.Event()

    def invoke(_name: str, event: dict[str, Any]) -> None:
        handled.extend(record["body"] for record in event["Records"])
        first_batch.set()
        time.sleep(0.05)

    source = SqsEventSource(
        sqs=sqs,
        queue_url=url,
        queue_arn="arn:aws:sqs:us-east-1:123456789012:fair",
        function_name="worker",
        invoke=invoke,
        batch_size=2,
        maximum_concurrency=1,
    )
    source.start()
    try:
        assert first_batch.wait(10)
        # WHEN group a sends 2 messages while b's backlog is being worked off
        send(sqs, url, ["a0", "a1"], "a")
        deadline = time.monotonic() + 20
        while len(handled) < 42 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        source.stop()
    # THEN a's messages were handled within the next two batches, not after b's 40
    assert sorted(handled) == sorted([*(f"b{n}" for n in range(40)), "a0", "a1"])
    assert handled.index("a1") <= 6, handled


def test_a_dead_lettered_message_keeps_its_group(sqs: Any) -> None:
    # GIVEN a queue that dead-letters on the second receive
    dlq = queue(sqs)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = str(
        sqs.create_queue(
            QueueName=f"fair-{uuid.uuid4().hex[:12]}",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})
            },
        )["QueueUrl"]
    )
    send(sqs, url, ["b0"], "b")
    # WHEN it is received once, not deleted, and received again
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"] == "b0"
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    # THEN it is in the DLQ with its group (dead-letter accounting sees the caller's group)
    [moved] = sqs.receive_message(QueueUrl=dlq, MessageSystemAttributeNames=["All"])["Messages"]
    assert (moved["Body"], moved["Attributes"]["MessageGroupId"]) == ("b0", "b")
