"""moto's API Gateway, made to refuse REST stage logging in an account without a CloudWatch role.

A fresh AWS account (or a region never set up) has no API Gateway account-level CloudWatch
Logs role. AWS then refuses a REST stage update that turns on execution logging (method
settings ``logging/loglevel`` INFO or ERROR) or access logging (``accessLogSettings``) with
``CloudWatch Logs role ARN must be set in account settings to enable logging``; moto accepts
both, so a module default that needs the role would pass here and fail a customer's apply.

Clearing the setting (``UpdateAccount`` replacing ``/cloudwatchRoleArn`` with no value, which
the provider sends when ``aws_api_gateway_account.reset_on_delete`` destroys it) leaves the
account without a role, as on AWS; moto fails it with a 500 that the SDK retries forever.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.apigateway.exceptions import BadRequestException
from moto.apigateway.models import APIGatewayBackend

from ._patch import MotoPatch, Target

NO_ROLE_MESSAGE = "CloudWatch Logs role ARN must be set in account settings to enable logging"


def enables_logging(operation: dict[str, Any]) -> bool:
    """True if one UpdateStage patch operation turns REST execution or access logging on."""
    path = str(operation.get("path") or "")
    if operation.get("op") == "remove":
        return False
    if path.lower().endswith("/logging/loglevel"):
        return str(operation.get("value") or "OFF").upper() != "OFF"
    return path.startswith("/accessLogSettings/") and bool(operation.get("value"))


def _update_stage_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_stage(self: Any, function_id: str, stage_name: str, patch_operations: Any) -> Any:
        if not self.account.cloudwatch_role_arn and any(enables_logging(op) for op in patch_operations or []):
            raise BadRequestException(NO_ROLE_MESSAGE)
        return original(self, function_id, stage_name, patch_operations)

    return update_stage


def _update_account_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_account(self: Any, patch_operations: list[dict[str, Any]]) -> Any:
        cleared = [
            {**op, "value": None} if op.get("path") == "/cloudwatchRoleArn" and "value" not in op else op
            for op in patch_operations
        ]
        return original(self, cleared)

    return update_account


def _targets() -> list[Target]:
    return [
        (APIGatewayBackend, "update_stage", _update_stage_factory),
        (APIGatewayBackend, "update_account", _update_account_factory),
    ]


_STAGE_LOGGING = MotoPatch("apigateway-stage-logging-needs-account-role", _targets)


def stage_logging_needs_account_role() -> MotoPatch:
    """UpdateStage refuses logging on a REST stage until the account's CloudWatch role is set."""
    return _STAGE_LOGGING.start()
