"""The module's alarms fire on the metrics AWS would publish and reach a subscriber of the alarm topic.

One examples/local stack with alarms evaluated at time scale 0.02 (a 60 s period lasts 1.2 s).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from async_jobs_local import JobsClient, LocalDeployment
from async_jobs_local.sandbox import InvocationError

from .conftest import start_stack, wait_for, wait_terminal

pytestmark = pytest.mark.slow

TIME_SCALE = 0.02


class _Subscriber(BaseHTTPRequestHandler):
    notifications: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("Type") == "Notification":
            _Subscriber.notifications.append(json.loads(body["Message"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalDeployment]:
    yield from start_stack("local", alarm_time_scale=TIME_SCALE)


@pytest.fixture(scope="module")
def subscriber(stack: LocalDeployment) -> Iterator[list[dict[str, Any]]]:
    server = HTTPServer(("127.0.0.1", 0), _Subscriber)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    topic = stack.client("sns").list_topics()["Topics"][0]["TopicArn"]
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/alarms"
    stack.client("sns").subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint)
    yield _Subscriber.notifications
    server.shutdown()
    server.server_close()


def alarm_named(stack: LocalDeployment, suffix: str) -> str:
    names = [a["AlarmName"] for a in stack.client("cloudwatch").describe_alarms()["MetricAlarms"]]
    matching = [name for name in names if name.endswith(f"-{suffix}")]
    assert len(matching) == 1, (suffix, names)
    return matching[0]


def fired_since(stack: LocalDeployment, started: float) -> set[str]:
    assert stack.cloudwatch is not None
    return {t.alarm for t in list(stack.cloudwatch.transitions) if t.new == "ALARM" and t.at >= started}


def notified(subscriber: list[dict[str, Any]], alarm: str) -> bool:
    return any(n["AlarmName"] == alarm and n["NewStateValue"] == "ALARM" for n in list(subscriber))


def test_a_healthy_run_fires_nothing(stack: LocalDeployment, subscriber: list[dict[str, Any]]) -> None:
    started = time.time()
    client = JobsClient(stack.url)
    response = client.submit([{"id": i} for i in range(20)])
    assert response.status == 202, response.body
    assert wait_terminal(client, response.json()["job_id"])["status"] == "succeeded"
    time.sleep(60 * TIME_SCALE * 3)  # three evaluation periods after the work
    assert fired_since(stack, started) == set()
    assert [n for n in subscriber if n["NewStateValue"] == "ALARM"] == []


def test_a_dead_letter_fires_dlq_messages_and_the_subscriber_hears_of_it(
    stack: LocalDeployment, subscriber: list[dict[str, Any]]
) -> None:
    alarm = alarm_named(stack, "dlq-messages")
    started = time.time()
    # what SQS's redrive does with a message the worker failed every receive of
    stack.client("sqs").send_message(QueueUrl=stack.outputs["dlq_url"], MessageBody="poison: not a chunk")
    wait_for(lambda: alarm in fired_since(stack, started), timeout=30, what=f"{alarm} in ALARM")
    wait_for(lambda: notified(subscriber, alarm), timeout=10, what=f"the {alarm} notification")


def test_a_failing_worker_fires_worker_errors(stack: LocalDeployment) -> None:
    alarm = alarm_named(stack, "worker-errors")
    started = time.time()
    # an invocation the worker's handler fails (unhandled): Lambda counts it in Errors
    with pytest.raises(InvocationError):
        stack.invoke(stack.outputs["worker_function_name"], {"Records": "not a list of SQS records"})
    wait_for(lambda: alarm in fired_since(stack, started), timeout=30, what=f"{alarm} in ALARM")


def test_submit_side_5xx_fire_api_5xx(stack: LocalDeployment) -> None:
    alarm = alarm_named(stack, "api-5xx")
    iam = stack.client("iam")
    submit = stack.outputs["api_routes"]["POST /jobs"]
    role = stack.functions[submit].role.rsplit("/", 1)[-1]
    policies = {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    started = time.time()
    for name in policies:  # submit may no longer write the job or queue it
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    try:
        response = JobsClient(stack.url).submit([{"id": 1}])
        assert response.status >= 500, (response.status, response.body)
        wait_for(lambda: alarm in fired_since(stack, started), timeout=30, what=f"{alarm} in ALARM")
    finally:
        for name, document in policies.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def test_a_topic_on_alias_aws_sns_gets_no_notification(
    stack: LocalDeployment, subscriber: list[dict[str, Any]]
) -> None:
    assert stack.cloudwatch is not None
    alarm = alarm_named(stack, "dlq-messages")
    sns = stack.client("sns")
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    # the module's key lets CloudWatch publish; AWS's managed key for SNS never does
    sns.set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue="alias/aws/sns")
    stack.client("sqs").purge_queue(QueueUrl=stack.outputs["dlq_url"])
    wait_for(
        lambda: (
            stack.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]
            == "OK"
        ),
        timeout=30,
        what=f"{alarm} back to OK",
    )
    heard, refused = len(subscriber), stack.cloudwatch.notifier.refused
    started = time.time()
    stack.client("sqs").send_message(QueueUrl=stack.outputs["dlq_url"], MessageBody="poison again")
    wait_for(lambda: alarm in fired_since(stack, started), timeout=30, what=f"{alarm} in ALARM")
    time.sleep(1)
    assert stack.cloudwatch.notifier.refused > refused
    assert len(subscriber) == heard
    assert "alias/aws/sns" in (stack.log_dir / "alarms.log").read_text()
