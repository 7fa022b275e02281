"""Version floors: every root module's `versions.tf` states the versions its features need.

FEATURES lists each Terraform language feature and provider argument the module (or a newer
one) may use, with the Terraform and hashicorp/aws versions that introduced it and how to spot
it in a `.tf` file. The floors this test computes from the files in the checkout are the floors
every `versions.tf` must state (one floor everywhere: a root module that calls the module needs
what the module needs). The provider's upper bound is the major version whose removals the
module has not adopted (see docs/real-account.md, Requirements).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import tftest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

Version = tuple[int, ...]


@dataclass(frozen=True)
class Feature:
    name: str
    pattern: str  # a regular expression over a .tf file with its comments removed
    terraform: Version
    aws: Version = (0,)


# Sources: the Terraform and terraform-provider-aws changelogs (and the pull requests named).
FEATURES = (
    Feature("optional object attributes with defaults", r"optional\([^()]*,", (1, 3)),
    Feature("terraform_data resource", r"\bresource\s+\"terraform_data\"", (1, 4)),
    Feature("check blocks", r"^\s*check\s+\"", (1, 5)),
    Feature("import blocks", r"^\s*import\s*\{", (1, 5)),
    Feature("removed blocks", r"^\s*removed\s*\{", (1, 7)),
    Feature("provider-defined functions", r"\bprovider::", (1, 8)),
    Feature("ephemeral blocks", r"^\s*ephemeral\s+\"", (1, 10)),
    Feature("ephemeral input variables", r"^\s*ephemeral\s*=\s*true", (1, 10)),
    # Write-only arguments are Terraform 1.11; secret_string_wo came in provider 5.88.0 (#41371)
    Feature("write-only argument secret_string_wo", r"\bsecret_string_wo\s*=", (1, 11), (5, 88)),
    # the ephemeral resource (#41106) was merged before 5.88.0 was released
    Feature(
        "ephemeral aws_secretsmanager_random_password",
        r"ephemeral\s+\"aws_secretsmanager_random_password\"",
        (1, 10),
        (5, 88),
    ),
    # added by #40004 (5.77.0); removed in 6.0.0 (the account is then always reset on delete)
    Feature("aws_api_gateway_account reset_on_delete", r"\breset_on_delete\s*=", (1, 0), (5, 77)),
)

# The provider major version whose removals the module does not follow: aws_api_gateway_account
# lost reset_on_delete and data.aws_region.name is deprecated (for region) in 6.0.
PROVIDER_CEILING: Version = (6, 0)


def _tf_files() -> list[Path]:
    skip = {".terraform", ".terraform.d", ".venv", "node_modules", ".local"}
    return sorted(p for p in ROOT.rglob("*.tf") if not skip & set(p.relative_to(ROOT).parts))


def _without_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.split(r"\s(?:#|//)|^(?:#|//)", line, maxsplit=1)[0] for line in text.splitlines())


def _cross_variable_validations(text: str) -> bool:
    """A validation condition that reads another variable: Terraform 1.9."""
    for block in re.finditer(r"variable\s+\"([^\"]+)\"\s*\{(.*?)\n\}", text, flags=re.S):
        own = block.group(1)
        for condition in re.findall(r"condition\s*=\s*(.+)", block.group(2)):
            if any(name != own for name in re.findall(r"\bvar\.([A-Za-z0-9_]+)", condition)):
                return True
    return False


def used_features() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in _tf_files():
        text = _without_comments(path.read_text())
        for feature in FEATURES:
            if re.search(feature.pattern, text, flags=re.M):
                found.setdefault(feature.name, []).append(str(path.relative_to(ROOT)))
        if _cross_variable_validations(text):
            found.setdefault("validation referencing other variables", []).append(str(path.relative_to(ROOT)))
    return found


def required_floors() -> tuple[Version, Version]:
    by_name = {f.name: f for f in FEATURES}
    by_name["validation referencing other variables"] = Feature("", "", (1, 9))
    used = used_features()
    terraform = max(by_name[name].terraform for name in used)
    aws = max(by_name[name].aws for name in used)
    return terraform, aws


def _version(text: str) -> Version:
    return tuple(int(part) for part in text.split("."))


def _show(version: Version) -> str:
    return ".".join(str(part) for part in version)


def declared(path: Path) -> tuple[str, str]:
    text = path.read_text()
    terraform = re.search(r"required_version\s*=\s*\"([^\"]+)\"", text)
    aws = re.search(r"aws\s*=\s*\{[^}]*version\s*=\s*\"([^\"]+)\"", text, flags=re.S)
    assert terraform and aws, f"{path}: required_version and the aws provider's version constraint"
    return terraform.group(1), aws.group(1)


VERSIONS_FILES = sorted(p for p in _tf_files() if p.name == "versions.tf")


def test_every_root_module_has_a_versions_file() -> None:
    roots = {p.parent for p in _tf_files() if p.parent.name != "fixtures"}
    assert roots == {p.parent for p in VERSIONS_FILES}


@pytest.mark.parametrize("path", VERSIONS_FILES, ids=lambda p: str(p.parent.relative_to(ROOT)) or "root")
def test_versions_state_the_floors_the_features_need(path: Path) -> None:
    terraform, aws = required_floors()
    assert declared(path) == (
        f">= {_show(terraform)}",
        f">= {_show(aws)}, < {_show(PROVIDER_CEILING)}",
    ), used_features()


def test_the_floor_is_above_every_feature_used() -> None:
    # the floor is what the newest feature needs: dropping that feature would lower it
    terraform, aws = required_floors()
    assert terraform >= (1, 11) and aws >= (5, 88)  # ephemeral + write-only, the newest used


def test_the_machine_terraform_meets_the_floor() -> None:
    out = subprocess.run(["terraform", "version"], capture_output=True, text=True, check=True).stdout
    have = _version(re.search(r"Terraform v([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    assert have >= required_floors()[0]


# The one deprecation the module accepts, with api_gateway_cloudwatch_role = "create" only
# (examples/complete): provider 5.x leaves the region's API Gateway account setting pointing at
# the deleted role on destroy unless reset_on_delete is set, and 6.0 drops the argument because
# it always resets. Setting it is the only way to get 6.0's behaviour on 5.x; docs/real-account.md.
ACCEPTED_DEPRECATIONS = ('"reset_on_delete" attribute will be removed in a future version',)


@pytest.mark.parametrize("example", ["minimal", "complete", "postgres", "local"])
def test_plans_show_no_deprecation_warnings(example: str, terraform: object, aws_env: dict[str, str]) -> None:
    tf: tftest.TerraformTest = terraform(EXAMPLES / example)  # type: ignore[operator]
    args = ["-input=false", "-no-color", "-refresh=false"]
    if example == "local":
        args.append(f"-var=aws_endpoint_url={aws_env['AWS_ENDPOINT_URL']}")
    if example == "postgres":
        args += ["-var=vpc_id=vpc-1", '-var=subnet_ids=["subnet-a","subnet-b"]']
    output = tf.execute_command("plan", *args).out
    # the module's own warnings (deprecated attributes or arguments), whatever the plan proposes
    warnings = [
        block
        for block in ("\n\n" + output.replace("\n \n", "\n\n")).split("\n\nWarning:")[1:]
        if not any(
            " ".join(accepted.split()) in " ".join(block.split()) for accepted in ACCEPTED_DEPRECATIONS
        )
    ]
    assert warnings == []
