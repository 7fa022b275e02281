"""The release archive (`make dist`) is a module a registry consumer can plan as it is."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import tftest

from .plan_support import summarize

ROOT = Path(__file__).resolve().parents[2]
CONSUMER = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region = "us-east-1"
}

module "async_jobs" {
  source = "../async-jobs-test"
  name   = "release-check"
}
"""


def release(output: Path) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "functions" / "release.py"), "--output", str(output)],
        check=True,
        capture_output=True,
    )
    return output


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory, packages_built: None) -> Path:
    work = tmp_path_factory.mktemp("release")
    archive = release(work / "async-jobs-test.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    (work / "consumer").mkdir()
    (work / "consumer" / "main.tf").write_text(CONSUMER)
    return work


def test_release_archive_is_reproducible(tmp_path: Path, packages_built: None) -> None:
    first = release(tmp_path / "a" / "async-jobs-x.tar.gz").read_bytes()
    second = release(tmp_path / "b" / "async-jobs-x.tar.gz").read_bytes()
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_release_archive_plans_with_its_own_packages(
    unpacked: Path, terraform: Callable[[Path], tftest.TerraformTest], empty_state: str
) -> None:
    # GIVEN the archive unpacked where a registry would put it, and a consumer root module
    module = unpacked / "async-jobs-test"
    manifest = json.loads((module / "dist" / "manifest.json").read_text())
    assert sorted(manifest["packages"]) == ["status", "submit", "worker"]

    # WHEN the consumer plans it (no Makefile, no build step)
    plan = summarize(terraform(unpacked / "consumer").plan(output=True, state=empty_state)._raw)

    # THEN each function deploys the zip shipped in the archive, hash for hash
    for name in ("submit", "worker", "status"):
        function = plan.values[f"module.{name}.aws_lambda_function.this"]
        deployed = (unpacked / "consumer" / function["filename"]).resolve()
        assert deployed == (module / "dist" / f"{name}.zip").resolve()
        assert function["source_code_hash"] == manifest["packages"][name]
        assert function["runtime"] == manifest["runtime"]
        assert function["architectures"] == [manifest["architecture"]]
