"""The local stack's fresh-account profile: what AWS refuses in a new account, moto refuses too."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from async_jobs_local.apigw import ApiGateway
from async_jobs_local.apigw.gateway import LAMBDA_MAX_PAYLOAD_BYTES
from async_jobs_local.apigw.request import Request
from async_jobs_local.moto_patches import (
    ACCOUNT_CONCURRENCY,
    account_concurrency_quota,
    stage_logging_needs_account_role,
)

REGION = "us-east-1"
SETUP = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "x.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(), stage_logging_needs_account_role(), account_concurrency_quota():
        yield


def rest_stage(apigw: Any) -> str:
    api_id = apigw.create_rest_api(name="jobs")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    deployment = apigw.create_deployment(restApiId=api_id)["id"]
    apigw.create_stage(restApiId=api_id, stageName="prod", deploymentId=deployment)
    return str(api_id)


LOGGING_ON = [
    [{"op": "replace", "path": "/*/*/logging/loglevel", "value": "ERROR"}],
    [
        {
            "op": "replace",
            "path": "/accessLogSettings/destinationArn",
            "value": "arn:aws:logs:us-east-1:1:log-group:x",
        }
    ],
]


@pytest.mark.parametrize("operations", LOGGING_ON, ids=["execution-logging", "access-logging"])
def test_rest_stage_logging_needs_the_account_cloudwatch_role(
    aws: None, operations: list[dict[str, str]]
) -> None:
    apigw = boto3.client("apigateway", region_name=REGION, **SETUP)
    api_id = rest_stage(apigw)
    with pytest.raises(ClientError, match="CloudWatch Logs role ARN must be set in account settings"):
        apigw.update_stage(restApiId=api_id, stageName="prod", patchOperations=operations)

    # once the account's role is set (aws_api_gateway_account), the same update goes through
    role = boto3.client("iam", region_name=REGION, **SETUP).create_role(
        RoleName="apigw-logs", AssumeRolePolicyDocument=TRUST
    )["Role"]["Arn"]
    apigw.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}])
    apigw.update_stage(restApiId=api_id, stageName="prod", patchOperations=operations)


def test_logging_off_needs_no_role(aws: None) -> None:
    apigw = boto3.client("apigateway", region_name=REGION, **SETUP)
    api_id = rest_stage(apigw)
    off = [{"op": "replace", "path": "/*/*/logging/loglevel", "value": "OFF"}]
    apigw.update_stage(restApiId=api_id, stageName="prod", patchOperations=off)


def function(lam: Any, iam: Any, name: str) -> None:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )


def test_reserved_concurrency_is_refused_in_a_fresh_account(aws: None) -> None:
    lam = boto3.client("lambda", region_name=REGION, **SETUP)
    function(lam, boto3.client("iam", region_name=REGION, **SETUP), "worker")
    assert (ACCOUNT_CONCURRENCY.concurrent_executions, ACCOUNT_CONCURRENCY.minimum_unreserved) == (10, 10)
    with pytest.raises(ClientError, match=r"below its minimum value of \[10\]") as refused:
        lam.put_function_concurrency(FunctionName="worker", ReservedConcurrentExecutions=1)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_reserved_concurrency_counts_every_function_against_a_raised_quota(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ACCOUNT_CONCURRENCY, "concurrent_executions", 1000)
    monkeypatch.setattr(ACCOUNT_CONCURRENCY, "minimum_unreserved", 100)
    lam, iam = (
        boto3.client("lambda", region_name=REGION, **SETUP),
        boto3.client("iam", region_name=REGION, **SETUP),
    )
    function(lam, iam, "submit")
    function(lam, iam, "worker")
    lam.put_function_concurrency(FunctionName="submit", ReservedConcurrentExecutions=500)
    lam.put_function_concurrency(FunctionName="worker", ReservedConcurrentExecutions=400)
    lam.put_function_concurrency(
        FunctionName="worker", ReservedConcurrentExecutions=400
    )  # its own not counted twice
    with pytest.raises(ClientError, match=r"minimum value of \[100\]"):
        lam.put_function_concurrency(FunctionName="worker", ReservedConcurrentExecutions=401)


def test_iam_role_names_are_global_across_regions(aws: None) -> None:
    # the module names its roles per region because IAM has one namespace per account
    boto3.client("iam", region_name="us-east-1", **SETUP).create_role(
        RoleName="jobs-worker", AssumeRolePolicyDocument=TRUST
    )
    with pytest.raises(ClientError) as taken:
        boto3.client("iam", region_name="eu-west-1", **SETUP).create_role(
            RoleName="jobs-worker", AssumeRolePolicyDocument=TRUST
        )
    assert taken.value.response["Error"]["Code"] == "EntityAlreadyExists"


@pytest.mark.parametrize("api_type", ["rest", "http"])
def test_a_proxy_event_larger_than_lambda_takes_is_413_and_never_invoked(api_type: str) -> None:
    invoked: list[str] = []
    outputs = {"api_type": api_type, "api_routes": {"POST /jobs": "submit"}, "api_stage_name": "prod"}
    gateway = ApiGateway(
        outputs, lambda name, event: invoked.append(name) or {"statusCode": 202, "body": "{}"}
    )
    path = "/prod/jobs" if api_type == "rest" else "/jobs"

    def post(body: bytes) -> int:
        request = Request(
            method="POST", target=path, headers=(("Content-Type", "application/json"),), body=body
        )
        return gateway.handle(request).status

    # escaping doubles a body of quotes inside the JSON event: half the limit no longer fits
    assert post(b'"' * (LAMBDA_MAX_PAYLOAD_BYTES // 2)) == 413
    assert invoked == []
    assert post(b'"' * 1000) == 202
    assert invoked == ["submit"]


COMPLETE_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "complete" / "main.tf"


def test_the_complete_example_needs_a_quota_of_220(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lambda keeps 100 concurrent executions unreserved: the example's reservations (120) need
    # a regional quota of at least 220 (the figure docs/real-account.md gives)
    example = COMPLETE_EXAMPLE.read_text()
    reservations = [int(n) for n in re.findall(r"reserved_concurrent_executions\s*=\s*(\d+)", example)]
    assert sum(reservations) == 120
    lam, iam = (
        boto3.client("lambda", region_name=REGION, **SETUP),
        boto3.client("iam", region_name=REGION, **SETUP),
    )
    for index, _ in enumerate(reservations):
        function(lam, iam, f"fn{index}")
    monkeypatch.setattr(ACCOUNT_CONCURRENCY, "minimum_unreserved", 100)
    monkeypatch.setattr(ACCOUNT_CONCURRENCY, "concurrent_executions", 219)
    with pytest.raises(ClientError, match=r"minimum value of \[100\]"):
        for index, reserved in enumerate(reservations):
            lam.put_function_concurrency(FunctionName=f"fn{index}", ReservedConcurrentExecutions=reserved)
    monkeypatch.setattr(ACCOUNT_CONCURRENCY, "concurrent_executions", 220)
    for index, reserved in enumerate(reservations):
        lam.put_function_concurrency(FunctionName=f"fn{index}", ReservedConcurrentExecutions=reserved)


def test_a_final_snapshot_name_that_exists_refuses_the_delete(aws: None) -> None:
    # RDS refuses a final snapshot whose name is taken, and keeps the instance: a constant
    # final_snapshot_identifier fails every destroy after the first
    rds = boto3.client("rds", region_name=REGION, **SETUP)
    for name in ("first", "second"):
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            Engine="postgres",
            DBInstanceClass="db.t4g.micro",
            AllocatedStorage=20,
            MasterUsername="admin_user",
            MasterUserPassword="secret-password",
        )
    rds.delete_db_instance(DBInstanceIdentifier="first", FinalDBSnapshotIdentifier="jobs-final")
    with pytest.raises(ClientError) as refused:
        rds.delete_db_instance(DBInstanceIdentifier="second", FinalDBSnapshotIdentifier="jobs-final")
    assert refused.value.response["Error"]["Code"] == "DBSnapshotAlreadyExists"
    assert rds.describe_db_instances(DBInstanceIdentifier="second")["DBInstances"]


def test_an_s3_object_takes_at_most_ten_tags(aws: None) -> None:
    # the provider's default tags count: the module's record schema object must fit them
    s3 = boto3.client("s3", region_name=REGION, **SETUP)
    s3.create_bucket(Bucket="state-bucket")
    ten = "&".join(f"k{i}=v" for i in range(10))
    s3.put_object(Bucket="state-bucket", Key="config/a.json", Body=b"{}", Tagging=ten)
    with pytest.raises(ClientError, match="Object tags cannot be greater than 10"):
        s3.put_object(Bucket="state-bucket", Key="config/b.json", Body=b"{}", Tagging=ten + "&k10=v")


def test_clearing_the_account_cloudwatch_role_refuses_stage_logging_again(aws: None) -> None:
    # what aws_api_gateway_account.reset_on_delete sends on destroy: the setting names no role
    apigw = boto3.client("apigateway", region_name=REGION, **SETUP)
    api_id = rest_stage(apigw)
    role = boto3.client("iam", region_name=REGION, **SETUP).create_role(
        RoleName="apigw-logs", AssumeRolePolicyDocument=TRUST
    )["Role"]["Arn"]
    apigw.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}])
    apigw.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn"}])
    assert not apigw.get_account().get("cloudwatchRoleArn")
    with pytest.raises(ClientError, match="CloudWatch Logs role ARN must be set in account settings"):
        apigw.update_stage(restApiId=api_id, stageName="prod", patchOperations=LOGGING_ON[0])
