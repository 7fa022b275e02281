"""moto's SQS, made to apply a queue's policy to the principals that call it, as SQS does.

moto evaluates a caller's identity policies only: a queue policy's explicit ``Deny`` (the work
queue denies ``sqs:SendMessage`` to every principal but the module's roles and S3 for its
bucket) is stored and never applied, so a sender SQS refuses would be accepted here. This
patch runs after the identity-policy evaluation (``iam.py``) and refuses a request a ``Deny``
statement of the queue's policy matches: action, resource, principal and conditions, with
``aws:PrincipalArn`` (the role, not the session, for an assumed role) and
``aws:PrincipalAccount`` in the request context. An ``Allow`` in a queue policy grants other
accounts; the local stack has one account per deployment, so only denies are evaluated.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

from moto.iam.access_control import IAMRequestBase
from moto.sqs.models import sqs_backends

from ._patch import MotoPatch, Target
from .conditions import BASE_CONTEXT, statement_applies
from .iam import ACTION_ALIASES, _record_denial


def principal_arn(access_key: Any) -> str:
    """aws:PrincipalArn of a caller: an assumed role's session is its role."""
    role_name = getattr(access_key, "_owner_role_name", None)
    if role_name:
        try:
            return str(access_key.backend.get_role(role_name).arn)
        except Exception:  # noqa: BLE001 - a role deleted since: its plain ARN
            return f"arn:{access_key.partition}:iam::{access_key.account_id}:role/{role_name}"
    return str(access_key.arn)


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def principal_matches(principal: Any, arn: str, account: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for entry in _listed(principal.get("AWS", [])):
        if entry in ("*", arn, account, f"arn:aws:iam::{account}:root"):
            return True
    return False


def denied_by(policy: str, action: str, resource: str, context: dict[str, str]) -> bool:
    """True when a Deny statement of the queue `policy` applies to this request."""
    document = json.loads(policy)
    statements = document.get("Statement") or []
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Deny":
            continue
        if not principal_matches(
            statement.get("Principal"), context["aws:principalarn"], context["aws:principalaccount"]
        ):
            continue
        actions = _listed(statement.get("Action", []))
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement.get("Resource", "*"))):
            continue
        if statement_applies(statement, context):
            return True
    return False


def queue_policy(resource: str) -> str | None:
    """The policy of the queue `resource` names (arn:aws:sqs:<region>:<account>:<name>)."""
    parts = resource.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    region, account, name = parts[3], parts[4], parts[5]
    try:
        queue = sqs_backends[account][region].queues.get(name)
    except KeyError:
        return None
    return getattr(queue, "policy", None) if queue is not None else None


def _check_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    def check_action_permitted(self: Any, resource: str) -> None:
        original(self, resource)
        action = ACTION_ALIASES.get(self._action, self._action)
        if not action.lower().startswith("sqs:"):
            return
        policy = queue_policy(resource)
        if not policy:
            return
        arn = principal_arn(self._access_key)
        context = {
            **BASE_CONTEXT,
            "aws:principalarn": arn,
            "aws:principalaccount": str(self._access_key.account_id),
        }
        if denied_by(policy, action, resource, context):
            _record_denial(self._access_key.arn, action, resource)
            self._raise_access_denied()

    return check_action_permitted


def _targets() -> list[Target]:
    return [(IAMRequestBase, "check_action_permitted", _check_factory)]


_QUEUE_POLICY = MotoPatch("sqs-queue-policy-denies", _targets)


def queue_policy_denies() -> MotoPatch:
    """A queue policy's explicit Deny refuses the principals it names (after identity policies)."""
    return _QUEUE_POLICY.start()
