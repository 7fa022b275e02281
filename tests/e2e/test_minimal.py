"""examples/minimal applied under a fresh account's rules: its defaults must need nothing an account lacks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from async_jobs_local import LocalDeployment
from async_jobs_local.moto_patches import AccountConcurrency

from .conftest import start_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalDeployment]:
    # a fresh account: 10 concurrent executions, all of which must stay unreserved; no API
    # Gateway CloudWatch role (the moto patches refuse stage logging without it)
    yield from start_stack("minimal", account_concurrency=AccountConcurrency())


def test_the_defaults_apply_in_a_fresh_account(stack: LocalDeployment) -> None:
    assert stack.outputs["api_routes"]
    lam = stack.client("lambda")
    for name in sorted(set(stack.outputs["api_routes"].values())):
        assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert stack.client("apigateway").get_account().get("cloudwatchRoleArn") is None


def test_second_plan_has_no_changes(stack: LocalDeployment) -> None:
    assert stack.plan_has_changes() is False
