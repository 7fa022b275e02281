"""Local CloudWatch: statistics, alarm evaluation as CloudWatch does it, EMF, delivery to encrypted topics."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from async_jobs_local.cloudwatch import (
    Alarm,
    LocalCloudWatch,
    MetricStore,
    cloudwatch_may_use_key,
    emf_datapoints,
    evaluate,
    statistic,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:jobs-dlq-messages"


def alarm(**overrides: Any) -> Alarm:
    description = {
        "AlarmName": "jobs-dlq-messages",
        "AlarmArn": ALARM_ARN,
        "Namespace": "AWS/SQS",
        "MetricName": "NumberOfMessagesReceived",
        "Dimensions": [{"Name": "QueueName", "Value": "jobs-dlq"}],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "StateValue": "OK",
    }
    description.update(overrides)
    return Alarm.from_description(description)


def test_statistics() -> None:
    values = [float(v) for v in range(1, 101)]
    assert statistic(values, "Sum") == 5050
    assert statistic(values, "Average") == 50.5
    assert (statistic(values, "Minimum"), statistic(values, "Maximum")) == (1, 100)
    assert statistic(values, "SampleCount") == 100
    assert statistic(values, "p95") == 95
    assert statistic(values, "p99.9") == 100
    with pytest.raises(ValueError):
        statistic(values, "Median")


def test_one_breaching_period_fires_and_the_alarm_clears_with_missing_data() -> None:
    # period 60 s at time scale 1: the buckets are [0, 60), [60, 120)
    assert evaluate(alarm(), [(10.0, 1.0)], now=30.0, seconds_per_period=60) == "ALARM"
    assert evaluate(alarm(), [(10.0, 0.0)], now=30.0, seconds_per_period=60) == "OK"
    assert evaluate(alarm(), [(10.0, 1.0)], now=70.0, seconds_per_period=60) == "OK"  # notBreaching


def test_treat_missing_data() -> None:
    assert evaluate(alarm(TreatMissingData="breaching"), [], now=30.0, seconds_per_period=60) == "ALARM"
    assert (
        evaluate(alarm(TreatMissingData="missing"), [], now=30.0, seconds_per_period=60)
        == "INSUFFICIENT_DATA"
    )
    assert evaluate(alarm(TreatMissingData="ignore", StateValue="ALARM"), [], 30.0, 60) == "ALARM"


def test_datapoints_to_alarm_out_of_evaluation_periods() -> None:
    three_of_two = alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
    one_breach = [(10.0, 1.0), (70.0, 0.0), (130.0, 0.0)]
    two_breaches = [(10.0, 1.0), (70.0, 0.0), (130.0, 5.0)]
    assert evaluate(three_of_two, one_breach, now=150.0, seconds_per_period=60) == "OK"
    assert evaluate(three_of_two, two_breaches, now=150.0, seconds_per_period=60) == "ALARM"


def test_percentile_alarm_uses_the_extended_statistic() -> None:
    latency = alarm(Namespace="AWS/ApiGateway", MetricName="Latency", Statistic=None, ExtendedStatistic="p95")
    latency = Alarm.from_description({**_describe(latency), "Threshold": 500.0})
    fast = [(float(i) / 100, 100.0) for i in range(100)]
    slow_tail = fast[:90] + [(0.95, 900.0)] * 10  # 10 % above 500 ms: p95 is slow
    assert evaluate(latency, fast, now=5.0, seconds_per_period=60) == "OK"
    assert evaluate(latency, slow_tail, now=5.0, seconds_per_period=60) == "ALARM"


def _describe(a: Alarm) -> dict[str, Any]:
    return {
        "AlarmName": a.name,
        "AlarmArn": a.arn,
        "Namespace": a.namespace,
        "MetricName": a.metric_name,
        "ExtendedStatistic": a.statistic,
        "Period": a.period,
        "EvaluationPeriods": a.evaluation_periods,
        "ComparisonOperator": a.comparison,
        "TreatMissingData": a.treat_missing_data,
        "StateValue": a.state,
    }


def test_time_scale_shrinks_the_period() -> None:
    # 60 s at time scale 0.01 is 0.6 s: a datapoint 1 s old is out of the current period
    assert evaluate(alarm(), [(100.0, 1.0)], now=100.1, seconds_per_period=60 * 0.01) == "ALARM"
    assert evaluate(alarm(), [(100.0, 1.0)], now=101.0, seconds_per_period=60 * 0.01) == "OK"


def test_emf_lines_become_datapoints() -> None:
    line = "2026-01-01T00:00:00Z INFO " + json.dumps(
        {
            "_aws": {
                "Timestamp": 1_700_000_000_000,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "AsyncJobs",
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": "JobsFailed"}],
                    }
                ],
            },
            "service": "jobs",
            "JobsFailed": 2,
        }
    )
    assert list(emf_datapoints(line)) == [
        ("AsyncJobs", "JobsFailed", {"service": "jobs"}, 2.0, "None", 1.7e9)
    ]
    assert list(emf_datapoints('{"message": "no metrics"}')) == []


CLOUDWATCH_MAY_USE = {
    "Effect": "Allow",
    "Principal": {"Service": "cloudwatch.amazonaws.com"},
    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
    "Resource": "*",
    "Condition": {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:jobs-*"},
    },
}
ACCOUNT_ROOT = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"}


def test_key_policy_must_let_cloudwatch_use_the_key() -> None:
    assert cloudwatch_may_use_key({"Statement": [ACCOUNT_ROOT, CLOUDWATCH_MAY_USE]}, ALARM_ARN, ACCOUNT)
    assert not cloudwatch_may_use_key({"Statement": [ACCOUNT_ROOT]}, ALARM_ARN, ACCOUNT)
    decrypt_only = {**CLOUDWATCH_MAY_USE, "Action": "kms:Decrypt"}
    assert not cloudwatch_may_use_key({"Statement": [decrypt_only]}, ALARM_ARN, ACCOUNT)
    other_alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:another-app"
    assert not cloudwatch_may_use_key({"Statement": [CLOUDWATCH_MAY_USE]}, other_alarm, ACCOUNT)


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        _Receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alarms"
    server.shutdown()
    server.server_close()


def _world(key_policy: dict[str, Any] | None, receiver: str) -> tuple[LocalCloudWatch, Any]:
    setup = dict(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")

    def client(service: str) -> Any:
        return boto3.client(service, **setup)  # type: ignore[call-overload]

    kms, sns, sqs, cloudwatch = client("kms"), client("sns"), client("sqs"), client("cloudwatch")
    if key_policy is None:
        key_id = "alias/aws/sns"
    else:
        key_id = kms.create_key(Policy=json.dumps(key_policy))["KeyMetadata"]["Arn"]
    topic = sns.create_topic(Name="jobs-alarms", Attributes={"KmsMasterKeyId": key_id})["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver)
    sqs.create_queue(QueueName="jobs-dlq")
    cloudwatch.put_metric_alarm(
        AlarmName="jobs-dlq-messages",
        Namespace="AWS/SQS",
        MetricName="NumberOfMessagesReceived",
        Dimensions=[{"Name": "QueueName", "Value": "jobs-dlq"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic],
    )
    return LocalCloudWatch(client, region=REGION, time_scale=0.05), sqs


@pytest.mark.parametrize(
    ("policy", "delivered"),
    [
        ({"Statement": [ACCOUNT_ROOT, CLOUDWATCH_MAY_USE]}, True),
        ({"Statement": [ACCOUNT_ROOT]}, False),
        (None, False),
    ],
    ids=["customer-key-allowing-cloudwatch", "customer-key-without", "alias-aws-sns"],
)
def test_a_received_dead_letter_fires_and_delivers_only_if_the_key_allows(
    monkeypatch: pytest.MonkeyPatch, receiver: str, policy: dict[str, Any] | None, delivered: bool
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        local, sqs = _world(policy, receiver)
        try:
            local.tick()
            assert local.transitions == []  # nothing received: OK stays OK
            url = sqs.get_queue_url(QueueName="jobs-dlq")["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody="poison")
            sqs.receive_message(QueueUrl=url)
            local.tick()
            assert [(t.alarm, t.new) for t in local.transitions] == [("jobs-dlq-messages", "ALARM")]
            state = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"][0]
            assert state["StateValue"] == "ALARM"
            assert [d.delivered for d in local.notifier.deliveries] == [delivered]
            assert local.notifier.refused == (0 if delivered else 1)
            messages = [
                json.loads(body["Message"]) for body in _Receiver.bodies if body.get("Type") == "Notification"
            ]
            assert [m["NewStateValue"] for m in messages] == (["ALARM"] if delivered else [])
            # the metrics went to CloudWatch too, with their timestamps
            listed = boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace="AWS/SQS")[
                "Metrics"
            ]
            assert {"NumberOfMessagesReceived", "ApproximateNumberOfMessagesVisible"} <= {
                m["MetricName"] for m in listed
            }
        finally:
            local.stop()


def test_metric_store_flushes_what_arrived_once() -> None:
    calls: list[dict[str, Any]] = []

    class Recorder:
        def put_metric_data(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    store = MetricStore()
    for i in range(25):
        store.put("AWS/Lambda", "Errors", {"FunctionName": "worker"}, i % 2)
    assert store.flush(Recorder()) == 25
    assert [len(c["MetricData"]) for c in calls] == [20, 5]
    assert store.flush(Recorder()) == 0
