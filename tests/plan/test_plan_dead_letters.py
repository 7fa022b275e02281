"""Dead-letter accounting on the plan: the DLQ's mapping to the worker, the variable that tells
the worker which records are dead letters, its permissions, and the alarms; and all of it gone
when the input turns it off."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .plan_support import PlanSummary

Plan = Callable[..., PlanSummary]
MAPPING = "aws_lambda_event_source_mapping.worker_dead_letters[0]"
ALARM = 'module.alarms[0].aws_cloudwatch_metric_alarm.this["{}"]'


def _worker_env(plan: PlanSummary) -> dict[str, str]:
    return plan.values["module.worker.aws_lambda_function.this"]["environment"][0]["variables"]


def _consumed(plan: PlanSummary) -> list[str]:
    policy = json.loads(plan.values["module.worker.aws_iam_role_policy.this"]["policy"])
    [statement] = [s for s in policy["Statement"] if s.get("Sid") == "ConsumeQueue"]
    resources: Any = statement["Resource"]
    return [resources] if isinstance(resources, str) else sorted(resources)


@pytest.fixture(scope="module")
def on(plan_guards: Plan) -> PlanSummary:
    return plan_guards()


@pytest.fixture(scope="module")
def off(plan_guards: Plan) -> PlanSummary:
    return plan_guards(dead_letter_accounting_enabled="false")


def test_the_dlq_feeds_the_worker_in_small_partial_batches(on: PlanSummary) -> None:
    mapping = on.values[MAPPING]
    assert on.unknown[MAPPING]["event_source_arn"] is True  # the DLQ's ARN, known after apply
    assert mapping["batch_size"] == 5
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["scaling_config"] == [{"maximum_concurrency": 2}]
    assert on.outputs["worker_dead_letter_event_source_mapping"]["enabled"] is True


def test_the_worker_knows_the_dlq_and_may_consume_it(on: PlanSummary) -> None:
    dlq_name = on.values["aws_sqs_queue.dlq"]["name"]
    arn = _worker_env(on)["DEAD_LETTER_QUEUE_ARN"]
    assert arn.startswith("arn:aws:sqs:us-east-1:") and arn.endswith(":" + dlq_name)
    queue_name = on.values["aws_sqs_queue.this"]["name"]
    assert [r.rsplit(":", 1)[1] for r in _consumed(on)] == sorted([queue_name, dlq_name])


def test_lambda_accepts_the_dlq_mapping(on: PlanSummary) -> None:
    # AWS rule (CreateEventSourceMapping): the queue's visibility timeout must be at least the
    # function's timeout; SQS's default of 30 s is below most worker timeouts.
    timeout = on.values["module.worker.aws_lambda_function.this"]["timeout"]
    assert on.values["aws_sqs_queue.dlq"]["visibility_timeout_seconds"] >= timeout


def test_alarms_see_a_dead_letter_drained_at_once_and_a_dlq_not_draining(on: PlanSummary) -> None:
    arrived = on.values[ALARM.format("dlq_messages")]
    assert (arrived["metric_name"], arrived["statistic"], arrived["threshold"]) == (
        "NumberOfMessagesReceived",
        "Sum",
        0,
    )
    assert arrived["comparison_operator"] == "GreaterThanThreshold"
    stuck = on.values[ALARM.format("dlq_oldest_message_age")]
    assert (stuck["metric_name"], stuck["threshold"]) == ("ApproximateAgeOfOldestMessage", 600)
    dlq = {"QueueName": on.values["aws_sqs_queue.dlq"]["name"]}
    assert stuck["dimensions"] == arrived["dimensions"] == dlq


def test_turned_off_the_dlq_is_left_to_operators(off: PlanSummary) -> None:
    assert MAPPING not in off.values
    assert "DEAD_LETTER_QUEUE_ARN" not in _worker_env(off)
    assert [r.rsplit(":", 1)[1] for r in _consumed(off)] == [off.values["aws_sqs_queue.this"]["name"]]
    assert off.outputs["worker_dead_letter_event_source_mapping"] is None
    # nothing drains the DLQ: its depth is the signal
    assert off.values[ALARM.format("dlq_messages")]["metric_name"] == "ApproximateNumberOfMessagesVisible"
