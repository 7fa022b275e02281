"""Terraform reads the contract (functions/shared/async_jobs/contract.json) as the functions do.

The module is copied with a contract whose max_body_bytes default and bound are changed; the
copy's plan and the copy's Python parser both follow: Terraform plans the new default into the
submit function's environment and refuses a value above the new bound, and the parser loaded
from the copy reads that environment and refuses the same value. The unchanged module's routes
are the contract's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tftest

from async_jobs.contract import contract

from .conftest import FIXTURES, ROOT
from .plan_support import PlanSummary, plan_error, summarize

CONTRACT = Path("functions/shared/async_jobs/contract.json")
NEW_DEFAULT, NEW_MAXIMUM = 1_500_000, 2_000_000


def copy_module(target: Path) -> None:
    """The module as a consumer gets it: its Terraform, the contract, the built packages."""
    for path in ROOT.glob("*.tf"):
        shutil.copy2(path, target / path.name)
    ignore = shutil.ignore_patterns(".terraform*", "__pycache__")
    shutil.copytree(ROOT / "modules", target / "modules", ignore=ignore)
    shutil.copytree(ROOT / "functions" / "shared", target / "functions" / "shared", ignore=ignore)
    shutil.copy2(ROOT / "functions" / "platform.json", target / "functions" / "platform.json")
    (target / "dist").mkdir()
    for name in ("submit.zip", "worker.zip", "status.zip", "manifest.json"):
        shutil.copy2(ROOT / "dist" / name, target / "dist" / name)
    shutil.copytree(FIXTURES / "guards", target / "tests" / "plan" / "fixtures" / "guards", ignore=ignore)


@pytest.fixture(scope="module")
def changed(
    tmp_path_factory: pytest.TempPathFactory,
    terraform: Callable[[Path], tftest.TerraformTest],
    empty_state: str,
) -> tuple[Path, Callable[..., PlanSummary]]:
    root = tmp_path_factory.mktemp("contract-copy")
    copy_module(root)
    document = json.loads((root / CONTRACT).read_text())
    document["settings"]["max_body_bytes"].update(default=NEW_DEFAULT, maximum=NEW_MAXIMUM)
    (root / CONTRACT).write_text(json.dumps(document, indent=2))
    fixture = terraform(root / "tests" / "plan" / "fixtures" / "guards")

    def plan(**tf_vars: object) -> PlanSummary:
        return summarize(fixture.plan(output=True, tf_vars=tf_vars, state=empty_state)._raw)

    return root, plan


def parse_submit(root: Path, environment: dict[str, str]) -> str:
    """SubmitConfig of the copy's Python package: its max_body_bytes, or the ConfigError."""
    script = (
        "import json, sys\n"
        "import async_jobs.config as config\n"
        "assert config.__file__.startswith(sys.argv[1]), config.__file__\n"
        "try:\n"
        "    print(config.SubmitConfig.from_env(json.loads(sys.argv[2])).max_body_bytes)\n"
        "except config.ConfigError as error:\n"
        "    print(error)\n"
    )
    shared = root / "functions" / "shared"
    result = subprocess.run(
        [sys.executable, "-c", script, str(shared), json.dumps(environment)],
        env={"PYTHONPATH": str(shared), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_a_changed_contract_moves_terraform_and_python_together(
    changed: tuple[Path, Callable[..., PlanSummary]],
) -> None:
    root, plan = changed
    # GIVEN the copy's contract: max_body_bytes defaults to NEW_DEFAULT, at most NEW_MAXIMUM
    # WHEN the copy is planned with the default THEN the submit function gets the new default
    environment = plan().values["module.submit.aws_lambda_function.this"]["environment"][0]["variables"]
    assert environment["MAX_BODY_BYTES"] == str(NEW_DEFAULT)
    # AND the copy's parser reads it
    assert parse_submit(root, environment) == str(NEW_DEFAULT)
    # WHEN a value above the new bound is given THEN Terraform refuses it, naming the bound
    error = plan_error(plan, max_body_bytes=NEW_MAXIMUM + 1)
    assert (
        f"max_body_bytes must be between 1024 and {NEW_MAXIMUM} (a whole number), got {NEW_MAXIMUM + 1}"
        in error
    )
    # AND the copy's parser refuses it too
    refused = parse_submit(root, {**environment, "MAX_BODY_BYTES": str(NEW_MAXIMUM + 1)})
    assert f"MAX_BODY_BYTES: must be between 1024 and {NEW_MAXIMUM}" in refused


def test_the_api_routes_are_the_contract_routes(plan_guards: Callable[..., PlanSummary]) -> None:
    routes = plan_guards().outputs["api_routes"]
    assert set(routes) == {f"{r.method} {r.path}" for r in contract().routes}
    for route in contract().routes:
        assert routes[f"{route.method} {route.path}"] == f"guards-{route.function}"
