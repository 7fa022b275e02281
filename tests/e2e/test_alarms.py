"""The module's alarms fire on their real causes and reach a subscriber of the alarm topic.

One examples/local stack with alarms evaluated at time scale 0.02 (a 60 s period lasts 1.2 s).
Each alarm is fired by what would fire it on AWS (a dead letter, a worker whose configuration
was broken with UpdateFunctionConfiguration, submit failing with 5xx), its notification
reaches an http subscriber of the alarm topic, and logs/alarms.log records the state change
and the delivery. A healthy run fires nothing; a topic on alias/aws/sns hears nothing.
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
from async_jobs_local.cloudwatch import Alarm
from async_jobs_local.cloudwatch.metrics import key_of

from .conftest import queue_depth, start_stack, wait_for, wait_terminal

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


def alarm_topic(stack: LocalDeployment) -> str:
    topics = [t["TopicArn"] for t in stack.client("sns").list_topics()["Topics"]]
    assert len(topics) == 1, topics  # the topic the module creates
    return str(topics[0])


@pytest.fixture(scope="module")
def subscriber(stack: LocalDeployment) -> Iterator[list[dict[str, Any]]]:
    _Subscriber.notifications = []
    server = HTTPServer(("127.0.0.1", 0), _Subscriber)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/alarms"
    stack.client("sns").subscribe(TopicArn=alarm_topic(stack), Protocol="http", Endpoint=endpoint)
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


def history(stack: LocalDeployment) -> list[str]:
    """logs/alarms.log without the timestamps."""
    return [line.split(" ", 2)[2] for line in (stack.log_dir / "alarms.log").read_text().splitlines()]


def diagnosis(stack: LocalDeployment, alarm: str, started: float) -> str:
    """What the local CloudWatch knows of ``alarm``: its description, its metric's datapoints, the history."""
    assert stack.cloudwatch is not None
    description = stack.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
    parsed = Alarm.from_description(description)
    points = [(round(at - started, 2), value) for at, value in stack.cloudwatch.store.datapoints(parsed.key)]
    namespaces = sorted({key for key in stack.cloudwatch.store.keys() if key[0] == parsed.namespace}, key=str)
    return (
        f"alarm: {parsed}\ndatapoints since the test started (s, value): {points}\n"
        f"keys in {parsed.namespace}: {namespaces}\nhistory: {history(stack)}"
    )


def assert_fired_and_heard(
    stack: LocalDeployment, subscriber: list[dict[str, Any]], alarm: str, started: float
) -> None:
    """``alarm`` went to ALARM, the subscriber got its notification and alarms.log says both."""
    try:
        wait_for(lambda: alarm in fired_since(stack, started), timeout=30, what=f"{alarm} in ALARM")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnosis(stack, alarm, started)}") from None
    wait_for(lambda: notified(subscriber, alarm), timeout=10, what=f"the {alarm} notification")
    expected = [f"alarm {alarm}: OK -> ALARM", f"alarm {alarm} -> ALARM: delivered to {alarm_topic(stack)}"]
    # the delivery is written once SNS's publish returns, which is after the subscriber has it
    wait_for(
        lambda: all(line in history(stack) for line in expected), timeout=5, what=f"{expected} in alarms.log"
    )


def test_a_healthy_run_fires_nothing(stack: LocalDeployment, subscriber: list[dict[str, Any]]) -> None:
    started = time.time()
    client = JobsClient(stack.url)
    response = client.submit([{"id": i} for i in range(20)])
    assert response.status == 202, response.body
    assert wait_terminal(client, response.json()["job_id"])["status"] == "succeeded"
    time.sleep(60 * TIME_SCALE * 3)  # three evaluation periods after the work
    fired = fired_since(stack, started)
    latency = alarm_named(stack, "api-latency-p95")
    if latency in fired:
        # a machine too busy to answer within the threshold (cold starts on a loaded CI runner):
        # then the alarm is right, and only then may it fire
        assert stack.cloudwatch is not None
        described = stack.client("cloudwatch").describe_alarms(AlarmNames=[latency])["MetricAlarms"][0]
        parsed = Alarm.from_description(described)
        slowest = max(value for at, value in stack.cloudwatch.store.datapoints(parsed.key) if at >= started)
        assert slowest > parsed.threshold, (slowest, parsed)
        fired.discard(latency)
    assert fired == set()
    assert [n for n in subscriber if n["NewStateValue"] == "ALARM" and n["AlarmName"] != latency] == []
    assert history(stack)[0].startswith("alarm evaluation started")  # the history is being written


def test_a_dead_letter_fires_dlq_messages_and_the_subscriber_hears_of_it(
    stack: LocalDeployment, subscriber: list[dict[str, Any]]
) -> None:
    alarm = alarm_named(stack, "dlq-messages")
    started = time.time()
    # what SQS's redrive does with a message the worker failed every receive of
    stack.client("sqs").send_message(QueueUrl=stack.outputs["dlq_url"], MessageBody="poison: not a chunk")
    assert_fired_and_heard(stack, subscriber, alarm, started)


def test_a_worker_broken_by_its_configuration_fires_worker_errors(
    stack: LocalDeployment, subscriber: list[dict[str, Any]]
) -> None:
    alarm = alarm_named(stack, "worker-errors")
    worker = stack.outputs["worker_function_name"]
    lam = stack.client("lambda")
    environment = lam.get_function_configuration(FunctionName=worker)["Environment"]["Variables"]
    assert stack.event_source is not None and stack.cloudwatch is not None
    failed_before = stack.event_source.stats.failed_invocations
    started = time.time()
    # GIVEN a worker deployed without a variable it requires, as a hand edit in the console does
    broken = {name: value for name, value in environment.items() if name != "STATE_BUCKET"}
    lam.update_function_configuration(FunctionName=worker, Environment={"Variables": broken})
    try:
        # WHEN a job comes in: submit accepts it, and the mapping hands its message to the worker
        client = JobsClient(stack.url)
        response = client.submit([{"id": 1}])
        assert response.status == 202, response.body
        # THEN every invocation fails unhandled, which Lambda counts in Errors, and the alarm fires
        assert_fired_and_heard(stack, subscriber, alarm, started)
        assert stack.event_source.stats.failed_invocations > failed_before
        errors = stack.cloudwatch.store.datapoints(key_of("AWS/Lambda", "Errors", {"FunctionName": worker}))
        assert sum(value for at, value in errors if at >= started) >= 1
        # the worker's log names the variable; the job's message waits in the queue, not lost
        assert (
            "environment variable STATE_BUCKET: is required" in (stack.log_dir / f"{worker}.log").read_text()
        )
        assert queue_depth(stack, stack.outputs["queue_url"]) >= 1
        assert client.get(response.json()["job_id"]).json()["status"] == "queued"
    finally:
        lam.update_function_configuration(FunctionName=worker, Environment={"Variables": environment})
    # AND once the configuration is put back, the worker runs jobs again
    response = client.submit([{"id": 2}])
    assert wait_terminal(client, response.json()["job_id"], timeout=30)["status"] == "succeeded"


def test_submit_side_5xx_fire_api_5xx(stack: LocalDeployment, subscriber: list[dict[str, Any]]) -> None:
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
        assert_fired_and_heard(stack, subscriber, alarm, started)
    finally:
        for name, document in policies.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def test_a_topic_on_alias_aws_sns_gets_no_notification(
    stack: LocalDeployment, subscriber: list[dict[str, Any]]
) -> None:
    assert stack.cloudwatch is not None
    alarm = alarm_named(stack, "dlq-messages")
    sns = stack.client("sns")
    topic = alarm_topic(stack)
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
    refusal = (
        f"alarm {alarm} -> ALARM: not delivered to {topic}: "
        "the topic is encrypted with alias/aws/sns, whose key policy CloudWatch may not use"
    )
    assert refusal in history(stack)
