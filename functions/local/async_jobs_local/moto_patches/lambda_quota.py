"""moto's Lambda, made to keep a fresh account's concurrency quota.

AWS keeps a minimum of an account's concurrency unreserved in each region and refuses
``PutFunctionConcurrency`` that would leave less (``InvalidParameterValueException``). A new
account's quota is small (10 concurrent executions, all of which must stay unreserved), so
any reserved concurrency in a module default breaks its first apply there. moto enforces no
quota unless told to; ``AccountConcurrency`` is the profile the local runtime applies, the
fresh account's values by default, configurable for an account with a raised quota
(``ASYNC_JOBS_LOCAL_ACCOUNT_CONCURRENCY`` / ``ASYNC_JOBS_LOCAL_MIN_UNRESERVED_CONCURRENCY``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend

from ._patch import MotoPatch, Target

FRESH_ACCOUNT_CONCURRENCY = 10
FRESH_ACCOUNT_MIN_UNRESERVED = 10


@dataclass
class AccountConcurrency:
    """An account's regional concurrency quota and the part of it that must stay unreserved."""

    concurrent_executions: int = FRESH_ACCOUNT_CONCURRENCY
    minimum_unreserved: int = FRESH_ACCOUNT_MIN_UNRESERVED

    @classmethod
    def from_environment(cls) -> AccountConcurrency:
        return cls(
            int(os.environ.get("ASYNC_JOBS_LOCAL_ACCOUNT_CONCURRENCY", FRESH_ACCOUNT_CONCURRENCY)),
            int(os.environ.get("ASYNC_JOBS_LOCAL_MIN_UNRESERVED_CONCURRENCY", FRESH_ACCOUNT_MIN_UNRESERVED)),
        )

    def refusal(self, reserved_elsewhere: int, requested: int) -> str | None:
        """Lambda's message if reserving ``requested`` leaves too little unreserved, else None."""
        if self.concurrent_executions - reserved_elsewhere - requested >= self.minimum_unreserved:
            return None
        return (
            "Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{self.minimum_unreserved}]."
        )


PROFILE = AccountConcurrency.from_environment()


def _put_concurrency_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def put_function_concurrency(self: Any, function_name: str, reserved_concurrency: str) -> Any:
        target = self.get_function(function_name)
        reserved_elsewhere = sum(
            int(fn.reserved_concurrency)
            for fn in self.list_functions()
            if fn.reserved_concurrency and fn.function_name != target.function_name
        )
        message = PROFILE.refusal(reserved_elsewhere, int(reserved_concurrency))
        if message:
            raise InvalidParameterValueException(message)
        return original(self, function_name, reserved_concurrency)

    return put_function_concurrency


def _targets() -> list[Target]:
    return [(LambdaBackend, "put_function_concurrency", _put_concurrency_factory)]


_QUOTA = MotoPatch("lambda-account-concurrency", _targets)


def account_concurrency_quota() -> MotoPatch:
    """PutFunctionConcurrency refused as Lambda refuses it under ``PROFILE``."""
    return _QUOTA.start()
