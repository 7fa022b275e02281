"""A release is a module a registry consumer can use as it is, from outside this repository.

`make release` (functions/release.py --release) runs in a scratch clone of this repository's
HEAD, never here: it checks VERSION and CHANGELOG.md, writes the archive and tags the clone.
The archive is then served over HTTP and consumed by root modules in a temporary directory,
with no build step: planned against moto, and applied to the local stack. The clone's tag is
consumed too, with the archive's packages passed in `packages` (a tag carries no zips).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import tftest

from async_jobs_local import LocalDeployment
from async_jobs_local.moto_patches import AccountConcurrency

from .plan_support import summarize

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text().strip()
FUNCTIONS = ("submit", "worker", "status")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "release test",
    "GIT_AUTHOR_EMAIL": "release-test@example.com",
    "GIT_COMMITTER_NAME": "release test",
    "GIT_COMMITTER_EMAIL": "release-test@example.com",
}

CONSUMER = """
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
}}

provider "aws" {{
  region = "us-east-1"
}}

module "async_jobs" {{
  source = "{source}"
  name   = "{name}"
{extra}}}

output "api_url" {{
  value = module.async_jobs.api_url
}}

output "api_routes" {{
  value = module.async_jobs.api_routes
}}

output "queue_url" {{
  value = module.async_jobs.queue_url
}}
"""


@dataclass(frozen=True)
class Release:
    clone: Path
    archive: Path
    manifest: dict[str, object]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    command = ["git", "-C", str(repo), *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return done.stdout


def run_release(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = clone / "functions" / "release.py"
    env = {**os.environ, **GIT_IDENTITY}
    command = [sys.executable, str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def consumer(directory: Path, source: str, name: str, extra: str = "") -> Path:
    directory.mkdir(parents=True)
    (directory / "main.tf").write_text(CONSUMER.format(source=source, name=name, extra=extra))
    assert not directory.resolve().is_relative_to(ROOT), "a consumer lives outside the repository"
    return directory


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, packages_built: None) -> Release:
    # GIVEN a scratch clone of HEAD with the packages `make build` wrote
    clone = tmp_path_factory.mktemp("scratch") / "async-jobs"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    (clone / "dist").mkdir()
    for name in [*(f"{f}.zip" for f in FUNCTIONS), "manifest.json"]:
        shutil.copy2(ROOT / "dist" / name, clone / "dist" / name)
    tags_here = git(ROOT, "tag", "--list")

    # WHEN the release of VERSION runs there
    done = run_release(clone, "--release", VERSION)

    # THEN it wrote the archive and tagged the clone, and this repository has no new tag
    assert done.returncode == 0, done.stderr
    assert git(ROOT, "tag", "--list") == tags_here
    archive = clone / "dist" / f"async-jobs-{VERSION}.tar.gz"
    return Release(clone, archive, json.loads((clone / "dist" / "manifest.json").read_text()))


@pytest.fixture(scope="module")
def archive_url(released: Release) -> Iterator[str]:
    """The archive served over HTTP, as a registry or a release page serves it."""
    handler = partial(QuietHandler, directory=str(released.archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{released.archive.name}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def release_of(path: Path) -> str:
    return subprocess.run(
        [sys.executable, str(ROOT / "functions" / "release.py"), "--output", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def test_release_tags_the_scratch_clone(released: Release) -> None:
    # an annotated tag on the released commit
    assert git(released.clone, "cat-file", "-t", f"v{VERSION}").strip() == "tag"
    tagged = git(released.clone, "rev-parse", f"v{VERSION}^{{commit}}")
    assert tagged == git(released.clone, "rev-parse", "HEAD")


def test_release_refuses_what_it_cannot_release(released: Release) -> None:
    # a version VERSION and CHANGELOG.md do not name, and the version already tagged
    wrong = run_release(released.clone, "--release", "9.9.9")
    assert wrong.returncode == 2
    assert "VERSION holds" in wrong.stderr and "CHANGELOG.md has no '## [9.9.9]" in wrong.stderr
    again = run_release(released.clone, "--release", VERSION)
    assert again.returncode == 2 and f"the tag v{VERSION} exists already" in again.stderr
    # a working tree with uncommitted changes
    readme = released.clone / "README.md"
    original = readme.read_text()
    readme.write_text(original + "\nuncommitted\n")
    try:
        dirty = run_release(released.clone, "--release", VERSION)
    finally:
        readme.write_text(original)
    assert dirty.returncode == 2 and "uncommitted changes" in dirty.stderr
    assert git(released.clone, "tag", "--list", "v9.9.9") == ""


def test_release_archive_holds_the_module_at_its_root(released: Release) -> None:
    with tarfile.open(released.archive) as tar:
        names = set(tar.getnames())
    assert {"main.tf", "variables.tf", "LICENSE", "CHANGELOG.md", "VERSION", "README.md"} <= names
    assert {f"dist/{f}.zip" for f in FUNCTIONS} | {"dist/manifest.json"} <= names
    # of the functions' sources only what Terraform reads: the platform and the contract
    read_by_terraform = {"functions/platform.json", "functions/shared/async_jobs/contract.json"}
    assert {n for n in names if n.startswith("functions/")} == read_by_terraform
    assert not [n for n in names if n.startswith((".", "/", "tests/", "bench/"))]


def test_release_archive_is_reproducible(tmp_path: Path, packages_built: None) -> None:
    release_of(tmp_path / "a" / "async-jobs-x.tar.gz")
    release_of(tmp_path / "b" / "async-jobs-x.tar.gz")
    first, second = ((tmp_path / d / "async-jobs-x.tar.gz").read_bytes() for d in "ab")
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def check_functions_deploy(
    plan_values: dict[str, dict[str, object]], root: Path, manifest: dict[str, object]
) -> None:
    packages = manifest["packages"]
    assert isinstance(packages, dict)
    for name in FUNCTIONS:
        function = plan_values[f"module.{name}.aws_lambda_function.this"]
        deployed = (root / str(function["filename"])).resolve()
        digest = base64.b64encode(hashlib.sha256(deployed.read_bytes()).digest()).decode()
        assert digest == packages[name] == function["source_code_hash"], name
        assert function["runtime"] == manifest["runtime"]
        assert function["architectures"] == [manifest["architecture"]]


def test_release_archive_plans_from_a_url_with_its_own_packages(
    released: Release,
    archive_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    terraform: Callable[[Path], tftest.TerraformTest],
    empty_state: str,
) -> None:
    # GIVEN a root module outside the repository whose source is the archive's URL
    root = consumer(tmp_path_factory.mktemp("consumer") / "url", archive_url, "release-url")

    # WHEN it is planned (terraform init downloads and unpacks the archive; no build step)
    plan = summarize(terraform(root).plan(output=True, state=empty_state)._raw)

    # THEN each function deploys the zip shipped in the archive, hash for hash
    check_functions_deploy(plan.values, root, released.manifest)


def test_release_tag_plans_with_the_archives_packages(
    released: Release,
    tmp_path_factory: pytest.TempPathFactory,
    terraform: Callable[[Path], tftest.TerraformTest],
    empty_state: str,
) -> None:
    # GIVEN the archive's zips unpacked somewhere, and a root module sourcing the clone's tag
    unpacked = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(released.archive) as tar:
        tar.extractall(unpacked, filter="data")
    packages = "".join(f'    {f} = {{ filename = "{unpacked}/dist/{f}.zip" }}\n' for f in FUNCTIONS)
    source = f"git::file://{released.clone}?ref=v{VERSION}"
    extra = f"\n  packages = {{\n{packages}  }}\n"
    root = consumer(tmp_path_factory.mktemp("consumer") / "tag", source, "release-tag", extra)

    # WHEN it is planned
    plan = summarize(terraform(root).plan(output=True, state=empty_state)._raw)

    # THEN the functions deploy the packages passed in, built for the tagged module's platform
    check_functions_deploy(plan.values, root, released.manifest)


@pytest.mark.slow
def test_release_archive_applies_to_the_local_stack(
    released: Release, archive_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN the consumer of the archive's URL, under a fresh account's rules
    root = consumer(tmp_path_factory.mktemp("consumer") / "apply", archive_url, "release-apply")
    stack = LocalDeployment(root, port=0, project_root=ROOT, account_concurrency=AccountConcurrency())

    # WHEN it is applied to the local stack
    stack.start()
    try:
        # THEN each function runs the archive's package, and the second plan is empty
        lam = stack.client("lambda")
        for name in sorted(set(stack.outputs["api_routes"].values())):
            sha = lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
            assert sha in json.dumps(released.manifest["packages"]), name
        assert stack.outputs["api_url"].endswith("/v1")
        assert stack.plan_has_changes() is False
    finally:
        stack.stop()
