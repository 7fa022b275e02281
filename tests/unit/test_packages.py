"""Each handler imports from its own package alone, as Lambda loads it.

A fresh `python -I -S` (no site-packages) whose `sys.path` is the unpacked package plus the
standard library imports the handler, runs its cold start and imports every module the
shipped first-party code imports (see package_probe.py). Two builds are checked:

- the host build (`functions/build.py --host`): the same pins and sources built for this
  machine, so everything must load;
- the Lambda zips in dist/ (built for the runtime and architecture of dist/manifest.json).
  Pure-Python modules load anywhere; a C extension built for another platform cannot load
  here. Such a module is told apart precisely (a `.so` in the zip whose platform tag this
  interpreter does not load), listed, and tolerated only when nothing else is missing.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from async_jobs_tools import build, lock

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("package_probe.py")
API_FUNCTIONS = ("submit", "status")
# What only the worker may load: the record checks, the sinks and their drivers.
WORKER_ONLY = (
    "fastjsonschema",
    "redshift_connector",
    "async_jobs.records",
    "async_jobs.sinks",
    "async_jobs.engine",
)
# What each function's cold start needs, as Terraform would set it (values are placeholders).
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_LAMBDA_FUNCTION_NAME": "async-jobs-probe",
    "POWERTOOLS_SERVICE_NAME": "async-jobs",
    "STATE_BUCKET": "async-jobs-state",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/async-jobs-jobs",
}

pytestmark = pytest.mark.slow


def probe(package: Path, function: str) -> dict[str, Any]:
    # LAMBDA_TASK_ROOT makes Powertools' Tracer behave as in Lambda (it patches with X-Ray)
    env = {"PATH": os.environ.get("PATH", ""), **LAMBDA_ENV, "LAMBDA_TASK_ROOT": str(package)}
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(PROBE), str(package), function],
        capture_output=True, text=True, env=env, cwd=package, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"probe crashed:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def elf_machine(path: Path) -> int | None:
    """The ELF e_machine field (62 x86-64, 183 AArch64), or None for a file that is not ELF."""
    header = path.read_bytes()[:20]
    return int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None


def foreign_extensions(package: Path) -> dict[str, str]:
    """Module name -> file of each C extension in the package this interpreter cannot load:
    tagged for another interpreter (cpython-313-aarch64-linux-gnu.so) or compiled for another
    machine (an abi3 .so for AArch64 on x86-64)."""
    tags = {suffix.removeprefix(".") for suffix in importlib.machinery.EXTENSION_SUFFIXES}
    machine = elf_machine(Path(os.path.realpath(sys.executable)))
    found = {}
    for path in package.rglob("*"):
        if path.suffix not in (".so", ".pyd"):
            continue
        name, _, tag = path.name.partition(".")
        if tag not in tags or elf_machine(path) not in (machine, None):
            relative = path.relative_to(package)
            found[".".join((*relative.parts[:-1], name))] = relative.as_posix()
    return found


def failures(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    steps = {step: error for step, error in report["steps"].items() if error is not None}
    return {**steps, **{f"import {name}": error for name, error in report["imports"].items()}}


def blamed_module(error: dict[str, Any], package: Path) -> str | None:
    """The module an import failure is about: the missing name, or the file that would not load."""
    if error.get("path") and str(error["path"]).startswith(str(package)):
        relative = Path(error["path"]).relative_to(package)
        return ".".join((*relative.parts[:-1], relative.name.split(".")[0]))
    return error.get("name")


def check(package: Path, function: str, *, tolerate: dict[str, str]) -> list[str]:
    """Probe ``function``'s package; assert what must hold; return the C extensions tolerated."""
    report = probe(package, function)
    not_loaded = sorted(name for name in report["unresolved"] if name in tolerate)
    problems = []
    for step, error in failures(report).items():
        module = blamed_module(error, package)
        if module in tolerate:
            not_loaded.append(module)
        else:
            problems.append(f"{step}: {error['error']}")
    assert not problems, f"{function} cannot run from its package alone:\n" + "\n".join(problems)
    # nothing came from outside the package and the standard library
    roots = (str(package), *report["stdlib"])
    outside = {
        n: f for n, f in report["modules"].items() if f and not f.startswith(roots) and f != str(PROBE)
    }
    assert not outside, f"{function} loaded modules from outside its package: {outside}"
    if function in API_FUNCTIONS:
        loaded = [m for m in report["modules"] if m.startswith(WORKER_ONLY)]
        assert not loaded, f"{function} imports the worker's modules: {loaded}"
    return sorted(set(not_loaded))


@pytest.fixture(scope="session")
def host_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("host-packages")
    for function in build.FUNCTIONS:
        build.build_host_tree(function, root)
    return root


@pytest.mark.parametrize("function", build.FUNCTIONS)
def test_host_package_imports_alone(host_packages: Path, function: str) -> None:
    package = host_packages / function
    # this machine's own build: every extension module must load, none is excused
    assert not foreign_extensions(package)
    assert check(package, function, tolerate={}) == []


def stale_entries(function: str, package: Path) -> list[str]:
    """Where an unpacked dist zip differs from what `make build` would put in it now."""
    expected = {p.name: p for p in (build.FUNCTIONS_DIR / function).glob("*.py")}
    expected |= {p.relative_to(build.SHARED_DIR).as_posix(): p for p in build.shared_sources(function)}
    # handler modules are the function folder's; other top-level modules come from dependencies
    shipped = {p.name for p in package.glob("*.py") if p.name in expected}
    shipped |= {
        p.relative_to(package).as_posix() for p in (package / build.SHARED_PACKAGE).rglob("*") if p.is_file()
    }
    problems = [f"{name}: not in the zip" for name in sorted(set(expected) - shipped)]
    problems += [f"{name}: no longer a source" for name in sorted(shipped - set(expected))]
    problems += [
        f"{name}: differs from the source"
        for name in sorted(set(expected) & shipped)
        if (package / name).read_bytes() != expected[name].read_bytes()
    ]
    installed = {}
    for metadata in package.glob("*.dist-info/METADATA"):
        fields = dict(line.split(": ", 1) for line in metadata.read_text().splitlines()[:10] if ": " in line)
        installed[lock.canonicalize_name(fields["Name"])] = fields["Version"]
    pins = lock.pinned(build.FUNCTIONS_DIR / function / "requirements.txt")
    problems += [f"{name}: pinned {pins.get(name)}, zipped {installed.get(name)}" for name in sorted(
        n for n in set(pins) | set(installed) if pins.get(n) != installed.get(n)
    )]  # fmt: skip
    return problems


@pytest.fixture(scope="session")
def dist_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [f for f in build.FUNCTIONS if not (ROOT / "dist" / f"{f}.zip").is_file()]
    if missing:
        pytest.fail(f"dist/{missing[0]}.zip not found: run `make build`")
    root = tmp_path_factory.mktemp("dist-packages")
    for function in build.FUNCTIONS:
        with zipfile.ZipFile(ROOT / "dist" / f"{function}.zip") as archive:
            archive.extractall(root / function)
    return root


@pytest.mark.parametrize("function", build.FUNCTIONS)
def test_lambda_zip_imports_alone(dist_packages: Path, function: str) -> None:
    package = dist_packages / function
    stale = stale_entries(function, package)
    assert not stale, f"dist/{function}.zip is out of date, run `make build`:\n" + "\n".join(stale)
    foreign = foreign_extensions(package)
    not_loaded = check(package, function, tolerate=foreign)
    if not_loaded:
        manifest = json.loads((ROOT / "dist" / "manifest.json").read_text())
        warnings.warn(
            f"dist/{function}.zip ({manifest['runtime']}, {manifest['architecture']}): C extensions "
            f"not loadable on this machine, their pure-Python fallbacks (if any) ran instead: "
            + ", ".join(f"{name} ({foreign[name]})" for name in not_loaded),
            stacklevel=1,
        )
