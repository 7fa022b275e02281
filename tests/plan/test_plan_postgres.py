"""The postgres sink's inputs: IAM (rds-db:connect or the secret), VPC, validations, and
examples/postgres (an RDS instance and the module) planned as a real root module."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tftest

from .conftest import EXAMPLES
from .plan_support import PlanSummary, plan_error, policy_actions, summarize
from .test_plan_examples import WORKER_ACTIONS

Plan = Callable[..., PlanSummary]
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pg-AbCdEf"
VPC = {"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]}
ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def postgres(**settings: Any) -> dict[str, Any]:
    base = {"host": "db.example.internal", "database": "app", "user": "loader", "table": "job_records"}
    return {"type": "postgres", "postgres": {**base, **settings}}


def statements(policy: str) -> list[dict[str, Any]]:
    return list(json.loads(policy)["Statement"])


def test_iam_auth_may_connect_as_its_user_only(plan_guards: Plan) -> None:
    plan = plan_guards(sink=postgres(db_resource_id="db-ABCDEFGHIJ"), vpc_config=VPC)
    policy = plan.values["module.worker.aws_iam_role_policy.this"]["policy"]
    assert policy_actions(policy) == WORKER_ACTIONS | ENI_ACTIONS | {"rds-db:connect"}
    (connect,) = [s for s in statements(policy) if s.get("Sid") == "ConnectAsDatabaseUser"]
    assert connect["Resource"] == "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJ/loader"
    env = plan.values["module.worker.aws_lambda_function.this"]["environment"][0]["variables"]
    assert (env["SINK"], env["POSTGRES_AUTH"], env["POSTGRES_SSLMODE"]) == ("postgres", "iam", "require")
    assert "POSTGRES_SECRET_ARN" not in env


def test_secret_auth_reads_that_secret_only(plan_guards: Plan) -> None:
    plan = plan_guards(sink=postgres(auth="secret", secret_arn=SECRET, sslmode="verify-full"))
    policy = plan.values["module.worker.aws_iam_role_policy.this"]["policy"]
    # kms:Decrypt through Secrets Manager, for this secret only: it may be on a key of its own
    assert policy_actions(policy) == WORKER_ACTIONS | {"secretsmanager:GetSecretValue", "kms:Decrypt"}
    (read,) = [s for s in statements(policy) if s.get("Sid") == "ReadPostgresSecret"]
    assert read["Resource"] == SECRET


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ({"type": "postgres"}, "sink.postgres (host, database, user, table, auth) must be set"),
        (postgres(), "sink.postgres.auth = iam needs sink.postgres.db_resource_id"),
        (postgres(db_resource_id="mydb"), "sink.postgres.auth = iam needs sink.postgres.db_resource_id"),
        (postgres(auth="password"), "sink.postgres.auth must be iam"),
        (postgres(auth="secret"), "sink.postgres.secret_arn is needed with auth = secret"),
        (
            postgres(db_resource_id="db-ABC", sslmode="disable"),
            "sink.postgres.sslmode must be require, verify-ca or verify-full",
        ),
        (
            postgres(db_resource_id="db-ABC", table="s.t"),
            "sink.postgres.table is a table name without schema",
        ),
    ],
)
def test_postgres_inputs_are_validated(plan_guards: Plan, sink: dict[str, Any], message: str) -> None:
    assert message in plan_error(plan_guards, sink=sink)


def test_statement_timeout_must_end_before_the_worker(plan_guards: Plan) -> None:
    error = plan_error(
        plan_guards,
        sink=postgres(db_resource_id="db-ABC", statement_timeout_seconds=115),
        worker={"timeout": 120},
    )
    assert (
        "sink.postgres.statement_timeout_seconds (115) must end at least 10 s before worker.timeout (120)"
        in error
    )


def test_postgres_example(terraform: Callable[[Path], tftest.TerraformTest], empty_state: str) -> None:
    tf_vars: dict[str, Any] = {"vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"]}
    plan = summarize(
        terraform(EXAMPLES / "postgres").plan(output=True, tf_vars=tf_vars, state=empty_state)._raw
    )
    database = plan.values["aws_db_instance.this"]
    assert database["iam_database_authentication_enabled"] is True
    assert database["publicly_accessible"] is False and database["storage_encrypted"] is True
    parameters = {p["name"]: p["value"] for p in plan.values["aws_db_parameter_group.this"]["parameter"]}
    assert parameters["rds.force_ssl"] == "1"
    worker = plan.values["module.worker.aws_lambda_function.this"]
    assert worker["vpc_config"][0]["subnet_ids"] == ["subnet-a", "subnet-b"]
    # the environment and the rds-db:connect resource name the instance, known after apply
    assert plan.unknown["module.worker.aws_lambda_function.this"]["environment"]
    mapping = plan.values["aws_lambda_event_source_mapping.worker"]
    assert mapping["scaling_config"][0]["maximum_concurrency"] == 4
    # the worker's rules are rule resources only (inline rules beside them would fight over the group)
    assert not plan.values["aws_security_group.worker"].get("egress")
    https = plan.values["aws_vpc_security_group_egress_rule.worker_to_aws"]
    assert (https["from_port"], https["to_port"], https["cidr_ipv4"]) == (443, 443, "0.0.0.0/0")
    assert database["deletion_protection"] is True
