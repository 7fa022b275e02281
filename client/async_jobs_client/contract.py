"""The module's contract as the client needs it: each operation's route, and the body limit.

`contract.json` in this package is the module's own (functions/shared/async_jobs/contract.json,
copied into the wheel), so the client calls the routes the module deploys and sizes inline
bodies by the limit the module applies by default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import quote


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "/jobs/{job_id}"

    def url_path(self, **params: str) -> str:
        """The path with its parameters filled in (each quoted as one path segment)."""
        return self.path.format(**{name: quote(value, safe="") for name, value in params.items()})

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@cache
def _document() -> dict[str, object]:
    text = resources.files(__package__).joinpath("contract.json").read_text(encoding="utf-8")
    document: dict[str, object] = json.loads(text)
    return document


def route(operation: str) -> Route:
    """The route of an operation id (as in openapi.yaml: submitJob, getJob, ...)."""
    for entry in _document()["routes"]:  # type: ignore[attr-defined]
        if entry["operation"] == operation:
            return Route(entry["method"], entry["path"])
    raise LookupError(f"no route {operation!r} in the contract")


def default_max_body_bytes() -> int:
    """The module's default limit on a POST /jobs body (max_body_bytes)."""
    settings = _document()["settings"]
    return int(settings["max_body_bytes"]["default"])  # type: ignore[index]
