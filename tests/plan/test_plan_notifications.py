"""Plan tests of completion events and callbacks: inputs, validations, IAM, the signing secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .plan_support import PlanSummary, plan_error, policy_actions

Plan = Callable[..., PlanSummary]
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hooks-AbCdEf"
SECRET_ADDRESS = "aws_secretsmanager_secret.callbacks[0]"


def _statements(plan: PlanSummary, function: str) -> dict[str, dict[str, Any]]:
    policy = json.loads(plan.values[f"module.{function}.aws_iam_role_policy.this"]["policy"])
    return {s.get("Sid", ""): s for s in policy["Statement"]}


def _env(plan: PlanSummary, function: str) -> dict[str, str]:
    return dict(plan.values[f"module.{function}.aws_lambda_function.this"]["environment"][0]["variables"])


def test_events_go_to_the_default_bus_by_default_and_nothing_else_is_created(plan_guards: Plan) -> None:
    plan = plan_guards()
    statement = _statements(plan, "worker")["PublishJobEvents"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == "arn:aws:events:us-east-1:123456789012:event-bus/default"
    worker = _env(plan, "worker")
    assert (worker["EVENTS_ENABLED"], worker["EVENTS_SOURCE"]) == ("true", "async-jobs")
    assert "EVENTS_BUS_NAME" not in worker and "CALLBACK_SECRET_ARN" not in worker
    assert _env(plan, "submit")["CALLBACK_ALLOWED_HOSTS"] == ""
    assert not plan.of_type("aws_secretsmanager_secret")
    assert "secretsmanager:GetSecretValue" not in policy_actions(
        plan.values["module.worker.aws_iam_role_policy.this"]["policy"]
    )


def test_callbacks_create_a_write_only_secret_and_a_named_bus_scopes_put_events(plan_guards: Plan) -> None:
    plan = plan_guards(
        callbacks={"allowed_hosts": ["hooks.example.com", "*.partner.example", "hooks.example.com:8443"]},
        events={"bus_name": "jobs-bus", "source": "billing.jobs"},
    )
    assert _statements(plan, "worker")["PublishJobEvents"]["Resource"].endswith(":event-bus/jobs-bus")
    assert plan.counts["aws_secretsmanager_secret"] == 1
    version = plan.values["aws_secretsmanager_secret_version.callbacks[0]"]
    # the value comes from an ephemeral resource through the write-only argument: never in state
    assert version["secret_string_wo_version"] == 1  # callbacks.secret_version: raise it to rotate
    assert version.get("secret_string") in (None, "")
    assert version.get("secret_string_wo") is None
    assert plan.values[SECRET_ADDRESS]["name"] == "guards-callbacks-us-east-1"
    worker = _statements(plan, "worker")["ReadCallbackSecret"]
    assert worker["Action"] == "secretsmanager:GetSecretValue"
    secrets = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    assert worker["Resource"] == secrets + "guards-callbacks-us-east-1-??????"
    assert "secretsmanager:GetSecretValue" not in policy_actions(
        plan.values["module.submit.aws_iam_role_policy.this"]["policy"]
    )
    assert (
        _env(plan, "submit")["CALLBACK_ALLOWED_HOSTS"]
        == "hooks.example.com,*.partner.example,hooks.example.com:8443"
    )


def test_a_given_secret_is_used_instead_and_events_can_be_off(plan_guards: Plan) -> None:
    plan = plan_guards(
        callbacks={"allowed_hosts": ["hooks.example.com"], "secret_arn": SECRET}, events={"enabled": False}
    )
    assert "PublishJobEvents" not in _statements(plan, "worker")
    assert _env(plan, "worker")["EVENTS_ENABLED"] == "false"
    assert _env(plan, "submit")["EVENTS_ENABLED"] == "false"
    assert not plan.of_type("aws_secretsmanager_secret")
    assert _statements(plan, "worker")["ReadCallbackSecret"]["Resource"] == SECRET
    worker = _env(plan, "worker")
    assert worker["CALLBACK_SECRET_ARN"] == SECRET
    assert (worker["CALLBACK_MAX_ATTEMPTS"], worker["CALLBACK_TIMEOUT_SECONDS"]) == ("8", "5")
    assert worker["CALLBACK_ALLOW_PRIVATE_ADDRESSES"] == "false"


def test_allowed_hosts_are_host_names_not_urls(plan_guards: Plan) -> None:
    for entry in ("https://hooks.example.com", "hooks.example.com:0", "hooks.example.com:65536", "h:08443"):
        error = plan_error(plan_guards, callbacks={"allowed_hosts": ["ok.example.com", entry]})
        assert "callbacks.allowed_hosts entries must be lower-case host names" in error, entry


def test_bus_name_source_and_limits_are_validated(plan_guards: Plan) -> None:
    arn = "arn:aws:events:us-east-1:123456789012:event-bus/jobs"
    error = plan_error(plan_guards, events={"bus_name": arn, "source": "aws.jobs"})
    assert "events.bus_name must be an event bus name" in error
    assert 'must not start with "aws."' in error
    error = plan_error(plan_guards, callbacks={"max_attempts": 0, "secret_arn": "hooks-secret"})
    assert "callbacks.max_attempts must be a whole number from 1 to 50" in error
    assert "callbacks.secret_arn must be a Secrets Manager secret ARN" in error
