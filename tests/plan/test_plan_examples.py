"""Plan every example and check what matters for safety and for the local runtime."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from .plan_support import PlanSummary, assert_subset, plan_error, policy_actions

LOGS_XRAY = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
SUBMIT_ACTIONS = LOGS_XRAY | {
    "s3:ListBucket",
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "sqs:SendMessage",
}
STATUS_ACTIONS = LOGS_XRAY | {"s3:ListBucket", "s3:GetObject"}
WORKER_ACTIONS = LOGS_XRAY | {
    "s3:ListBucket",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",  # a notification claim released when its publish fails
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:SendMessage",
    # completion events are on by default (the default bus)
    "events:PutEvents",
}

ROUTE_FUNCTIONS = ["submit", "submit", "status", "status", "submit", "submit"]
ROUTES = [
    "POST /jobs",
    "POST /jobs/uploads",
    "GET /jobs",
    "GET /jobs/{job_id}",
    "DELETE /jobs/{job_id}",
    "POST /jobs/{job_id}/retry",
]

# Resources every REST deployment plans (counts exact).
REST_COUNTS = {
    "aws_s3_bucket": 1,
    "aws_s3_bucket_ownership_controls": 1,
    "aws_s3_bucket_public_access_block": 1,
    "aws_s3_bucket_versioning": 1,
    "aws_s3_bucket_server_side_encryption_configuration": 1,
    "aws_s3_bucket_lifecycle_configuration": 1,
    "aws_s3_bucket_policy": 1,
    "aws_s3_bucket_notification": 1,
    "aws_sqs_queue": 2,
    "aws_sqs_queue_policy": 2,  # the work queue's and the DLQ's (TLS only)
    "aws_lambda_function": 3,
    "aws_iam_role": 3,
    "aws_iam_role_policy": 3,
    "aws_lambda_event_source_mapping": 2,  # the work queue's and the DLQ's
    "aws_lambda_permission": 6,
    "aws_api_gateway_rest_api": 1,
    "aws_api_gateway_resource": 4,
    "aws_api_gateway_method": 6,
    "aws_api_gateway_integration": 6,
    "aws_api_gateway_request_validator": 1,
    "aws_api_gateway_deployment": 1,
    "aws_api_gateway_stage": 1,
    "aws_api_gateway_method_settings": 1,
    "aws_api_gateway_gateway_response": 21,
    "aws_cloudwatch_metric_alarm": 9,
    "aws_cloudwatch_dashboard": 1,
}


def check_storage(plan: PlanSummary, sse: str | None, expiry_days: int, noncurrent_days: int) -> None:
    """sse None: a KMS key created in the same configuration (algorithm known after apply)."""
    sse_address = "aws_s3_bucket_server_side_encryption_configuration.state"
    default = plan.values[sse_address]["rule"][0]["apply_server_side_encryption_by_default"][0]
    if sse is None:
        unknown = plan.unknown[sse_address]["rule"][0]["apply_server_side_encryption_by_default"][0]
        assert unknown["sse_algorithm"] is True and unknown["kms_master_key_id"] is True
    else:
        assert default["sse_algorithm"] == sse
    assert_subset(
        {
            "aws_s3_bucket_public_access_block.state": {
                "block_public_acls": True,
                "block_public_policy": True,
                "ignore_public_acls": True,
                "restrict_public_buckets": True,
            },
            "aws_s3_bucket_ownership_controls.state": {"rule": [{"object_ownership": "BucketOwnerEnforced"}]},
            "aws_s3_bucket_versioning.state": {"versioning_configuration": [{"status": "Enabled"}]},
            "aws_s3_bucket.state": {"force_destroy": plan.values["aws_s3_bucket.state"]["force_destroy"]},
        },
        plan.values,
    )
    rules = {r["id"]: r for r in plan.values["aws_s3_bucket_lifecycle_configuration.state"]["rule"]}
    assert set(rules) == {
        "expire-jobs",
        "expire-job-index",
        "expire-idempotency-keys",
        "expire-noncurrent-versions",
        "abort-incomplete-multipart-uploads",
    }
    assert all(r["status"] == "Enabled" for r in rules.values())
    assert rules["expire-jobs"]["filter"][0]["prefix"] == "jobs/"
    assert rules["expire-jobs"]["expiration"][0]["days"] == expiry_days
    assert rules["expire-job-index"]["filter"][0]["prefix"] == "index/"
    assert rules["expire-job-index"]["expiration"][0]["days"] == expiry_days
    assert rules["expire-idempotency-keys"]["filter"][0]["prefix"] == "idempotency/"
    assert rules["expire-noncurrent-versions"]["noncurrent_version_expiration"][0]["noncurrent_days"] == (
        noncurrent_days
    )
    assert (
        rules["abort-incomplete-multipart-uploads"]["abort_incomplete_multipart_upload"][0][
            "days_after_initiation"
        ]
        == 1
    )

    policy = json.loads(plan.values["aws_s3_bucket_policy.state"]["policy"])
    tls = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert tls and tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls[0]["Principal"] == "*" and tls[0]["Action"] == "s3:*"


def check_queues(plan: PlanSummary, visibility: int, max_receive: int, redrive_allow: bool = True) -> None:
    queue = plan.values["aws_sqs_queue.this"]
    dlq = plan.values["aws_sqs_queue.dlq"]
    assert queue["visibility_timeout_seconds"] == visibility
    redrive = json.loads(queue["redrive_policy"])
    assert redrive["maxReceiveCount"] == max_receive
    assert redrive["deadLetterTargetArn"].endswith(":" + dlq["name"])
    for address in ("aws_sqs_queue.this", "aws_sqs_queue.dlq"):
        encrypted = plan.values[address].get("sqs_managed_sse_enabled") is True
        assert encrypted or plan.unknown[address].get("kms_master_key_id") is True, address
    if redrive_allow:
        allow = plan.values["aws_sqs_queue_redrive_allow_policy.dlq[0]"]
        assert json.loads(allow["redrive_allow_policy"]) == {
            "redrivePermission": "byQueue",
            "sourceQueueArns": [redrive["deadLetterTargetArn"].rsplit(":", 1)[0] + ":" + queue["name"]],
        }
    else:
        assert "aws_sqs_queue_redrive_allow_policy.dlq[0]" not in plan.values


def check_worker(
    plan: PlanSummary, timeout: int, reserved: int | None, max_concurrency: int, enabled: bool
) -> None:
    esm = plan.values["aws_lambda_event_source_mapping.worker"]
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]
    assert esm["scaling_config"] == [{"maximum_concurrency": max_concurrency}]
    assert esm["enabled"] is enabled
    worker = plan.values["module.worker.aws_lambda_function.this"]
    assert worker["timeout"] == timeout
    # -1 is the provider's "unreserved"
    assert worker["reserved_concurrent_executions"] == (-1 if reserved is None else reserved)
    assert reserved is None or max_concurrency <= reserved


def check_functions(
    plan: PlanSummary, runtime: str = "python3.13", arch: str = "arm64", system_log_level: str = "INFO"
) -> None:
    for name in ("submit", "worker", "status"):
        fn = plan.values[f"module.{name}.aws_lambda_function.this"]
        assert_subset(
            {
                "handler": f"{name}.handler",
                "runtime": runtime,
                "architectures": [arch],
                "tracing_config": [{"mode": "Active"}],
                "logging_config": [{"log_format": "JSON", "system_log_level": system_log_level}],
            },
            fn,
            name,
        )
        env = fn["environment"][0]["variables"]
        # each function gets only what its parser reads (test_plan_environment.py checks it all)
        common = {
            "STATE_BUCKET",
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_METRICS_NAMESPACE",
            "POWERTOOLS_LOG_LEVEL",
        }
        common |= set() if name == "status" else {"QUEUE_URL", "QUEUE_FIFO"}
        common |= set() if name == "worker" else {"API_TYPE", "AUTHORIZATION", "RETRY_AFTER_SECONDS"}
        assert common <= set(env), f"{name}: {common - set(env)} missing"
        if name != "status":
            assert env["QUEUE_URL"].endswith("/" + plan.values["aws_sqs_queue.this"]["name"])
        assert env["STATE_BUCKET"] == plan.values["aws_s3_bucket.state"]["bucket"]
        assert plan.values[f"module.{name}.aws_cloudwatch_log_group.this"]["retention_in_days"] > 0


def check_iam(plan: PlanSummary, extra: dict[str, set[str]] | None = None) -> None:
    extra = extra or {}
    expected = {"submit": SUBMIT_ACTIONS, "worker": WORKER_ACTIONS, "status": STATUS_ACTIONS}
    for name, actions in expected.items():
        policy = plan.values[f"module.{name}.aws_iam_role_policy.this"]["policy"]
        assert policy_actions(policy) == actions | extra.get(name, set()), name
        assert not any("*" in a for a in policy_actions(policy)), name
        # s3:ListBucket on the bucket, unconditioned: S3's implicit check for a missing key
        # carries no s3:prefix, so a prefix condition would turn every 404 into a 403
        listing = [s for s in json.loads(policy)["Statement"] if s["Action"] == "s3:ListBucket"]
        assert len(listing) == 1, name
        assert "Condition" not in listing[0], name


def check_alarms(plan: PlanSummary, topic_known: bool) -> None:
    alarms = plan.of_type("aws_cloudwatch_metric_alarm")
    keys = {a.split('"')[1] for a in alarms}
    assert keys == {
        "dlq_messages",
        "dlq_oldest_message_age",
        "queue_oldest_message_age",
        "worker_errors",
        "worker_throttles",
        "worker_duration",
        "api_5xx",
        "api_latency_p95",
        "jobs_failed",
    }
    for address, alarm in alarms.items():
        if topic_known:
            assert alarm["alarm_actions"], address
        else:
            assert alarm.get("alarm_actions") or plan.unknown[address].get("alarm_actions"), address


@pytest.fixture(scope="module")
def minimal(plan_example: Callable[[str], PlanSummary]) -> PlanSummary:
    return plan_example("minimal")


@pytest.fixture(scope="module")
def complete(plan_example: Callable[[str], PlanSummary]) -> PlanSummary:
    return plan_example("complete")


@pytest.fixture(scope="module")
def local(plan_example: Callable[[str], PlanSummary]) -> PlanSummary:
    return plan_example("local")


# --- minimal: the defaults -------------------------------------------------------------


def test_minimal_inventory(minimal: PlanSummary) -> None:
    expected = {
        **REST_COUNTS,
        "aws_sqs_queue_redrive_allow_policy": 1,
        # the functions' only: REST logs need the account's CloudWatch role (opt-in)
        "aws_cloudwatch_log_group": 3,
        "aws_sns_topic": 1,
        "aws_kms_key": 1,
    }
    assert minimal.counts == expected


def test_minimal_storage(minimal: PlanSummary) -> None:
    check_storage(minimal, sse="AES256", expiry_days=30, noncurrent_days=7)
    assert minimal.values["aws_s3_bucket.state"]["force_destroy"] is False
    notification = minimal.values["aws_s3_bucket_notification.uploads[0]"]["queue"][0]
    assert_subset({"filter_prefix": "jobs/", "filter_suffix": "upload.ndjson"}, notification)


def test_minimal_queues_and_worker(minimal: PlanSummary) -> None:
    # the default batching window (1 s on a standard queue) is part of the visibility timeout
    check_queues(minimal, visibility=6 * 120 + 1, max_receive=5)
    esm = minimal.values["aws_lambda_event_source_mapping.worker"]
    assert esm["batch_size"] == 10 and esm["maximum_batching_window_in_seconds"] == 1
    check_worker(minimal, timeout=120, reserved=None, max_concurrency=5, enabled=True)
    queue_policy = json.loads(minimal.values["aws_sqs_queue_policy.this"]["policy"])
    s3 = [s for s in queue_policy["Statement"] if s.get("Principal") == {"Service": "s3.amazonaws.com"}]
    assert s3 and s3[0]["Action"] == "sqs:SendMessage"


def test_the_work_queue_admits_only_the_module_s_senders(minimal: PlanSummary) -> None:
    # GIVEN the work queue's policy and the roles the module creates
    policy = json.loads(minimal.values["aws_sqs_queue_policy.this"]["policy"])
    [deny] = [s for s in policy["Statement"] if s.get("Sid") == "DenyOtherSenders"]
    bucket = minimal.values["aws_s3_bucket.state"]["bucket"]
    account = bucket.split("-")[-4]  # <name>-<account>-<region>
    roles = {fn: minimal.values[f"module.{fn}.aws_iam_role.this"] for fn in ("submit", "worker", "status")}
    assert all(role.get("path") in (None, "/") for role in roles.values())  # ARNs below assume /
    senders = [f"arn:aws:iam::{account}:role/{roles[fn]['name']}" for fn in ("submit", "worker")]
    # THEN every principal but the submit and worker roles, and S3 for the state bucket, is refused
    # sqs:SendMessage (the status function only reads; an identity policy cannot undo a deny)
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Resource"] == json.loads(json.dumps(policy))["Statement"][0]["Resource"]
    assert deny["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": senders, "aws:SourceArn": f"arn:aws:s3:::{bucket}"}
    }
    # AND S3's own statement names the bucket and the account
    [s3] = [s for s in policy["Statement"] if s.get("Sid") == "AllowStateBucketNotifications"]
    assert s3["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket}"
    assert s3["Condition"]["StringEquals"]["aws:SourceAccount"] == account


def test_minimal_functions_and_iam(minimal: PlanSummary) -> None:
    check_functions(minimal)
    check_iam(minimal)
    assert minimal.values["module.submit.aws_lambda_function.this"]["reserved_concurrent_executions"] == -1


def test_minimal_api(minimal: PlanSummary) -> None:
    methods = minimal.of_type("aws_api_gateway_method")
    assert {a.split('"')[1] for a in methods} == set(ROUTES)
    assert all(m["authorization"] == "AWS_IAM" for m in methods.values())
    integrations = minimal.of_type("aws_api_gateway_integration")
    assert all(i["type"] == "AWS_PROXY" for i in integrations.values())
    stage = minimal.values["module.rest_api[0].aws_api_gateway_stage.this"]
    assert stage["stage_name"] == "v1" and stage["xray_tracing_enabled"] is True
    # REST logs need the account's CloudWatch role, which a fresh account lacks: off by default
    assert stage["access_log_settings"] == []
    settings = minimal.values["module.rest_api[0].aws_api_gateway_method_settings.this"]["settings"][0]
    assert_subset(
        {
            "throttling_burst_limit": 100,
            "throttling_rate_limit": 50,
            "metrics_enabled": True,
            "logging_level": "OFF",
        },
        settings,
    )
    assert minimal.of_type("aws_api_gateway_account") == {}
    # redeploys on route changes (triggers)
    assert minimal.values["module.rest_api[0].aws_api_gateway_deployment.this"]
    permissions = minimal.of_type("aws_lambda_permission")
    assert {a: (p["principal"], p["function_name"]) for a, p in permissions.items()} == {
        f'aws_lambda_permission.api["{route}"]': ("apigateway.amazonaws.com", f"async-jobs-{fn}")
        for route, fn in zip(ROUTES, ROUTE_FUNCTIONS, strict=True)
    }
    # scoped to the API's execution ARN (known after apply)
    assert all(minimal.unknown[a]["source_arn"] is True for a in permissions)


def test_minimal_alarms(minimal: PlanSummary) -> None:
    check_alarms(minimal, topic_known=False)
    # the module's own key (known after apply), never alias/aws/sns
    topic = "module.alarms[0].aws_sns_topic.alarms[0]"
    assert minimal.values[topic].get("kms_master_key_id") is None
    assert minimal.unknown[topic]["kms_master_key_id"] is True
    key = minimal.values["module.alarms[0].aws_kms_key.topic[0]"]
    assert key["enable_key_rotation"] is True


# --- complete: every option -----------------------------------------------------------


def test_complete_inventory(complete: PlanSummary) -> None:
    expected = {
        **REST_COUNTS,
        "aws_sqs_queue_redrive_allow_policy": 1,
        "aws_cloudwatch_log_group": 5,
        "aws_s3_object": 1,
        "aws_api_gateway_authorizer": 1,
        "aws_api_gateway_account": 1,
        "aws_iam_role": 4,
        "aws_iam_role_policy_attachment": 1,
        # the example's own resources
        "aws_kms_key": 1,
        "aws_kms_alias": 1,
        "aws_sns_topic": 1,
        "aws_cognito_user_pool": 1,
    }
    assert complete.counts == expected


def test_complete_storage_encrypted_with_kms(complete: PlanSummary) -> None:
    check_storage(complete, sse=None, expiry_days=14, noncurrent_days=3)
    for queue in ("aws_sqs_queue.this", "aws_sqs_queue.dlq"):
        assert complete.unknown[queue]["kms_master_key_id"] is True
    for group in [a for a in complete.of_type("aws_cloudwatch_log_group")]:
        assert complete.unknown[group].get("kms_key_id") is True, group
    schema = complete.values["aws_s3_object.record_schema[0]"]
    assert schema["key"] == "config/record-schema.json" and json.loads(schema["content"])["type"] == "object"


def test_complete_queues_and_worker(complete: PlanSummary) -> None:
    check_queues(complete, visibility=400, max_receive=3)
    check_worker(complete, timeout=60, reserved=20, max_concurrency=10, enabled=True)
    esm = complete.values["aws_lambda_event_source_mapping.worker"]
    assert esm["batch_size"] == 5 and esm["maximum_batching_window_in_seconds"] == 1


def test_complete_functions(complete: PlanSummary) -> None:
    check_functions(complete, system_log_level="WARN")
    env = complete.values["module.worker.aws_lambda_function.this"]["environment"][0]["variables"]
    assert_subset(
        {
            "CHUNK_SIZE": "1000",
            "TOLERATED_FAILURE_PERCENT": "1",
            "MAX_RECEIVE_COUNT": "3",
            "SINK": "s3",
            "RECORD_SCHEMA_KEY": "config/record-schema.json",
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
            "POWERTOOLS_METRICS_NAMESPACE": "AsyncJobsComplete",
        },
        env,
    )
    submit_env = complete.values["module.submit.aws_lambda_function.this"]["environment"][0]["variables"]
    assert_subset(
        {
            "MAX_RECORDS_PER_JOB": "1000000",
            "UPLOAD_URL_TTL_SECONDS": "3600",
            "EXAMPLE": "submit",
            "AUTHORIZATION": "COGNITO",
            "API_TYPE": "rest",
        },
        submit_env,
    )


def test_complete_api_cognito(complete: PlanSummary) -> None:
    methods = complete.of_type("aws_api_gateway_method")
    assert all(m["authorization"] == "COGNITO_USER_POOLS" for m in methods.values())
    authorizer = complete.values["module.rest_api[0].aws_api_gateway_authorizer.cognito[0]"]
    assert authorizer["type"] == "COGNITO_USER_POOLS"
    assert complete.values["module.rest_api[0].aws_api_gateway_stage.this"]["stage_name"] == "prod"
    settings = complete.values["module.rest_api[0].aws_api_gateway_method_settings.this"]["settings"][0]
    assert_subset(
        {"logging_level": "INFO", "throttling_burst_limit": 200, "throttling_rate_limit": 100}, settings
    )


def test_complete_alarms_to_given_topic(complete: PlanSummary) -> None:
    check_alarms(complete, topic_known=False)
    assert "module.alarms[0].aws_sns_topic.alarms[0]" not in complete.values
    assert all(a["period"] == 60 for a in complete.of_type("aws_cloudwatch_metric_alarm").values())


# --- local: the moto stack ----------------------------------------------------------


def test_local_inventory(local: PlanSummary) -> None:
    expected = {**REST_COUNTS, "aws_cloudwatch_log_group": 3, "aws_sns_topic": 1, "aws_kms_key": 1}
    assert local.counts == expected


def test_local_settings(local: PlanSummary) -> None:
    check_storage(local, sse="AES256", expiry_days=30, noncurrent_days=7)
    check_queues(local, visibility=60, max_receive=5, redrive_allow=False)
    check_worker(local, timeout=10, reserved=4, max_concurrency=4, enabled=False)
    check_functions(local)
    check_iam(local)
    methods = local.of_type("aws_api_gateway_method")
    assert all(m["authorization"] == "NONE" and not m["api_key_required"] for m in methods.values())
    env = local.values["module.worker.aws_lambda_function.this"]["environment"][0]["variables"]
    assert_subset({"CHUNK_SIZE": "1000"}, env)
    submit_env = local.values["module.submit.aws_lambda_function.this"]["environment"][0]["variables"]
    assert_subset({"AUTHORIZATION": "NONE", "API_TYPE": "rest"}, submit_env)


def test_local_outputs(local: PlanSummary) -> None:
    outputs = local.outputs
    assert outputs["api_type"] == "rest"
    assert outputs["api_authorization"] == "NONE"
    assert outputs["api_stage_name"] == "v1"
    assert outputs["api_routes"] == {
        "POST /jobs": "async-jobs-local-submit",
        "POST /jobs/uploads": "async-jobs-local-submit",
        "GET /jobs": "async-jobs-local-status",
        "GET /jobs/{job_id}": "async-jobs-local-status",
        "DELETE /jobs/{job_id}": "async-jobs-local-submit",
        "POST /jobs/{job_id}/retry": "async-jobs-local-submit",
    }
    assert outputs["worker_event_source_mapping"] == {
        "batch_size": 1,
        "maximum_batching_window_in_seconds": 0,
        "maximum_concurrency": 4,
        "function_response_types": ["ReportBatchItemFailures"],
        "enabled": False,
    }
    assert outputs["worker_dead_letter_event_source_mapping"] == {
        "batch_size": 5,
        "maximum_batching_window_in_seconds": 0,
        "maximum_concurrency": 2,
        "function_response_types": ["ReportBatchItemFailures"],
        "enabled": False,
    }
    assert outputs["queue_name"] == "async-jobs-local-jobs"
    assert outputs["dlq_name"] == "async-jobs-local-dlq"


def test_additional_queue_senders_and_the_upload_bound_are_validated(
    plan_guards: Callable[..., PlanSummary],
) -> None:
    error = plan_error(plan_guards, queue_additional_senders=["operator"], max_upload_bytes=5368709121)
    assert "queue_additional_senders entries must be IAM role or user ARNs" in error
    assert "max_upload_bytes must be a whole number from 1024 to 5368709120" in error
