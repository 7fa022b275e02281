"""Identities of the local deployment: an administrator for the harness, and each function's role.

On AWS, Lambda assumes a function's execution role and hands the environment temporary
credentials; the SQS event source mapping receives and deletes with them too. Locally the
deployment does the same against moto's STS, as the Lambda service principal (it checks the
role's trust policy lets ``lambda.amazonaws.com`` assume it, as Lambda does at create time).
The harness itself (tests, inventory, the CLI) uses an administrator IAM user created after
``terraform apply``, which passes moto's IAM checks like any signed caller.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from .sandbox import Credentials

ADMIN_USER = "async-jobs-local-admin"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SESSION_SECONDS = 3600  # Lambda's role sessions last hours; an hour is plenty and exercises refresh
REFRESH_MARGIN = 300.0  # a cached session is reused only while it has this much validity left


class RoleError(RuntimeError):
    pass


def _trusts_lambda(document: Any) -> bool:
    policy = json.loads(document) if isinstance(document, str) else document
    statements = policy.get("Statement") or []
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action") or []
        actions = actions if isinstance(actions, list) else [actions]
        services = (statement.get("Principal") or {}).get("Service") or []
        services = services if isinstance(services, list) else [services]
        if (
            statement.get("Effect") == "Allow"
            and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions)
            and "lambda.amazonaws.com" in services
        ):
            return True
    return False


class RoleSessions:
    """Temporary credentials of execution roles, assumed in moto's STS and refreshed before expiry."""

    def __init__(self, iam: Any, region: str, account_id: str = "123456789012") -> None:
        self._iam = iam  # an administrator's IAM client
        self.region = region
        self.account_id = account_id
        self._sessions: dict[str, Credentials] = {}
        self._lock = threading.Lock()
        self.assumed = 0

    def provider(self, role_arn: str, session_name: str) -> Any:
        """A zero-argument callable returning valid credentials of ``role_arn`` (for FunctionSpec)."""
        role_name = role_arn.rsplit("/", 1)[-1]
        document = self._iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
        if not _trusts_lambda(document):
            raise RoleError(
                f"{session_name}: role {role_arn} does not trust lambda.amazonaws.com, "
                "so Lambda cannot assume it"
            )
        return lambda: self.credentials(role_arn, session_name)

    def credentials(self, role_arn: str, session_name: str) -> Credentials:
        with self._lock:
            cached = self._sessions.get(role_arn)
            if cached and cached.expiration - time.time() > REFRESH_MARGIN:
                return cached
            fresh = self._assume(role_arn, session_name)
            self._sessions[role_arn] = fresh
            return fresh

    def _assume(self, role_arn: str, session_name: str) -> Credentials:
        from moto.sts.models import sts_backends  # noqa: PLC0415  (moto imports are heavy)

        backend = sts_backends[self.account_id]["aws"]
        role = backend.assume_role(
            region_name=self.region,
            role_session_name=session_name[:64],
            role_arn=role_arn,
            policy="",
            duration=SESSION_SECONDS,
            external_id="",
        )
        self.assumed += 1
        return Credentials(
            access_key_id=role.access_key_id,
            secret_access_key=role.secret_access_key,
            session_token=role.session_token,
            expiration=role.expiration.timestamp(),
        )


def create_admin(iam: Any) -> dict[str, str]:
    """An IAM user allowed everything, and its access key (call while IAM is not yet enforced)."""
    try:
        iam.create_user(UserName=ADMIN_USER)
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    iam.put_user_policy(
        UserName=ADMIN_USER, PolicyName="administrator", PolicyDocument=json.dumps(ADMIN_POLICY)
    )
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def delete_admin(iam: Any) -> None:
    """Remove the administrator (with IAM enforcement off), so nothing outlives the deployment."""
    try:
        for key in iam.list_access_keys(UserName=ADMIN_USER)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=ADMIN_USER, AccessKeyId=key["AccessKeyId"])
        iam.delete_user_policy(UserName=ADMIN_USER, PolicyName="administrator")
        iam.delete_user(UserName=ADMIN_USER)
    except iam.exceptions.NoSuchEntityException:
        pass
