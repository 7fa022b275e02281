"""moto's IAM: managed policies, identity-policy evaluation as IAM does it, and enforcement on/off.

moto checks a request's signature and its caller's identity policies only when asked to
(``INITIAL_NO_AUTH_ACTION_COUNT``). ``IamEnforcement`` switches that on after ``terraform
apply`` and off around Terraform's own runs. Where moto's evaluation differs from IAM in a way
the deployed policies hit, ``identity_policy_evaluation()`` patches it; each difference is
named on the code that fixes it.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import IAMPolicy, IAMRequestBase, PermissionResult

from ._patch import MotoPatch, Target
from .conditions import BASE_CONTEXT, statement_applies

log = logging.getLogger("async_jobs_local.iam")

# Why: AWS authorizes a batch call as its single-message action (there is no
# sqs:SendMessageBatch permission); moto checks the API operation's own name, so a role granted
# sqs:SendMessage is denied SendMessageBatch.
ACTION_ALIASES = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}

# S3 request parameters that are IAM condition keys (s3:prefix scopes ListBucket, for one).
_S3_CONDITION_PARAMETERS = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys"}


def _matches(patterns: Any, value: str, *, ignore_case: bool) -> bool:
    values = patterns if isinstance(patterns, list) else [patterns]
    if ignore_case:
        return any(fnmatch.fnmatchcase(value.lower(), str(p).lower()) for p in values)
    return any(fnmatch.fnmatchcase(value, str(p)) for p in values)


def statement_result(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, str]
) -> PermissionResult:
    """One identity-policy statement's verdict on (action, resource) in ``context``."""
    if "Action" in statement and not _matches(statement["Action"], action, ignore_case=True):
        return PermissionResult.NEUTRAL
    if "NotAction" in statement and _matches(statement["NotAction"], action, ignore_case=True):
        return PermissionResult.NEUTRAL
    # moto derives the resource ARN for S3, SQS, IAM and STS requests only; for other services
    # it passes "*", and then only the action can be checked (documented in the README).
    if resource != "*":
        if "Resource" in statement and not _matches(statement["Resource"], resource, ignore_case=False):
            return PermissionResult.NEUTRAL
        if "NotResource" in statement and _matches(statement["NotResource"], resource, ignore_case=False):
            return PermissionResult.NEUTRAL
    # Why: moto turns an Allow statement whose condition it cannot match into an explicit DENY
    # (and knows no S3 condition keys). In IAM a statement whose conditions are not met simply
    # does not apply.
    if not statement_applies(statement, context):
        return PermissionResult.NEUTRAL
    return PermissionResult.PERMITTED if statement.get("Effect") == "Allow" else PermissionResult.DENIED


def policy_result(
    document: dict[str, Any], action: str, resource: str, context: dict[str, str]
) -> PermissionResult:
    statements = document.get("Statement") or []
    permitted = False
    for statement in statements if isinstance(statements, list) else [statements]:
        result = statement_result(statement, action, resource, context)
        if result == PermissionResult.DENIED:
            return result
        permitted = permitted or result == PermissionResult.PERMITTED
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def request_context(request: Any) -> dict[str, str]:
    """The condition keys of one request to moto: transport, and S3's request parameters."""
    context = dict(BASE_CONTEXT)
    if request._service == "s3":
        query = parse_qs(urlsplit(request._path).query, keep_blank_values=True)
        for parameter, key in _S3_CONDITION_PARAMETERS.items():
            if parameter in query:
                context[key] = query[parameter][0]
    return context


@dataclass(frozen=True)
class Denial:
    principal: str  # arn:aws:sts::<account>:assumed-role/<role>/<session> or a user ARN
    action: str
    resource: str

    def __str__(self) -> str:
        return f"AccessDenied: {self.principal} is not authorized to perform {self.action} on {self.resource}"


DENIALS: deque[Denial] = deque(maxlen=10_000)


def _record_denial(principal: str, action: str, resource: str) -> None:
    # What CloudTrail would show: who was denied what. The deployment writes it to logs/iam.log.
    denial = Denial(principal, action, resource)
    DENIALS.append(denial)
    log.warning("%s", denial)


def _check_action_permitted_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    del original

    def check_action_permitted(self: Any, resource: str) -> None:
        action = ACTION_ALIASES.get(self._action, self._action)
        if action == "sts:GetCallerIdentity":  # always allowed, even under an explicit deny
            return
        context = request_context(self)
        permitted = False
        for policy in self._access_key.collect_policies():
            result = policy_result(IAMPolicy(policy)._policy_json, action, resource, context)
            if result == PermissionResult.DENIED:
                _record_denial(self._access_key.arn, action, resource)
                self._raise_access_denied()
            permitted = permitted or result == PermissionResult.PERMITTED
        if self._is_assuming_role_operation(resource):
            permitted = permitted and self._check_role_trust_relationship(resource)
        if not permitted:
            _record_denial(self._access_key.arn, action, resource)
            self._raise_access_denied()

    return check_action_permitted


def _aws_request_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: moto recomputes the SigV4 signature over ``body or data``; for a REST-JSON GET (Lambda,
    # API Gateway) the body is empty and ``data`` holds the request headers, so the payload hash
    # differs from the client's and every correctly signed request fails SignatureDoesNotMatch.
    # A request without a body (GET, HEAD, DELETE) signs an empty payload.
    @functools.wraps(original)
    def _create_aws_request(self: Any) -> Any:
        if self._body or self._method not in ("GET", "HEAD", "DELETE"):
            return original(self)
        data, self._data = self._data, b""
        try:
            return original(self)
        finally:
            self._data = data

    return _create_aws_request


def _presigned_init_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: moto reads the signer from the Authorization header only; a presigned URL (the upload
    # route's PUT) carries it in the query string, and moto fails with a 500 (KeyError). As on
    # AWS, a presigned request acts as its signer: its policies decide. The query-string
    # signature itself is not recomputed (documented in the README).
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        headers = kwargs["headers"]
        query = {name.lower(): values[0] for name, values in parse_qs(urlsplit(kwargs["path"]).query).items()}
        # SigV4 query auth carries a credential scope; SigV2 (boto3's default for S3) the key id only
        credential = query.get("x-amz-credential") or (
            f"{query['awsaccesskeyid']}/19700101/us-east-1/s3/aws4_request"
            if "awsaccesskeyid" in query
            else None
        )
        self._presigned = "Authorization" not in headers and credential is not None
        if self._presigned:
            headers = dict(headers)
            headers["Authorization"] = (
                f"AWS4-HMAC-SHA256 Credential={credential}, "
                f"SignedHeaders={query.get('x-amz-signedheaders', 'host')}, "
                f"Signature={query.get('x-amz-signature') or query.get('signature', '')}"
            )
            if "x-amz-security-token" in query:
                headers["X-Amz-Security-Token"] = query["x-amz-security-token"]
            kwargs["headers"] = headers
        original(self, *args, **kwargs)

    return __init__


def _check_signature_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def check_signature(self: Any) -> None:
        if not getattr(self, "_presigned", False):
            original(self)

    return check_signature


def _targets() -> list[Target]:
    return [
        (IAMRequestBase, "check_action_permitted", _check_action_permitted_factory),
        (IAMRequestBase, "_create_aws_request", _aws_request_factory),
        (IAMRequestBase, "__init__", _presigned_init_factory),
        (IAMRequestBase, "check_signature", _check_signature_factory),
    ]


_EVALUATION = MotoPatch("iam-identity-policy-evaluation", _targets)


def identity_policy_evaluation() -> MotoPatch:
    """Identity policies evaluated as IAM does: conditions, batch actions, S3 condition keys."""
    return _EVALUATION.start()


class IamEnforcement:
    """moto's signature and IAM policy checks, on or off for the whole (in-process) moto server.

    Off by default, as moto is: Terraform applies and destroys with fake credentials, the way a
    deployment pipeline would with an all-powerful role. On, every request must be signed by a
    key moto knows (an IAM user's, or an assumed role's session) and be allowed by its policies.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._saved: tuple[float, int] | None = None

    @property
    def active(self) -> bool:
        return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT

    def on(self) -> None:
        with self._lock:
            if self._saved is None:
                self._saved = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
            settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
            ActionAuthenticatorMixin.request_count = 0

    def off(self) -> None:
        with self._lock:
            if self._saved is not None:
                settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = self._saved
                self._saved = None


def load_aws_managed_policies() -> None:
    """AWS managed IAM policies (e.g. AmazonAPIGatewayPushToCloudWatchLogs) exist in every account.

    moto loads them when an account's IAM backend is created, if asked to; a backend created
    earlier in this process (by another moto server, say) is re-created so that it has them.
    """
    from moto.iam.models import iam_backends  # noqa: PLC0415  (moto imports are heavy)

    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    for account_backends in list(iam_backends.values()):
        for backend in list(account_backends.values()):
            if not backend.aws_managed_policies:
                backend.reset()


__all__ = [
    "ACTION_ALIASES",
    "DENIALS",
    "Denial",
    "IamEnforcement",
    "identity_policy_evaluation",
    "load_aws_managed_policies",
    "policy_result",
    "statement_result",
]
