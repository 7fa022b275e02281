"""moto with IAM enforced applies a queue policy's Deny to senders, as SQS does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from async_jobs_local.credentials import create_admin
from async_jobs_local.moto_patches import IamEnforcement, identity_policy_evaluation, queue_policy_denies
from async_jobs_local.moto_patches.conditions import condition_met

from .conftest import no_ambient_credentials
from .test_local_iam import REGION, denied, role_clients

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:work"
BUCKET_ARN = "arn:aws:s3:::state"
SENDER = "arn:aws:iam::123456789012:role/sender"
# The shape of the module's work-queue policy (main.tf, DenyOtherSenders): only the named roles,
# and S3 for the state bucket, may send.
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyOtherSenders",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:SendMessage",
            "Resource": QUEUE_ARN,
            "Condition": {
                "ArnNotEquals": {"aws:PrincipalArn": [SENDER], "aws:SourceArn": BUCKET_ARN},
            },
        }
    ],
}
ANY_QUEUE = [{"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:ReceiveMessage"], "Resource": "*"}]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    no_ambient_credentials(monkeypatch, REGION)
    enforcement = IamEnforcement()
    with mock_aws(), identity_policy_evaluation(), queue_policy_denies():
        setup = dict(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        admin = create_admin(boto3.client("iam", **setup))
        sqs = boto3.client("sqs", **setup)
        url = sqs.create_queue(QueueName="work", Attributes={"Policy": json.dumps(POLICY)})["QueueUrl"]
        enforcement.on()
        try:
            yield {"iam": boto3.client("iam", region_name=REGION, **admin), "queue_url": url, "admin": admin}
        finally:
            enforcement.off()


def test_only_the_senders_the_queue_policy_names_may_send(aws: dict[str, Any]) -> None:
    url = aws["queue_url"]
    # GIVEN two roles of the account whose identity policies both allow sending to any queue
    sender = role_clients(aws, "sender", ANY_QUEUE)["sqs"]
    other = role_clients(aws, "other", ANY_QUEUE)["sqs"]
    # THEN the role the queue policy names sends, one message or a batch
    sender.send_message(QueueUrl=url, MessageBody="one")
    sender.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "two"}])
    # AND every other principal of the account is refused, the admin user included
    assert denied(other.send_message, QueueUrl=url, MessageBody="forged")
    assert denied(other.send_message_batch, QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "forged"}])
    admin = boto3.client("sqs", region_name=REGION, **aws["admin"])
    assert denied(admin.send_message, QueueUrl=url, MessageBody="forged")
    # AND the deny is about sending only: the other role still receives what its policy allows
    assert not denied(other.receive_message, QueueUrl=url)


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("ArnNotEquals", True), ("StringNotEquals", True), ("ArnEquals", False), ("StringEqualsIfExists", True)],
)
def test_a_key_the_request_does_not_carry_satisfies_negated_operators_only(
    operator: str, expected: bool
) -> None:
    # IAM: aws:SourceArn is absent from a request an identity signs; ArnNotEquals on it holds
    assert condition_met(operator, "aws:SourceArn", [BUCKET_ARN], {}) is expected
