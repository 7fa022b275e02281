"""moto with IAM enforced, as the local deployment runs it: identity policies evaluated as IAM does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from async_jobs_local.credentials import RoleError, RoleSessions, create_admin
from async_jobs_local.moto_patches import (
    IamEnforcement,
    identity_policy_evaluation,
    missing_keys_need_list_bucket,
)

from .conftest import no_ambient_credentials

REGION = "us-east-1"
TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    no_ambient_credentials(monkeypatch, REGION)
    enforcement = IamEnforcement()
    with mock_aws(), identity_policy_evaluation(), missing_keys_need_list_bucket():
        setup = dict(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        iam = boto3.client("iam", **setup)
        admin = create_admin(iam)
        s3 = boto3.client("s3", **setup)
        s3.create_bucket(Bucket="state")
        sqs = boto3.client("sqs", **setup)
        queue_url = sqs.create_queue(QueueName="work")["QueueUrl"]
        enforcement.on()
        try:
            yield {
                "iam": boto3.client("iam", region_name=REGION, **admin),
                "admin": admin,
                "queue_url": queue_url,
            }
        finally:
            enforcement.off()


def role_clients(aws: dict[str, Any], name: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    iam = aws["iam"]
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    credentials = RoleSessions(iam, REGION).provider(arn, name)()
    session = dict(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=REGION,
    )
    return {"s3": boto3.client("s3", **session), "sqs": boto3.client("sqs", **session)}


def denied(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as exc:
        # moto answers SQS's JSON protocol with an XML error body; the message names the denial
        return "AccessDenied" in str(exc)
    return False


def test_a_role_can_do_what_its_policy_allows_and_nothing_else(aws: dict[str, Any]) -> None:
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:work"
    clients = role_clients(
        aws, "worker", [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}]
    )
    sqs, url = clients["sqs"], aws["queue_url"]
    sqs.send_message(QueueUrl=url, MessageBody="one")
    # sqs:SendMessage covers SendMessageBatch on AWS (there is no separate batch permission)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "two"}])
    assert denied(sqs.receive_message, QueueUrl=url)
    assert denied(clients["s3"].put_object, Bucket="state", Key="jobs/x", Body=b"x")


def test_list_bucket_scoped_by_prefix_condition(aws: dict[str, Any]) -> None:
    # GIVEN ListBucket allowed only for keys under jobs/
    clients = role_clients(
        aws,
        "status",
        [
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::state",
                "Condition": {"StringLike": {"s3:prefix": ["jobs/*"]}},
            }
        ],
    )
    s3 = clients["s3"]
    # THEN a listing inside the prefix passes and one outside is denied (not an explicit deny of all)
    s3.list_objects_v2(Bucket="state", Prefix="jobs/abc/")
    assert denied(s3.list_objects_v2, Bucket="state", Prefix="config/")


READ_JOBS = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::state/jobs/*"}
LIST_BUCKET = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::state"}


def missing_key_status(s3: Any, call: Any) -> int:
    try:
        call(Bucket="state", Key="jobs/none/job.json")
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return 200


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        (None, 403),
        ({**LIST_BUCKET, "Condition": {"StringLike": {"s3:prefix": ["jobs/*"]}}}, 403),
        (LIST_BUCKET, 404),
    ],
    ids=["no-list-bucket", "list-bucket-scoped-by-prefix", "list-bucket"],
)
def test_a_missing_key_answers_404_only_to_a_caller_who_may_list_the_bucket(
    aws: dict[str, Any], listing: dict[str, Any] | None, expected: int
) -> None:
    # GIVEN a role that may read jobs/* and, per case, list the bucket (or list it under jobs/)
    clients = role_clients(aws, "reader", [READ_JOBS] + ([listing] if listing else []))
    s3 = clients["s3"]
    # WHEN it reads a key that does not exist THEN S3 answers 404 only if the implicit ListBucket
    # check (no s3:prefix in its context) passes, 403 AccessDenied otherwise
    assert missing_key_status(s3, s3.get_object) == expected
    assert missing_key_status(s3, s3.head_object) == expected
    # an existing key reads the same either way
    boto3.client("s3", region_name=REGION, **aws["admin"]).put_object(
        Bucket="state", Key="jobs/one/job.json", Body=b"{}"
    )
    assert s3.get_object(Bucket="state", Key="jobs/one/job.json")["Body"].read() == b"{}"


def test_an_unmet_allow_condition_does_not_deny_what_another_statement_allows(aws: dict[str, Any]) -> None:
    clients = role_clients(
        aws,
        "submit",
        [
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::state/*",
                "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}},
            },
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::state/jobs/*"},
        ],
    )
    clients["s3"].put_object(Bucket="state", Key="jobs/1/state.json", Body=b"{}")
    assert denied(clients["s3"].put_object, Bucket="state", Key="other/1", Body=b"{}")


def test_unsigned_or_unknown_callers_are_rejected(aws: dict[str, Any]) -> None:
    stranger = boto3.client("s3", aws_access_key_id="AKIA0000000000000000", aws_secret_access_key="x")
    with pytest.raises(ClientError):
        stranger.list_objects_v2(Bucket="state")


def test_a_role_lambda_cannot_assume_is_refused(aws: dict[str, Any]) -> None:
    trust_ec2 = json.loads(json.dumps(TRUST_LAMBDA).replace("lambda.amazonaws.com", "ec2.amazonaws.com"))
    arn = aws["iam"].create_role(RoleName="ec2", AssumeRolePolicyDocument=json.dumps(trust_ec2))["Role"][
        "Arn"
    ]
    with pytest.raises(RoleError, match="does not trust lambda.amazonaws.com"):
        RoleSessions(aws["iam"], REGION).provider(arn, "fn")


def test_signed_requests_without_a_body_pass_the_signature_check(aws: dict[str, Any]) -> None:
    # REST-JSON GETs (Lambda, API Gateway) carry no body; their signature covers an empty payload
    admin = aws["iam"]
    credentials = admin._request_signer._credentials
    keys = {"aws_access_key_id": credentials.access_key, "aws_secret_access_key": credentials.secret_key}
    assert boto3.client("lambda", region_name=REGION, **keys).list_functions()["Functions"] == []
    assert boto3.client("apigateway", region_name=REGION, **keys).get_rest_apis()["items"] == []


def test_a_presigned_url_acts_as_its_signer(aws: dict[str, Any]) -> None:
    import requests

    # GIVEN a role that may put objects under uploads/ only, and URLs it presigned
    clients = role_clients(
        aws,
        "uploader",
        [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::state/uploads/*"}],
    )
    s3 = clients["s3"]
    allowed = s3.generate_presigned_url("put_object", Params={"Bucket": "state", "Key": "uploads/a.ndjson"})
    refused = s3.generate_presigned_url("put_object", Params={"Bucket": "state", "Key": "jobs/a.ndjson"})
    # WHEN a client PUTs to them THEN the signer's policy decides, as on AWS
    assert requests.put(allowed, data=b'{"id": 1}\n', timeout=10).status_code == 200
    assert requests.put(refused, data=b'{"id": 1}\n', timeout=10).status_code == 403
