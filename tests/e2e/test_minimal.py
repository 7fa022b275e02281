"""examples/minimal applied under a fresh account's rules: its defaults must need nothing an account
lacks, and the async-jobs CLI drives it with nothing but its `terraform output` values."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from moto.server import ThreadedMotoServer

from async_jobs_local import LocalDeployment
from async_jobs_local.moto_patches import AccountConcurrency

from .cli_run import run_cli
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


def test_the_cli_drives_the_deployment_from_its_terraform_outputs(
    stack: LocalDeployment, tmp_path: Path
) -> None:
    # GIVEN what `terraform output -raw api_url` prints: the stage URL of the deployed API
    api_url = stack.outputs["api_url"]
    found = re.fullmatch(r"https://(\w+)\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(/\w+)", api_url)
    assert found, api_url
    api_id, region, stage_path = found.groups()
    assert api_id in {api["id"] for api in stack.client("apigateway").get_rest_apis()["items"]}
    # the local gateway answers for that API where DNS would send the name: only the origin changes
    url = stack.url + urlsplit(api_url).path
    assert stage_path == "/v1"
    access_key, secret_key = stack.admin_credentials()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "ASYNC_JOBS_"))}
    env |= {
        "ASYNC_JOBS_URL": url,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_DEFAULT_REGION": region,
    }
    records = tmp_path / "records.ndjson"
    records.write_text(
        "".join(json.dumps({"id": i, "email": f"u{i}@example.com"}) + "\n" for i in range(500))
    )

    # WHEN the CLI submits the file and waits, signing with SigV4 (the module's default AWS_IAM)
    submitted = run_cli("submit", str(records), "--wait", "--interval", "0.5", env=env, timeout=300)

    # THEN the job succeeded with every record, and the CLI finds it again by id and in the list
    assert submitted.code == 0, submitted.err
    job = json.loads(submitted.out)
    assert job["status"] == "succeeded"
    assert job["total_records"] == job["succeeded_records"] == 500
    status = run_cli("status", job["job_id"], env=env)
    assert status.code == 0, status.err
    assert json.loads(status.out)["job_id"] == job["job_id"]
    listed = run_cli("list", env=env)
    assert listed.code == 0, listed.err
    assert job["job_id"] in listed.out
