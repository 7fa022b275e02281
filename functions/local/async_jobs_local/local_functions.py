"""Local-only functions behind extra routes of the local API (benchmark baselines): never deployed.

A ``LocalFunction`` runs like a deployed one (its own process, ``python -I -S``, one invocation at
a time) with the package of a deployed function as its dependencies, that function's execution
role and configuration, and its own handler module added on top.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LocalFunction:
    """``POST /sync/jobs`` → ``LocalFunction("sync", "sync_handler.handler", Path(".../sync_handler.py"),
    like="worker")``: runs with the worker's package, role and environment, plus ``environment``."""

    name: str
    handler: str
    source: Path  # the handler module's file
    like: str  # "submit" | "worker" | "status": whose package, role and environment it shares
    timeout: float = 29.0  # API Gateway's integration timeout
    environment: dict[str, str] = field(default_factory=dict)
    concurrency: int | None = None  # most environments at once (None: the runtime's default)


def package_for(function: LocalFunction, packages_dir: Path, base: Path) -> Path:
    """``packages_dir/<name>/``: the base package (hard links) plus the handler module."""
    destination = packages_dir / function.name
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(base, destination, copy_function=os.link)
    shutil.copy2(function.source, destination / function.source.name)
    return destination
