"""Local CloudWatch: statistics, alarm evaluation as CloudWatch does it, EMF, delivery to encrypted topics."""

from __future__ import annotations

import json
import logging
import logging.config
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
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
from async_jobs_local.cloudwatch.evaluation import evaluation_times
from async_jobs_local.cloudwatch.metrics import key_of
from async_jobs_local.sandbox import FunctionThrottled, FunctionTimeout, InitError, InvocationError

REGION = "us-east-1"
ACCOUNT = "123456789012"
ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:jobs-dlq-messages"


def described(**overrides: Any) -> dict[str, Any]:
    """A DescribeAlarms entry: a Sum > 0 alarm on the DLQ's receives, one 60 s period."""
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
    return description


def alarm(**overrides: Any) -> Alarm:
    return Alarm.from_description(described(**overrides))


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


def _world(
    key_policy: dict[str, Any] | None, receiver: str, history_path: Path | None = None
) -> tuple[LocalCloudWatch, Any]:
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
    return LocalCloudWatch(client, region=REGION, time_scale=0.05, history_path=history_path), sqs


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


@pytest.fixture
def logging_reconfigured() -> Iterator[None]:
    """``logging.config.dictConfig`` as any component may call it: every logger registered so far is
    disabled (``disable_existing_loggers`` defaults to true). Undone afterwards."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    disabled = {logger.name: logger.disabled for logger in loggers}
    logging.config.dictConfig({"version": 1})
    yield
    for logger in loggers:
        logger.disabled = disabled[logger.name]


def test_the_history_records_state_changes_and_deliveries_whatever_logging_is_configured(
    monkeypatch: pytest.MonkeyPatch, receiver: str, tmp_path: Path, logging_reconfigured: None
) -> None:
    assert logging.getLogger("async_jobs_local.alarms").disabled  # what dictConfig does
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    history = tmp_path / "alarms.log"
    with mock_aws():
        local, sqs = _world({"Statement": [ACCOUNT_ROOT, CLOUDWATCH_MAY_USE]}, receiver, history)
        local.start()
        try:
            url = sqs.get_queue_url(QueueName="jobs-dlq")["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody="poison")
            sqs.receive_message(QueueUrl=url)
            local.tick()
        finally:
            local.stop()
    lines = [line.split(" ", 2)[2] for line in history.read_text().splitlines()]
    assert lines[0].startswith("alarm evaluation started: every ")
    assert "alarm jobs-dlq-messages: OK -> ALARM" in lines
    assert (
        f"alarm jobs-dlq-messages -> ALARM: delivered to arn:aws:sns:{REGION}:{ACCOUNT}:jobs-alarms" in lines
    )
    assert lines[-1] == "alarm evaluation stopped: 1 state changes, 1 deliveries, 0 refused"


def _raises(error: InvocationError) -> Callable[[], Any]:
    def call() -> Any:
        raise error

    return call


def test_lambda_errors_count_failed_invocations_not_records_reported_in_a_partial_batch_response() -> None:
    local = LocalCloudWatch(lambda service: None, region=REGION)
    try:
        partial = {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
        # GIVEN a worker that reports failed records (the invocation succeeded), then fails four
        # ways: an unhandled exception, init, timeout; and is throttled once
        assert local.observe_invocation("worker", lambda: partial) == partial
        failures = [
            InvocationError({"errorType": "ConfigError", "errorMessage": "STATE_BUCKET is required"}),
            InitError({"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'x'"}),
            FunctionTimeout("worker", 10),
            FunctionThrottled("worker", 2),
        ]
        for failure in failures:
            with pytest.raises(type(failure)):
                local.observe_invocation("worker", _raises(failure))

        def values(metric: str) -> list[float]:
            return [
                v for _, v in local.store.datapoints(key_of("AWS/Lambda", metric, {"FunctionName": "worker"}))
            ]

        # THEN Lambda's metrics: Errors counts the three failed invocations, not the two records
        assert values("Errors") == [0, 1, 1, 1]
        assert sum(values("Invocations")) == 4  # a throttled invocation never ran
        assert values("Throttles") == [1]
    finally:
        local.stop()


def test_evaluation_times_cover_each_period_closed_since_the_previous_tick() -> None:
    assert evaluation_times(None, 100.0, 6.0) == [100.0]
    assert evaluation_times(96.5, 100.0, 6.0) == [100.0]  # same period: only the open one
    closed = evaluation_times(97.0, 103.0, 6.0)  # the period [96, 102) closed in between
    assert len(closed) == 2 and 101.99 < closed[0] < 102.0 and closed[1] == 103.0
    late = evaluation_times(0.0, 6000.0, 6.0)  # a tick 1000 periods late evaluates the last ones
    assert len(late) == 11 and late[-2] == pytest.approx(6000.0, abs=1e-3)


class _AlarmsOnly:
    """CloudWatch with one alarm: DescribeAlarms and SetAlarmState, nothing else."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.description = description

    def describe_alarms(self) -> dict[str, Any]:
        return {"MetricAlarms": [dict(self.description)]}

    def set_alarm_state(self, AlarmName: str, StateValue: str, StateReason: str) -> None:  # noqa: N803
        self.description["StateValue"] = StateValue

    def put_metric_data(self, **kwargs: Any) -> None:
        pass


def test_a_datapoint_after_the_last_tick_of_its_period_still_fires_the_alarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a Sum > 0 alarm on 60 s periods run at time scale 0.1 (a period is [6000, 6006) here)
    description = described(
        AlarmName="jobs-api-5xx",
        Namespace="AWS/ApiGateway",
        MetricName="5XXError",
        Dimensions=[{"Name": "ApiName", "Value": "jobs"}],
    )
    cloudwatch = _AlarmsOnly(description)
    local = LocalCloudWatch(lambda service: cloudwatch if service == "cloudwatch" else None, region=REGION)
    local.time_scale = 0.1
    clock = {"now": 6005.9}
    monkeypatch.setattr("async_jobs_local.cloudwatch.runtime.time.time", lambda: clock["now"])
    try:
        local.tick()  # the period's last tick: nothing yet
        # WHEN a 5XX lands after it, and the next tick comes in the next period
        local.store.put("AWS/ApiGateway", "5XXError", {"ApiName": "jobs"}, 1, timestamp=6005.95)
        clock["now"] = 6006.2
        local.tick()
        # THEN the closed period is evaluated with it (ALARM), then the open one (OK again)
        assert [(t.old, t.new) for t in local.transitions] == [("OK", "ALARM"), ("ALARM", "OK")]
        assert description["StateValue"] == "OK"
    finally:
        local.stop()
