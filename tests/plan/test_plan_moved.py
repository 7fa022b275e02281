"""Deployments made before the REST/HTTP submodules upgrade by moves, never by replacement.

The root module as it was at BASE_COMMIT (API resources in the root's api.tf) is applied to a
throwaway moto server; the current root is then planned against that state. Every API resource
must show up under its new address as moved, with nothing created, replaced or destroyed.

One root holds a deployment of each API type side by side (distinct names), so one apply and one
plan serve both tests: the apply is mostly the provider's waits for S3 and SQS to settle.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from async_jobs_local.terraform import init_lock

from .conftest import ROOT

pytestmark = pytest.mark.slow

# The last commit whose root module held the API resources itself.
BASE_COMMIT = "a0652c42748a06c64e84211aa236abe48918eb7e"

API_TYPES = ("aws_api_gateway_", "aws_apigatewayv2_")

# Features the module gained after BASE_COMMIT: the upgrade creates these (addresses within the
# module call), and nothing else.
ADDED_SINCE_BASE = {
    "aws_lambda_event_source_mapping.worker_dead_letters[0]",
    'aws_lambda_permission.api["POST /jobs/{job_id}/retry"]',
    'aws_lambda_permission.api["GET /jobs"]',
    "aws_sqs_queue_policy.dlq",  # TLS only, as the work queue
}
# ... and in the API, the retry and list routes; a new route redeploys a REST API (a new deployment, the
# stage pointed at it).
API_ADDED = ("aws_api_gateway_resource.retry", '["POST /jobs/{job_id}/retry"]', '["GET /jobs"]')
REDEPLOYED = {
    "aws_api_gateway_deployment.this": ["create", "delete"],
    "aws_api_gateway_stage.this": ["update"],
}

Changes = list[dict[str, Any]]

PROVIDER = """
provider "aws" {{
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""

MODULE = """
module "async_jobs_{api_type}" {{
  source = "{source}"

  name          = "moves-{api_type}"
  api_type      = "{api_type}"
  authorization = "NONE"
  packages = {{
    submit = {{ filename = "{dist}/submit.zip" }}
    worker = {{ filename = "{dist}/worker.zip" }}
    status = {{ filename = "{dist}/status.zip" }}
  }}

  worker_event_source_enabled      = false
  dlq_redrive_allow_policy_enabled = false
  create_alarms                    = false
  force_destroy                    = true
}}
"""
SERVICES = (
    *("apigateway", "apigatewayv2", "cloudwatch", "iam", "kms", "lambda"),
    *("logs", "s3", "sns", "sqs", "sts"),
)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _base_module(target: Path) -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git history (BASE_COMMIT)")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", BASE_COMMIT],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def _root(directory: Path, source: Path, endpoint: str) -> Path:
    """A root module with one deployment of ``source`` per API type."""
    directory.mkdir(parents=True)
    endpoints = "\n".join(f'    {service:<12} = "{endpoint}"' for service in SERVICES)
    modules = [
        MODULE.format(source=source, api_type=api_type, dist=ROOT / "dist") for api_type in ("rest", "http")
    ]
    (directory / "main.tf").write_text(PROVIDER.format(endpoints=endpoints) + "".join(modules))
    return directory


def _terraform(directory: Path, data_dir: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"TF_DATA_DIR": str(data_dir), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    env.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"})
    binary = shutil.which("terraform") or "terraform"
    result = subprocess.run(
        [binary, f"-chdir={directory}", *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"terraform {args[0]}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _changes(directory: Path, data_dir: Path, state: Path, plan: Path) -> Changes:
    _terraform(directory, data_dir, "plan", "-input=false", "-no-color", f"-state={state}", f"-out={plan}")
    shown = json.loads(_terraform(directory, data_dir, "show", "-json", str(plan)))
    return [c for c in shown.get("resource_changes", []) if c["mode"] == "managed"]


def _touched(changes: Changes) -> dict[str, list[str]]:
    return {c["address"]: c["change"]["actions"] for c in changes if c["change"]["actions"] != ["no-op"]}


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Changes:
    """The current root's plan on the state the previous layout applied."""
    tmp_path = tmp_path_factory.mktemp("moves")
    state = tmp_path / "terraform.tfstate"
    old = _root(tmp_path / "old", _base_module(tmp_path / "base"), moto_endpoint)
    old_data, new_data = tmp_path / "old-data", tmp_path / "new-data"
    with init_lock(ROOT):
        _terraform(old, old_data, "init", "-input=false", "-no-color")
    _terraform(old, old_data, "apply", "-input=false", "-no-color", "-auto-approve", f"-state={state}")

    new = _root(tmp_path / "new", ROOT, moto_endpoint)
    with init_lock(ROOT):
        _terraform(new, new_data, "init", "-input=false", "-no-color")
    return _changes(new, new_data, state, tmp_path / "new.tfplan")


@pytest.mark.parametrize(
    ("api_type", "submodule"), [("rest", "module.rest_api[0]"), ("http", "module.http_api[0]")]
)
def test_api_resources_move_into_the_submodule(upgrade: Changes, api_type: str, submodule: str) -> None:
    assert all(
        c["address"].startswith(("module.async_jobs_rest.", "module.async_jobs_http.")) for c in upgrade
    )
    call = f"module.async_jobs_{api_type}."
    after = [c for c in upgrade if c["address"].startswith(call)]

    api = [c for c in after if c["type"].startswith(API_TYPES)]
    assert api, "no API resources in the plan"
    for change in api:
        address, actions = change["address"], change["change"]["actions"]
        assert address.startswith(f"{call}{submodule}."), address
        if address.endswith(API_ADDED):
            assert actions == ["create"], (address, actions)
            continue
        assert change.get("previous_address", "").startswith(f"{call}aws_api"), address
        relative = address.removeprefix(f"{call}{submodule}.")
        assert actions == REDEPLOYED.get(relative, ["no-op"]), (address, actions)

    # Outside the API the upgrade may update in place (moto does not keep every attribute, e.g.
    # a function's LoggingConfig, and the module moves on after BASE_COMMIT), but nothing is
    # created (but for the features added since), replaced or destroyed.
    checked = {change["address"] for change in api}
    for address, actions in _touched(after).items():
        if address in checked:
            continue
        added = address.removeprefix(call) in ADDED_SINCE_BASE
        assert actions == (["create"] if added else ["update"]), (address, actions)
