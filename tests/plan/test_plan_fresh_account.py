"""What AWS enforces on a fresh account and a second region, checked on the plan.

Each test names the AWS rule it stands for; moto would accept the plan either way, so these
are the only place the rules are held.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from async_jobs.contract import contract

from .plan_support import PlanSummary, plan_error, policy_actions

Plan = Callable[..., PlanSummary]

FUNCTIONS = ("submit", "worker", "status")
# Lambda's invocation payload limit (synchronous) and what the module reserves for the rest
# of the API Gateway event (headers twice, multiValueHeaders, request context).
LAMBDA_PAYLOAD_BYTES = 6_291_456
EVENT_OVERHEAD_BYTES = 65_536
# An ASCII body's worst case inside the JSON event: each `"` or `\\` becomes two bytes.
JSON_ESCAPING_FACTOR = 2


def _function(plan: PlanSummary, name: str) -> dict[str, Any]:
    return plan.values[f"module.{name}.aws_lambda_function.this"]


def _env(plan: PlanSummary, name: str) -> dict[str, str]:
    return _function(plan, name)["environment"][0]["variables"]


@pytest.fixture(scope="module")
def defaults(plan_guards: Plan) -> PlanSummary:
    return plan_guards()


# --- Lambda concurrency ------------------------------------------------------------------


def test_no_function_reserves_concurrency_by_default(defaults: PlanSummary) -> None:
    # Lambda keeps 100 concurrent executions unreserved (all of a fresh account's quota of 10)
    # and refuses a reservation that leaves less: the defaults reserve nothing. (examples/complete
    # reserves 120, so it needs a quota of 220.)
    for name in FUNCTIONS:
        assert _function(defaults, name)["reserved_concurrent_executions"] == -1, name
    esm = defaults.values["aws_lambda_event_source_mapping.worker"]
    assert esm["scaling_config"] == [{"maximum_concurrency": 5}]


# --- account-global names ----------------------------------------------------------------


def _global_names(plan: PlanSummary) -> set[str]:
    roles = {r["name"] for r in plan.of_type("aws_iam_role").values()}
    dashboards = {d["dashboard_name"] for d in plan.of_type("aws_cloudwatch_dashboard").values()}
    return roles | dashboards


def test_second_region_names_do_not_collide(plan_guards: Plan, defaults: PlanSummary) -> None:
    # IAM roles and dashboards are account-global: the same name in a second region must not
    # take (IAM: EntityAlreadyExists) or overwrite (dashboard) the first region's.
    other = plan_guards(region="ap-southeast-2", name="a" * 31, api_gateway_cloudwatch_role="create")
    first, second = _global_names(defaults), _global_names(other)
    assert len(first) == 4 and len(second) == 5  # three function roles + dashboard (+ API Gateway role)
    assert not first & _global_names(plan_guards(region="eu-west-1"))
    assert all("ap-southeast-2" in name for name in second)
    # the longest name in a 14-character region still fits IAM's 64 characters
    assert all(len(r["name"]) <= 64 for r in other.of_type("aws_iam_role").values())


# --- REST logging and the account's CloudWatch role --------------------------------------


def test_rest_logging_is_off_without_the_account_role(defaults: PlanSummary) -> None:
    # REST access and execution logs need the account's API Gateway CloudWatch role; AWS
    # refuses the stage without it. The default touches nothing account-wide.
    assert defaults.values["module.rest_api[0].aws_api_gateway_stage.this"]["access_log_settings"] == []
    settings = defaults.values["module.rest_api[0].aws_api_gateway_method_settings.this"]["settings"][0]
    assert settings["logging_level"] == "OFF"
    assert defaults.of_type("aws_api_gateway_account") == {}
    assert "aws_cloudwatch_log_group.api_access[0]" not in defaults.values


def test_execution_logging_without_the_account_role_is_refused(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, api_execution_logging_level="ERROR")
    assert "api_execution_logging_level = ERROR needs API Gateway's account-level CloudWatch" in error
    assert 'set api_gateway_cloudwatch_role = "existing"' in error


def test_existing_account_role_turns_rest_logs_on(plan_guards: Plan) -> None:
    plan = plan_guards(api_gateway_cloudwatch_role="existing")
    stage = plan.values["module.rest_api[0].aws_api_gateway_stage.this"]
    assert json.loads(stage["access_log_settings"][0]["format"])["requestId"] == "$context.requestId"
    settings = plan.values["module.rest_api[0].aws_api_gateway_method_settings.this"]["settings"][0]
    assert settings["logging_level"] == "ERROR"
    assert plan.of_type("aws_api_gateway_account") == {}  # someone else owns the setting


def test_created_account_role_is_region_unique(plan_guards: Plan) -> None:
    plan = plan_guards(api_gateway_cloudwatch_role="create", region="eu-west-1")
    assert len(plan.of_type("aws_api_gateway_account")) == 1
    role = plan.values["module.rest_api[0].aws_iam_role.cloudwatch[0]"]
    assert role["name"] == "guards-apigw-logs-eu-west-1"


def test_http_api_access_logs_need_no_account_role(plan_guards: Plan) -> None:
    plan = plan_guards(api_type="http", authorization="NONE")
    assert plan.values["module.http_api[0].aws_apigatewayv2_stage.this"]["access_log_settings"]
    assert plan.of_type("aws_api_gateway_account") == {}


# --- alarm topic encryption --------------------------------------------------------------


def test_alarm_topic_key_lets_cloudwatch_publish(defaults: PlanSummary) -> None:
    key = defaults.values["module.alarms[0].aws_kms_key.topic[0]"]
    assert key["enable_key_rotation"] is True
    policy = json.loads(key["policy"])
    service = {"Service": "cloudwatch.amazonaws.com"}
    cloudwatch = [s for s in policy["Statement"] if s.get("Principal") == service]
    assert len(cloudwatch) == 1
    assert set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    condition = cloudwatch[0]["Condition"]
    assert condition["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert condition["ArnLike"]["aws:SourceArn"] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:guards-*"
    # every alarm the topic serves matches that ARN pattern
    names = [a["alarm_name"] for a in defaults.of_type("aws_cloudwatch_metric_alarm").values()]
    assert names and all(n.startswith("guards-") for n in names)
    assert defaults.unknown["module.alarms[0].aws_sns_topic.alarms[0]"]["kms_master_key_id"] is True


@pytest.mark.parametrize("key", ["alias/aws/sns", "arn:aws:kms:us-east-1:123456789012:alias/aws/sns"])
def test_alarm_topic_refuses_the_aws_managed_sns_key(plan_guards: Plan, key: str) -> None:
    error = plan_error(plan_guards, alarm_topic_encryption={"create_kms_key": False, "kms_key_arn": key})
    assert "alarm_topic_encryption.kms_key_arn must not be alias/aws/sns" in error


def test_alarm_topic_without_sse_by_explicit_choice(plan_guards: Plan) -> None:
    plan = plan_guards(alarm_topic_encryption={"create_kms_key": False})
    assert plan.values["module.alarms[0].aws_sns_topic.alarms[0]"].get("kms_master_key_id") is None
    assert plan.of_type("aws_kms_key") == {}


# --- request body size -------------------------------------------------------------------


def test_default_body_fits_the_lambda_event(defaults: PlanSummary) -> None:
    max_body = int(_env(defaults, "submit")["MAX_BODY_BYTES"])
    # REST and HTTP API application/json: JSON escaping at most doubles an ASCII body
    assert max_body * JSON_ESCAPING_FACTOR + EVENT_OVERHEAD_BYTES <= LAMBDA_PAYLOAD_BYTES
    # HTTP API application/x-ndjson: base64 (4/3, padded)
    assert 4 * -(-max_body // 3) + EVENT_OVERHEAD_BYTES <= LAMBDA_PAYLOAD_BYTES


def test_body_limit_above_the_lambda_event_is_refused(plan_guards: Plan) -> None:
    limit = (LAMBDA_PAYLOAD_BYTES - EVENT_OVERHEAD_BYTES) // JSON_ESCAPING_FACTOR
    error = plan_error(plan_guards, max_body_bytes=limit + 1)
    assert f"max_body_bytes must be between 1024 and {limit}" in error
    assert "POST /jobs/uploads" in error


# --- logs ---------------------------------------------------------------------------------


def test_log_level_reaches_lambda_log_filtering(plan_guards: Plan) -> None:
    plan = plan_guards(log_level="DEBUG")
    for name in FUNCTIONS:
        config = _function(plan, name)["logging_config"][0]
        assert config["application_log_level"] == "DEBUG", name
        assert config["system_log_level"] == "INFO", name
        assert _env(plan, name)["POWERTOOLS_LOG_LEVEL"] == "DEBUG", name


@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_log_level_above_info_is_refused(plan_guards: Plan, level: str) -> None:
    # Lambda files Powertools' EMF lines (no "level") as INFO: above INFO every metric is lost.
    error = plan_error(plan_guards, log_level=level)
    assert "log_level must be DEBUG or INFO" in error
    assert "drop every metric" in error


# --- Redshift statements ------------------------------------------------------------------

REDSHIFT_SINK: dict[str, Any] = {
    "type": "redshift_data",
    "redshift": {
        "table": "jobs_out",
        "database": "dev",
        "workgroup_name": "analytics",
        "workgroup_arn": "arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/"
        + "0f8a9c1e-1111-4222-8333-444455556666",
    },
}


def test_redshift_statements_end_before_the_worker(plan_guards: Plan) -> None:
    plan = plan_guards(sink=REDSHIFT_SINK)
    env = _env(plan, "worker")
    timeout = _function(plan, "worker")["timeout"]
    assert int(env["REDSHIFT_TIMEOUT_SECONDS"]) == timeout - 30
    actions = policy_actions(plan.values["module.worker.aws_iam_role_policy.this"]["policy"])
    assert "redshift-data:CancelStatement" in actions


def test_redshift_statement_outliving_the_worker_is_refused(plan_guards: Plan) -> None:
    redshift = {**REDSHIFT_SINK["redshift"], "statement_timeout_seconds": 115}
    error = plan_error(plan_guards, sink={"type": "redshift_data", "redshift": redshift})
    assert "sink.redshift.statement_timeout_seconds (115) must end at least 10 s" in error
    assert "before worker.timeout (120)" in error


# --- queues and presigned URLs ------------------------------------------------------------


def test_queue_retention_must_stay_below_the_dlq(plan_guards: Plan, defaults: PlanSummary) -> None:
    queue = defaults.values["aws_sqs_queue.this"]["message_retention_seconds"]
    dlq = defaults.values["aws_sqs_queue.dlq"]["message_retention_seconds"]
    assert dlq > queue
    error = plan_error(plan_guards, queue_message_retention_seconds=1209600)
    assert "queue_message_retention_seconds must be between 60 and 1036800 (12 days)" in error


@pytest.mark.parametrize("variable", ["upload_url_ttl_seconds", "errors_url_ttl_seconds"])
def test_presigned_url_ttl_is_capped_by_the_session(plan_guards: Plan, variable: str) -> None:
    error = plan_error(plan_guards, **{variable: 43200})
    assert f"{variable} must be between 60 and 3600" in error
    assert "temporary session credentials" in error


def test_errors_url_ttl_reaches_the_status_function_and_the_worker(defaults: PlanSummary) -> None:
    # the status function signs links.errors; the worker signs the one events and callbacks carry
    settings = contract().settings
    assert _env(defaults, "status")["ERRORS_URL_TTL_SECONDS"] == str(
        settings["errors_url_ttl_seconds"].default
    )
    assert _env(defaults, "worker")["ERRORS_URL_TTL_SECONDS"] == str(
        settings["errors_url_ttl_seconds"].default
    )
    assert _env(defaults, "submit")["UPLOAD_URL_TTL_SECONDS"] == str(
        settings["upload_url_ttl_seconds"].default
    )


# --- API Gateway's own errors ---------------------------------------------------------------


def test_gateway_errors_are_problem_json(defaults: PlanSummary) -> None:
    responses = defaults.of_type("aws_api_gateway_gateway_response")
    by_type = {r["response_type"]: r for r in responses.values()}
    for required in (
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "MISSING_AUTHENTICATION_TOKEN",
        "ACCESS_DENIED",
        "UNAUTHORIZED",
        "THROTTLED",
        "REQUEST_TOO_LARGE",
        "INTEGRATION_FAILURE",
        "INTEGRATION_TIMEOUT",
    ):
        assert required in by_type, required
    for kind, response in by_type.items():
        assert response["response_parameters"] == {
            "gatewayresponse.header.Content-Type": "'application/problem+json'"
        }, kind
        # API Gateway substitutes $context.error.messageString with a quoted JSON string
        rendered = response["response_templates"]["application/json"].replace(
            "$context.error.messageString", json.dumps("Missing Authentication Token")
        )
        body = json.loads(rendered)
        assert set(body) == {"type", "title", "status", "detail"}, kind
        assert body["status"] == int(response["status_code"]), kind
        assert body["type"].startswith("https://async-jobs.dev/problems/"), kind
    assert by_type["THROTTLED"]["status_code"] == "429"
    assert by_type["REQUEST_TOO_LARGE"]["status_code"] == "413"
    assert by_type["MISSING_AUTHENTICATION_TOKEN"]["status_code"] == "403"
