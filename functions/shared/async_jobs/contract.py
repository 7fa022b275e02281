"""The module's contract (contract.json, next to this file), typed: routes, settings, environments.

One file holds what Terraform, the functions and the client must agree on: the API's routes,
each setting's default and bounds, and the environment variables each function reads.
Terraform reads the same file with `jsondecode` (main.tf, api.tf, variables.tf); every
function package ships it as package data of `async_jobs` (functions/build.py copies a
package's data files with it), so what Lambda runs is held to the file Terraform planned with.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACT_FILE = Path(__file__).with_name("contract.json")


@dataclass(frozen=True)
class Route:
    """One API route: `operation` is its operationId in openapi.yaml, `function` serves it."""

    operation: str
    method: str
    path: str  # "/jobs/{job_id}"
    function: str
    resource: str


def path_pattern(path: str) -> re.Pattern[str]:
    """A route's path as a regular expression: a parameter is one segment, a trailing / is allowed."""
    return re.compile("^" + re.sub(r"\\\{[^/]+\\\}", "[^/]+", re.escape(path)) + "/?$")


@dataclass(frozen=True)
class Setting:
    """A tunable value: the environment variable that carries it, its default and bounds."""

    name: str
    variable: str
    type: str  # "integer" or "number"
    default: float
    minimum: float
    maximum: float | None


@dataclass(frozen=True)
class Variable:
    """One environment variable a function reads."""

    name: str
    required: bool
    description: str


@dataclass(frozen=True)
class Contract:
    routes: tuple[Route, ...]
    settings: dict[str, Setting]
    environment: dict[str, tuple[Variable, ...]]
    functions: dict[str, tuple[str, ...]]

    @classmethod
    def parse(cls, document: dict[str, Any]) -> Contract:
        return cls(
            routes=tuple(Route(**route) for route in document["routes"]),
            settings={name: Setting(name=name, **s) for name, s in document["settings"].items()},
            environment={
                group: tuple(Variable(**v) for v in variables)
                for group, variables in document["environment"].items()
            },
            functions={fn: tuple(groups) for fn, groups in document["functions"].items()},
        )

    @classmethod
    def load(cls, path: Path = CONTRACT_FILE) -> Contract:
        return cls.parse(json.loads(path.read_text()))

    def routes_of(self, function: str) -> tuple[Route, ...]:
        return tuple(route for route in self.routes if route.function == function)

    def route(self, operation: str) -> Route:
        for route in self.routes:
            if route.operation == operation:
                return route
        raise LookupError(f"no route {operation!r} in the contract")

    def setting_of(self, variable: str) -> Setting | None:
        """The setting an environment variable carries, if it is one."""
        for setting in self.settings.values():
            if setting.variable == variable:
                return setting
        return None

    def function_environment(self, function: str) -> tuple[Variable, ...]:
        """The variables every deployment of ``function`` may set (sink groups aside)."""
        return tuple(v for group in self.functions[function] for v in self.environment[group])


@cache
def contract() -> Contract:
    return Contract.load()
