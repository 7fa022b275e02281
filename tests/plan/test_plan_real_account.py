"""What a real account refuses, denies or loses, checked in the plan (fixtures/guards).

Each test names the AWS rule it keeps: S3's naming rules, IAM's evaluation of a condition, S3's
10-tag limit, Secrets Manager's partial ARNs and keys, the API Gateway account setting, the
statements each role needs and nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .plan_support import PlanSummary, plan_error

Plan = Callable[..., PlanSummary]
ACCOUNT = "123456789012"
SECRETS = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"
HOOKS = {"allowed_hosts": ["hooks.example.com"]}


def _statements(plan: PlanSummary, function: str) -> dict[str, dict[str, Any]]:
    policy = json.loads(plan.values[f"module.{function}.aws_iam_role_policy.this"]["policy"])
    return {s.get("Sid", ""): s for s in policy["Statement"]}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def defaults(plan_guards: Plan) -> PlanSummary:
    return plan_guards()


# --- names S3 refuses in the derived bucket name ------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("jobs--eu", 'must not contain "--"'),
        ("jobs-", "ends with a letter or digit"),
        ("xn-jobs-", "ends with a letter or digit"),
        ("xn--jobs", 'must not contain "--"'),
        ("sthree-jobs", "must not start with xn--, sthree- or amzn-s3-demo-"),
        ("amzn-s3-demo-jobs", "must not start with xn--, sthree- or amzn-s3-demo-"),
    ],
)
def test_names_s3_refuses_are_refused_at_plan(plan_guards: Plan, name: str, message: str) -> None:
    assert message in plan_error(plan_guards, name=name)


# --- IAM: what each role is granted --------------------------------------------------------


def test_list_bucket_is_unconditioned_so_missing_keys_answer_404(defaults: PlanSummary) -> None:
    for function in ("submit", "status", "worker"):
        statement = _statements(defaults, function)["MissingKeysAnswer404"]
        assert statement["Action"] == "s3:ListBucket" and "Condition" not in statement, function


def test_the_worker_may_release_a_notification_claim(defaults: PlanSummary) -> None:
    statement = _statements(defaults, "worker")["ReleaseNotificationClaims"]
    assert statement["Action"] == "s3:DeleteObject"
    assert statement["Resource"].endswith(":::guards-123456789012-us-east-1/jobs/*/notifications/*")


def test_no_grant_goes_unused(defaults: PlanSummary) -> None:
    worker = json.dumps(_statements(defaults, "worker"))
    assert "sqs:ChangeMessageVisibility" not in worker
    submit_index = [
        s
        for s in _statements(defaults, "submit").values()
        if any("/index/" in r for r in _listed(s["Resource"]))
    ]
    assert [sorted(_listed(s["Action"])) for s in submit_index] == [["s3:DeleteObject", "s3:PutObject"]]


WORKGROUP_ARN = (
    f"arn:aws:redshift-serverless:us-east-1:{ACCOUNT}:workgroup/0f8a9c1e-1111-4222-8333-444455556666"
)


def test_redshift_data_grants_name_the_workgroup_and_own_statements_only(plan_guards: Plan) -> None:
    sink = {
        "type": "redshift_data",
        "redshift": {
            "table": "out",
            "database": "dev",
            "workgroup_name": "analytics",
            "workgroup_arn": WORKGROUP_ARN,
        },
    }
    statements = _statements(plan_guards(sink=sink), "worker")
    assert statements["RunStatements"]["Action"] == "redshift-data:BatchExecuteStatement"
    assert statements["RunStatements"]["Resource"] == WORKGROUP_ARN
    assert statements["ServerlessCredentials"]["Resource"] == WORKGROUP_ARN
    own = statements["OwnStatements"]
    assert sorted(own["Action"]) == ["redshift-data:CancelStatement", "redshift-data:DescribeStatement"]
    assert own["Condition"] == {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}


# --- secrets --------------------------------------------------------------------------------


def test_the_signing_key_rotates_through_an_input_and_is_recoverable(plan_guards: Plan) -> None:
    plan = plan_guards(callbacks={**HOOKS, "secret_version": 3})
    assert plan.values["aws_secretsmanager_secret_version.callbacks[0]"]["secret_string_wo_version"] == 3
    assert plan.values["aws_secretsmanager_secret.callbacks[0]"]["recovery_window_in_days"] == 7


def test_a_partial_secret_arn_matches_the_full_one_and_its_key_may_decrypt(plan_guards: Plan) -> None:
    partial = SECRETS + "hooks"
    statements = _statements(plan_guards(callbacks={**HOOKS, "secret_arn": partial}), "worker")
    assert sorted(_listed(statements["ReadCallbackSecret"]["Resource"])) == [partial, partial + "-??????"]
    decrypt = statements["DecryptGivenSecrets"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"
    }
    assert sorted(_listed(decrypt["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"])) == [
        partial,
        partial + "-??????",
    ]
    full = SECRETS + "hooks-AbCdEf"
    statements = _statements(plan_guards(callbacks={**HOOKS, "secret_arn": full}), "worker")
    assert statements["ReadCallbackSecret"]["Resource"] == full


# --- tags, queues, API Gateway account --------------------------------------------------------

ELEVEN = {f"k{i}": "v" for i in range(11)}


def test_the_record_schema_object_stays_within_s3s_ten_tags(plan_guards: Plan) -> None:
    plan = plan_guards(record_schema="{}", tags=ELEVEN, default_tags={"team": "jobs"})
    schema = plan.values["aws_s3_object.record_schema[0]"]
    assert len(schema["tags_all"]) <= 10
    error = plan_error(plan_guards, record_schema="{}", default_tags=ELEVEN)
    assert "S3 objects take at most 10" in error


def test_the_dead_letter_queue_is_tls_only(defaults: PlanSummary) -> None:
    policy = json.loads(defaults.values["aws_sqs_queue_policy.dlq"]["policy"])
    (statement,) = policy["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", "sqs:*")
    assert statement["Resource"].endswith(":guards-dlq")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_account_cloudwatch_role_setting_is_reset_on_destroy(plan_guards: Plan) -> None:
    plan = plan_guards(api_gateway_cloudwatch_role="create")
    assert plan.values["module.rest_api[0].aws_api_gateway_account.this[0]"]["reset_on_delete"] is True


OLD_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"


def test_a_previous_kms_key_stays_readable_after_the_key_changes(plan_guards: Plan) -> None:
    plan = plan_guards(previous_kms_key_arns=[OLD_KEY])
    for function in ("submit", "status", "worker"):
        statement = _statements(plan, function)["DecryptWithPreviousKeys"]
        assert (statement["Action"], statement["Resource"]) == ("kms:Decrypt", OLD_KEY), function


def test_log_groups_can_outlive_a_rename(plan_guards: Plan, defaults: PlanSummary) -> None:
    kept = plan_guards(keep_log_groups_on_destroy="true")
    for plan, expected in ((defaults, False), (kept, True)):
        groups = plan.of_type("aws_cloudwatch_log_group")
        assert groups and all(group["skip_destroy"] is expected for group in groups.values()), groups
