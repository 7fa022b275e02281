"""Where moto behaves differently from AWS in a way the module or the engine hits: one module per service.

``s3`` (atomic conditional writes, bucket policy conditions, notifications that never fail the
request), ``events`` (accepted events appended to the local event log), ``sqs`` (atomic
receive/delete, the event source mapping played locally, queue attributes as AWS returns them),
``sqs_fair`` (standard queues deliver fairly between message groups, as SQS fair queues do),
``lambda_`` (LoggingConfig kept), ``iam`` (identity policies
evaluated as IAM does, enforcement on/off, AWS managed policies), ``s3_missing_keys`` (a missing
key answers 404 only to a caller who may ListBucket, 403 otherwise), and a fresh account's rules:
``apigateway`` (REST stage logging needs the account's CloudWatch role), ``lambda_quota``
(reserved concurrency leaves the account's minimum unreserved); ``ec2`` (descriptions of rules
that reference a group) and ``rds`` (parameters described with their source). Each patch says why on the
code that makes it. Patches are reversible and reference counted::

    with atomic_conditional_writes():
        ...                        # S3 conditional writes are atomic here
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ._patch import MotoPatch
from .apigateway import stage_logging_needs_account_role
from .ec2 import referenced_group_rule_descriptions
from .events import EVENT_LOG, EventLog, events_logged
from .iam import IamEnforcement, identity_policy_evaluation, load_aws_managed_policies
from .lambda_ import lambda_logging_config
from .lambda_quota import PROFILE as ACCOUNT_CONCURRENCY
from .lambda_quota import AccountConcurrency, account_concurrency_quota
from .rds import user_parameters_have_a_source
from .s3 import S3_WRITE_LOCK, atomic_conditional_writes, bucket_policy_conditions
from .s3_missing_keys import missing_keys_need_list_bucket
from .sqs import atomic_queue_operations, aws_shaped_queue_attributes, sqs_mappings_played_locally
from .sqs_fair import fair_queues, fair_queues_suspended
from .sqs_policy import queue_policy_denies

__all__ = [
    "ACCOUNT_CONCURRENCY",
    "EVENT_LOG",
    "EventLog",
    "events_logged",
    "AccountConcurrency",
    "account_concurrency_quota",
    "stage_logging_needs_account_role",
    "S3_WRITE_LOCK",
    "IamEnforcement",
    "MotoPatch",
    "atomic_conditional_writes",
    "atomic_queue_operations",
    "aws_shaped_queue_attributes",
    "bucket_policy_conditions",
    "fair_queues",
    "fair_queues_suspended",
    "identity_policy_evaluation",
    "lambda_logging_config",
    "missing_keys_need_list_bucket",
    "load_aws_managed_policies",
    "local_patches",
    "queue_policy_denies",
    "referenced_group_rule_descriptions",
    "sqs_mappings_played_locally",
    "user_parameters_have_a_source",
]


@contextmanager
def local_patches() -> Iterator[None]:
    """Every patch the local runtime needs, for the lifetime of the block."""
    with (
        atomic_conditional_writes(),
        atomic_queue_operations(),
        sqs_mappings_played_locally(),
        aws_shaped_queue_attributes(),
        fair_queues(),
        bucket_policy_conditions(),
        lambda_logging_config(),
        identity_policy_evaluation(),
        queue_policy_denies(),  # after the identity policies: it wraps their evaluation
        missing_keys_need_list_bucket(),
        events_logged(),
        referenced_group_rule_descriptions(),
        user_parameters_have_a_source(),
        # a fresh account's rules: no API Gateway CloudWatch role, a small concurrency quota
        stage_logging_needs_account_role(),
        account_concurrency_quota(),
    ):
        yield
