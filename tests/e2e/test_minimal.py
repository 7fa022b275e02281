"""examples/minimal applied under a fresh account's rules: its defaults must need nothing an account lacks."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from async_jobs_local import LocalDeployment
from async_jobs_local.moto_patches import AccountConcurrency

from .conftest import start_stack

pytestmark = pytest.mark.slow

LEFTOVER_BUCKET = "left-by-an-earlier-module"


def leave_a_bucket_in_this_process() -> None:
    """What an earlier module of this worker process may leave in moto's process-global backends."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket=LEFTOVER_BUCKET)
    server.stop()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalDeployment]:
    # a fresh account: 10 concurrent executions, all of which must stay unreserved; no API
    # Gateway CloudWatch role (the moto patches refuse stage logging without it)
    leave_a_bucket_in_this_process()
    yield from start_stack("minimal", account_concurrency=AccountConcurrency())


def test_the_account_starts_empty_whatever_ran_before_in_this_process(stack: LocalDeployment) -> None:
    assert LEFTOVER_BUCKET not in stack.inventory()["buckets"]


def test_the_defaults_apply_in_a_fresh_account(stack: LocalDeployment) -> None:
    assert stack.outputs["api_routes"]
    lam = stack.client("lambda")
    for name in sorted(set(stack.outputs["api_routes"].values())):
        assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert stack.client("apigateway").get_account().get("cloudwatchRoleArn") is None


def test_second_plan_has_no_changes(stack: LocalDeployment) -> None:
    assert stack.plan_has_changes() is False
