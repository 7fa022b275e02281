"""Plan-time guards and input variations, on the fixture root module (fixtures/guards)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .plan_support import PlanSummary, plan_error, policy_actions
from .test_plan_examples import STATUS_ACTIONS, SUBMIT_ACTIONS, WORKER_ACTIONS

Plan = Callable[..., PlanSummary]
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0b0e7d5e-0000-4000-8000-000000000000"


def test_runtime_python27_rejected(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, runtime="python2.7")
    assert "runtime must be one of python3.12, python3.13 (or null" in error
    assert "var.runtime" in error


def test_architecture_rejected(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, architecture="sparc")
    assert "architecture must be arm64 or x86_64" in error


def test_name_rejected(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, name="Bad_Name")
    assert "name must match" in error


def test_visibility_timeout_below_worker_timeout(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, worker={"timeout": 60}, queue_visibility_timeout_seconds=120)
    assert (
        "queue_visibility_timeout_seconds (120) must be >= 6 x worker timeout (60) "
        "+ batching window (0) = 360" in error
    )
    assert "lower worker.timeout" in error


def test_visibility_timeout_computed(plan_guards: Plan) -> None:
    plan = plan_guards(
        worker={"timeout": 30}, worker_maximum_batching_window_in_seconds=5, worker_batch_size=20
    )
    assert plan.values["aws_sqs_queue.this"]["visibility_timeout_seconds"] == 6 * 30 + 5


def test_maximum_concurrency_above_reserved(plan_guards: Plan) -> None:
    error = plan_error(
        plan_guards, worker={"reserved_concurrent_executions": 3}, worker_maximum_concurrency=5
    )
    assert "worker_maximum_concurrency (5) must be <= worker.reserved_concurrent_executions (3)" in error


def test_maximum_concurrency_out_of_range(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, worker_maximum_concurrency=1)
    assert "worker_maximum_concurrency must be between 2 and 1000" in error


def test_fifo_batch_size_above_10(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, queue_fifo="true", worker_batch_size=20)
    assert "worker_batch_size (20) must be <= 10 with a FIFO queue" in error


def test_standard_batch_above_10_needs_window(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, worker_batch_size=50)
    assert "needs worker_maximum_batching_window_in_seconds >= 1" in error


def test_missing_zip(plan_guards: Plan, tmp_path: Path) -> None:
    missing = tmp_path / "worker.zip"
    error = plan_error(plan_guards, packages={"worker": {"filename": str(missing)}})
    assert f"{missing} not found: run `make build` (or set packages.worker)" in error


def test_manifest_mismatch(plan_guards: Plan, tmp_path: Path) -> None:
    (tmp_path / "status.zip").write_bytes(Path(__file__).with_name("conftest.py").read_bytes())
    (tmp_path / "manifest.json").write_text(json.dumps({"runtime": "python3.13", "architecture": "arm64"}))
    error = plan_error(
        plan_guards, runtime="python3.12", packages={"status": {"filename": str(tmp_path / "status.zip")}}
    )
    assert "packages.status was built for python3.13/arm64 but runtime = python3.12" in error
    assert "make build RUNTIME=python3.12 ARCH=arm64" in error


def test_s3_package(plan_guards: Plan) -> None:
    plan = plan_guards(packages={"worker": {"s3_bucket": "artifacts", "s3_key": "worker.zip"}})
    worker = plan.values["module.worker.aws_lambda_function.this"]
    assert worker["s3_bucket"] == "artifacts" and worker.get("filename") is None


def test_jwt_needs_http_api(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, authorization="JWT")
    assert 'authorization = JWT needs api_type = "http"' in error


def test_api_key_needs_rest_api(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, api_type="http", authorization="API_KEY")
    assert 'authorization = API_KEY needs api_type = "rest"' in error


def test_http_api_with_jwt(plan_guards: Plan) -> None:
    plan = plan_guards(
        api_type="http",
        authorization="JWT",
        jwt_authorizer={"issuer": "https://issuer.example.com", "audience": ["jobs"]},
    )
    routes = plan.of_type("aws_apigatewayv2_route")
    assert {r["route_key"] for r in routes.values()} == {
        "POST /jobs",
        "POST /jobs/uploads",
        "GET /jobs",
        "GET /jobs/{job_id}",
        "DELETE /jobs/{job_id}",
        "POST /jobs/{job_id}/retry",
    }
    assert all(r["authorization_type"] == "JWT" for r in routes.values())
    integrations = plan.of_type("aws_apigatewayv2_integration")
    assert len(integrations) == 2
    assert all(i["payload_format_version"] == "2.0" for i in integrations.values())
    assert all(i["integration_type"] == "AWS_PROXY" for i in integrations.values())
    stage = plan.values["module.http_api[0].aws_apigatewayv2_stage.this"]
    assert stage["default_route_settings"][0]["throttling_burst_limit"] == 100
    assert stage["access_log_settings"]
    assert plan.values["module.http_api[0].aws_apigatewayv2_authorizer.jwt[0]"]["authorizer_type"] == "JWT"
    alarms = plan.of_type("aws_cloudwatch_metric_alarm")
    assert alarms['module.alarms[0].aws_cloudwatch_metric_alarm.this["api_5xx"]']["metric_name"] == "5xx"
    assert "module.rest_api[0].aws_api_gateway_rest_api.this" not in plan.values


def test_rest_api_key(plan_guards: Plan) -> None:
    plan = plan_guards(authorization="API_KEY")
    methods = plan.of_type("aws_api_gateway_method")
    assert all(m["api_key_required"] and m["authorization"] == "NONE" for m in methods.values())
    usage_plan = plan.values["module.rest_api[0].aws_api_gateway_usage_plan.this[0]"]
    assert usage_plan["throttle_settings"] == [{"burst_limit": 100, "rate_limit": 50}]
    assert "module.rest_api[0].aws_api_gateway_api_key.this[0]" in plan.values
    assert "module.rest_api[0].aws_api_gateway_usage_plan_key.this[0]" in plan.values


def test_fifo_queues_have_no_upload_route(plan_guards: Plan) -> None:
    plan = plan_guards(queue_fifo="true")
    for address in ("aws_sqs_queue.this", "aws_sqs_queue.dlq"):
        queue = plan.values[address]
        assert queue["fifo_queue"] is True and queue["content_based_deduplication"] is False
        assert queue["name"].endswith(".fifo")
    assert "aws_s3_bucket_notification.uploads[0]" not in plan.values
    # S3 cannot notify a FIFO queue: an accepted upload would never start, so no route.
    assert "module.rest_api[0].aws_api_gateway_resource.uploads[0]" not in plan.values
    methods = sorted(plan.of_type("aws_api_gateway_method"))
    assert methods == [
        'module.rest_api[0].aws_api_gateway_method.this["DELETE /jobs/{job_id}"]',
        'module.rest_api[0].aws_api_gateway_method.this["GET /jobs"]',
        'module.rest_api[0].aws_api_gateway_method.this["GET /jobs/{job_id}"]',
        'module.rest_api[0].aws_api_gateway_method.this["POST /jobs"]',
        'module.rest_api[0].aws_api_gateway_method.this["POST /jobs/{job_id}/retry"]',
    ]
    env = plan.values["module.worker.aws_lambda_function.this"]["environment"][0]["variables"]
    assert env["QUEUE_FIFO"] == "true"


def test_kms_key(plan_guards: Plan) -> None:
    plan = plan_guards(kms_key_arn=KMS_KEY)
    sse = plan.values["aws_s3_bucket_server_side_encryption_configuration.state"]["rule"][0]
    assert sse["bucket_key_enabled"] is True
    assert sse["apply_server_side_encryption_by_default"] == [
        {"sse_algorithm": "aws:kms", "kms_master_key_id": KMS_KEY}
    ]
    for address in ("aws_sqs_queue.this", "aws_sqs_queue.dlq"):
        assert plan.values[address]["kms_master_key_id"] == KMS_KEY
    for address, group in plan.of_type("aws_cloudwatch_log_group").items():
        assert group["kms_key_id"] == KMS_KEY, address
    kms = {"kms:Decrypt", "kms:GenerateDataKey"}
    expected = {
        "submit": SUBMIT_ACTIONS | kms,
        "worker": WORKER_ACTIONS | kms,
        "status": STATUS_ACTIONS | {"kms:Decrypt"},
    }
    for name, actions in expected.items():
        assert policy_actions(plan.values[f"module.{name}.aws_iam_role_policy.this"]["policy"]) == actions
        assert plan.values[f"module.{name}.aws_lambda_function.this"]["kms_key_arn"] == KMS_KEY


def test_redshift_data_sink(plan_guards: Plan) -> None:
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:redshift-AbCdEf"
    sink: dict[str, Any] = {
        "type": "redshift_data",
        "redshift": {
            "table": "jobs_out",
            "database": "dev",
            "cluster_identifier": "analytics",
            "secret_arn": secret,
        },
    }
    plan = plan_guards(sink=sink)
    worker = plan.values["module.worker.aws_iam_role_policy.this"]["policy"]
    assert policy_actions(worker) == WORKER_ACTIONS | {
        "redshift-data:BatchExecuteStatement",
        "redshift-data:DescribeStatement",
        "redshift-data:CancelStatement",
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",  # through Secrets Manager, for this secret only
    }
    env = plan.values["module.worker.aws_lambda_function.this"]["environment"][0]["variables"]
    assert env["SINK"] == "redshift_data"
    assert env["REDSHIFT_CLUSTER_IDENTIFIER"] == "analytics" and env["REDSHIFT_SECRET_ARN"] == secret
    # the other functions never get sink permissions
    submit = plan.values["module.submit.aws_iam_role_policy.this"]["policy"]
    assert policy_actions(submit) == SUBMIT_ACTIONS


def test_redshift_sink_in_vpc(plan_guards: Plan) -> None:
    sink = {
        "type": "redshift",
        "redshift": {
            "table": "jobs_out",
            "database": "dev",
            "host": "cluster.example.internal",
            "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rs-AbCdEf",
        },
    }
    plan = plan_guards(sink=sink, vpc_config={"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]})
    worker = plan.values["module.worker.aws_iam_role_policy.this"]["policy"]
    assert policy_actions(worker) == WORKER_ACTIONS | {
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
    assert plan.values["module.worker.aws_lambda_function.this"]["vpc_config"][0]["subnet_ids"] == [
        "subnet-1"
    ]


def test_record_schema_must_be_json(plan_guards: Plan) -> None:
    error = plan_error(plan_guards, record_schema="{not json")
    assert "record_schema must be a JSON document" in error
