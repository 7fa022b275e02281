"""Helpers of the plan tests: plan summaries (Fabric style) and IAM policy parsing."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import tftest

MODULE_PREFIX = "module.async_jobs."


@dataclass
class PlanSummary:
    """Planned resources by address (values and unknown markers), counts by type, outputs."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    unknown: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {a: v for a, v in self.values.items() if _type_of(a) == resource_type}


def _type_of(address: str) -> str:
    parts = [p for p in address.split(".") if p]
    # strip module.<name> pairs and a data. prefix
    while parts and parts[0] == "module":
        parts = parts[2:]
    if parts and parts[0] == "data":
        return "data." + parts[1]
    return parts[0].split("[")[0]


def _short(address: str) -> str:
    return address[len(MODULE_PREFIX) :] if address.startswith(MODULE_PREFIX) else address


def summarize(plan: dict[str, Any]) -> PlanSummary:
    summary = PlanSummary()
    for change in plan.get("resource_changes", []):
        if change.get("mode") != "managed" or "create" not in change["change"]["actions"]:
            continue
        address = _short(change["address"])
        summary.values[address] = change["change"].get("after") or {}
        summary.unknown[address] = change["change"].get("after_unknown") or {}
    summary.counts = dict(collections.Counter(_type_of(a) for a in summary.values))
    summary.outputs = {
        k: v.get("value") for k, v in plan.get("planned_values", {}).get("outputs", {}).items()
    }
    return summary


def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Every key/item of `expected` is in `actual` with an equal value (dicts recursively)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected a mapping, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing (have {sorted(actual)})"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list) and expected and isinstance(expected[0], dict):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"


def policy_actions(policy_json: str) -> set[str]:
    """All Allow actions of an IAM policy document."""
    actions: set[str] = set()
    for statement in json.loads(policy_json)["Statement"]:
        if statement.get("Effect", "Allow") != "Allow":
            continue
        value = statement["Action"]
        actions.update([value] if isinstance(value, str) else value)
    return actions


def plan_error(plan: Callable[..., PlanSummary], **tf_vars: Any) -> str:
    """Plan that must fail; returns Terraform's error text with line wrapping undone."""
    with pytest.raises(tftest.TerraformTestError) as excinfo:
        plan(**tf_vars)
    text = " ".join(str(arg) for arg in excinfo.value.args)
    return " ".join(text.replace("│", " ").split())
