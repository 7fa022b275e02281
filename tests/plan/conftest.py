"""Plan tests: every example (and a guard fixture) planned against a moto server.

Fabric style: a plan becomes a summary keyed by resource address (module prefix of the
example's `async_jobs` call stripped); tests compare values as subsets and counts exactly.
One `terraform init` per root module per session (TF_DATA_DIR in a temporary directory,
so nothing is written next to the examples but the lock file).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tftest
from moto.server import ThreadedMotoServer

from async_jobs_local.terraform import init_lock

from .plan_support import PlanSummary, summarize

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def aws_env() -> Iterator[dict[str, str]]:
    """A moto server on a free port and the environment Terraform needs to talk to it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TF_IN_AUTOMATION": "1",
    }
    yield env
    server.stop()


@pytest.fixture(scope="session")
def packages_built() -> None:
    missing = [n for n in ("submit", "worker", "status") if not (ROOT / "dist" / f"{n}.zip").exists()]
    if missing:
        pytest.fail(f"dist/{missing[0]}.zip not found: run `make build` first")


@pytest.fixture(scope="session")
def terraform(
    aws_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, packages_built: None
) -> Callable[[Path], tftest.TerraformTest]:
    """Initialised TerraformTest per root module directory, shared by the session."""
    cache: dict[Path, tftest.TerraformTest] = {}
    plugin_cache = os.environ.get("TF_PLUGIN_CACHE_DIR")
    if plugin_cache:
        Path(plugin_cache).mkdir(parents=True, exist_ok=True)

    def get(tfdir: Path) -> tftest.TerraformTest:
        if tfdir not in cache:
            data_dir = tmp_path_factory.mktemp(f"tf-{tfdir.name}")
            env = {**aws_env, "TF_DATA_DIR": str(data_dir)}
            tf = tftest.TerraformTest(str(tfdir), binary=shutil.which("terraform") or "terraform", env=env)
            with init_lock(ROOT):  # parallel workers share the plugin cache and the lock file
                tf.setup(cleanup_on_exit=False, backend=False)
            cache[tfdir] = tf
        return cache[tfdir]

    return get


@pytest.fixture(scope="session")
def empty_state(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A state path that does not exist: plans ignore any state left next to an example."""
    return str(tmp_path_factory.mktemp("state") / "none.tfstate")


@pytest.fixture(scope="session")
def plan_example(
    terraform: Callable[[Path], tftest.TerraformTest], aws_env: dict[str, str], empty_state: str
) -> Callable[[str], PlanSummary]:
    cache: dict[str, PlanSummary] = {}

    def plan(name: str) -> PlanSummary:
        if name not in cache:
            tf_vars = {"aws_endpoint_url": aws_env["AWS_ENDPOINT_URL"]} if name == "local" else None
            result = terraform(EXAMPLES / name).plan(output=True, tf_vars=tf_vars, state=empty_state)
            cache[name] = summarize(result._raw)
        return cache[name]

    return plan


@pytest.fixture(scope="session")
def plan_guards(
    terraform: Callable[[Path], tftest.TerraformTest], empty_state: str
) -> Callable[..., PlanSummary]:
    """Plan the guard fixture with -var overrides; raises tftest.TerraformTestError on failure."""

    def plan(**tf_vars: Any) -> PlanSummary:
        result = terraform(FIXTURES / "guards").plan(output=True, tf_vars=tf_vars, state=empty_state)
        return summarize(result._raw)

    return plan
