"""Import one handler from its package alone; print what happened as JSON.

Run by test_packages.py as `python -I -S package_probe.py PACKAGE_DIR HANDLER`: no site-packages,
no PYTHON* variables, so `sys.path` is the package directory and the standard library only.
Three steps, each as Lambda would take it: import the handler module (its module-level code
runs), its cold start (`runtime()`: configuration parsed, AWS clients built from the botocore
data in the package), then every module the shipped first-party code imports anywhere, so a
lazy import (a sink's driver) is held to the package too. Standard library only.
"""

from __future__ import annotations

import ast
import importlib
import json
import sys
import sysconfig
from pathlib import Path
from typing import Any

FIRST_PARTY = "async_jobs"


class Unresolved:
    """Last on sys.meta_path: sees exactly the names no other finder could find."""

    names: list[str] = []

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> None:
        cls.names.append(name)


def failure(exc: BaseException) -> dict[str, Any]:
    return {
        "error": f"{type(exc).__name__}: {exc}",
        "name": getattr(exc, "name", None),
        "path": getattr(exc, "path", None),
    }


def first_party_imports(package: Path, handler: str) -> set[str]:
    sources = [package / f"{handler}.py", *sorted((package / FIRST_PARTY).rglob("*.py"))]
    names: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        if source.is_relative_to(package / FIRST_PARTY):
            relative = source.relative_to(package).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            names.add(".".join(parts))
    return names


def main() -> int:
    package, handler = Path(sys.argv[1]).resolve(), sys.argv[2]
    sys.path.insert(0, str(package))
    sys.meta_path.append(Unresolved)
    report: dict[str, Any] = {"steps": {}, "imports": {}}
    try:
        module = importlib.import_module(handler)
        report["steps"]["import"] = None
        module.runtime()
        report["steps"]["cold start"] = None
    except BaseException as exc:  # noqa: BLE001 - reported, not swallowed: the test fails on it
        report["steps"]["import" if "import" not in report["steps"] else "cold start"] = failure(exc)
    if report["steps"].get("import", True) is None:
        for name in sorted(first_party_imports(package, handler)):
            try:
                importlib.import_module(name)
            except BaseException as exc:  # noqa: BLE001
                report["imports"][name] = failure(exc)
    report["unresolved"] = sorted(set(Unresolved.names))
    report["stdlib"] = sorted({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})
    report["modules"] = {
        name: getattr(module, "__file__", None) for name, module in sorted(sys.modules.items())
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
