"""Build one reproducible Lambda zip per function.

Each zip holds the function's handler module(s), the modules of the shared `async_jobs`
package that the handler imports (followed statically) and the function's pinned
dependencies, installed for the Lambda platform (not this machine): `pip install --no-deps
--only-binary=:all: --platform manylinux2014_<arch> --implementation cp --python-version <x.y>`.
Runtime and architecture come from `functions/platform.json`, the same file the Terraform
defaults are read from, unless `--runtime`/`--architecture` override them (then set the
module's `runtime`/`architecture` inputs to match; a plan-time check compares them with
`dist/manifest.json`).

Zips are byte-for-byte reproducible: entries sorted, fixed timestamps and modes, no
`__pycache__`, fixed compression level. So `source_code_hash` only changes with the code.

`--host DIR` builds the same packages for *this* machine instead (its Python and platform,
the same pinned requirements and sources) as unpacked trees `DIR/<function>/`: what the local
stack and the package-import tests run, each function with its tree as its whole `sys.path`.
Dependencies are reinstalled only when a function's requirements change.
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parent
FUNCTIONS = ("submit", "worker", "status")
SHARED_DIR = FUNCTIONS_DIR / "shared"
SHARED_PACKAGE = "async_jobs"
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
SKIP_DIRS = {"__pycache__", "bin", "tests"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def load_platform() -> dict[str, str]:
    return json.loads((FUNCTIONS_DIR / "platform.json").read_text())


def python_version(runtime: str) -> str:
    if not runtime.startswith("python3."):
        raise SystemExit(f"runtime must look like python3.<minor>, got {runtime!r}")
    return runtime.removeprefix("python")


def install_dependencies(
    requirements: Path, target: Path, runtime: str | None, architecture: str | None
) -> None:
    """pip install the pinned closure into ``target``: for the Lambda platform, or for this
    interpreter when ``runtime`` and ``architecture`` are None."""
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
        "--only-binary=:all:", "--target", str(target), "-r", str(requirements),
    ]  # fmt: skip
    if runtime is not None or architecture is not None:
        if architecture not in PLATFORMS:
            raise SystemExit(f"architecture must be one of {sorted(PLATFORMS)}, got {architecture!r}")
        cmd += [
            "--implementation", "cp",
            "--platform", PLATFORMS[architecture],
            "--python-version", python_version(str(runtime)),
        ]  # fmt: skip
        if int(python_version(str(runtime)).split(".")[1]) >= 12:
            # python3.12+ runs on Amazon Linux 2023 (glibc 2.34): wheels built for glibc 2.28,
            # such as psycopg-binary's, load there; python3.11's Amazon Linux 2 has glibc 2.26.
            cmd += ["--platform", PLATFORMS[architecture].replace("manylinux2014", "manylinux_2_28")]
    subprocess.run(cmd, check=True)


def _module_file(name: str) -> Path | None:
    """The source file of a module of the shared package, or None when it is not one."""
    base = SHARED_DIR.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(source: Path, module: str) -> set[str]:
    """Every module name ``source`` may import, wherever the import statement is (inside
    functions too: a lazy import still has to resolve in the zip)."""
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            # `from package import module` imports a module, not just an attribute
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def shared_sources(function: str) -> list[Path]:
    """The files of the shared package that ``function``'s handler imports, directly or not.

    Each zip ships only these (with the packages' ``__init__.py`` and data files), so an API
    function cannot import the worker's sinks even by accident: the package test fails first.
    """
    pending = [(path, path.stem) for path in sorted((FUNCTIONS_DIR / function).glob("*.py"))]
    seen: set[Path] = set()
    while pending:
        source, module = pending.pop()
        for name in _imported_names(source, module):
            if name.split(".")[0] != SHARED_PACKAGE:
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # a module's packages run their __init__ first
                prefix = ".".join(parts[:depth])
                path = _module_file(prefix)
                if path is not None and path not in seen:
                    seen.add(path)
                    pending.append((path, prefix))
    data = {
        path
        for package in {p.parent for p in seen if p.name == "__init__.py"}
        for path in package.iterdir()
        if path.is_file() and path.suffix not in {".py", *SKIP_SUFFIXES}
    }
    return sorted(seen | data)


def copy_sources(function: str, staging: Path) -> None:
    for source in sorted((FUNCTIONS_DIR / function).glob("*.py")):
        shutil.copy2(source, staging / source.name)
    for source in shared_sources(function):
        target = staging / source.relative_to(SHARED_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def package_files(staging: Path) -> list[Path]:
    files = []
    for path in staging.rglob("*"):
        relative = path.relative_to(staging)
        if path.is_dir() or path.suffix in SKIP_SUFFIXES:
            continue
        if any(part in SKIP_DIRS for part in relative.parts[:-1]):
            continue
        files.append(relative)
    return sorted(files, key=lambda p: p.as_posix())


def record_without_scripts(data: bytes) -> bytes:
    """A wheel's RECORD less its console scripts: they are not packaged (Lambda runs none), and
    pip rewrites their shebang to the building interpreter's path, which would make the zip
    depend on where it was built."""
    lines = data.decode().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(("../", "bin/"))).encode()


def write_zip(staging: Path, destination: Path) -> None:
    tmp = destination.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for relative in package_files(staging):
            data = (staging / relative).read_bytes()
            if relative.name == "RECORD" and relative.parent.name.endswith(".dist-info"):
                data = record_without_scripts(data)
            info = zipfile.ZipInfo(relative.as_posix(), date_time=FIXED_DATE)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            archive.writestr(info, data, compresslevel=9)
    tmp.replace(destination)


def base64_sha256(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def build(function: str, dist: Path, runtime: str, architecture: str) -> Path:
    destination = dist / f"{function}.zip"
    with tempfile.TemporaryDirectory(prefix=f"build-{function}-") as tmp:
        staging = Path(tmp)
        install_dependencies(FUNCTIONS_DIR / function / "requirements.txt", staging, runtime, architecture)
        copy_sources(function, staging)
        write_zip(staging, destination)
    return destination


def build_host_tree(function: str, root: Path) -> Path:
    """``root/<function>/``: the function's package for this machine, unpacked.

    Same pinned requirements and sources as the Lambda zip; dependencies are cached under
    ``root/.deps/<function>-<hash of requirements and interpreter>/`` and copied, so a rebuild
    after a code change costs a copy, not a pip run.
    """
    requirements = FUNCTIONS_DIR / function / "requirements.txt"
    key = hashlib.sha256(
        requirements.read_bytes() + f"{sys.version_info[:2]}{sys.platform}".encode()
    ).hexdigest()[:16]
    deps = root / ".deps" / f"{function}-{key}"
    if not (deps / ".complete").is_file():
        shutil.rmtree(deps, ignore_errors=True)
        deps.mkdir(parents=True)
        install_dependencies(requirements, deps, None, None)
        (deps / ".complete").touch()
    destination = root / function
    staging = root / f".{function}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(deps, staging, ignore=shutil.ignore_patterns(".complete", "bin"))
    copy_sources(function, staging)
    shutil.rmtree(destination, ignore_errors=True)
    staging.replace(destination)
    return destination


def main(argv: list[str] | None = None) -> int:
    platform = load_platform()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("functions", nargs="*", metavar="FUNCTION", help=f"any of {', '.join(FUNCTIONS)}")
    parser.add_argument("--dist", type=Path, default=FUNCTIONS_DIR.parent / "dist")
    parser.add_argument("--runtime", default=platform["runtime"])
    parser.add_argument("--architecture", default=platform["architecture"])
    parser.add_argument(
        "--host",
        type=Path,
        metavar="DIR",
        help="build unpacked trees DIR/<function>/ for this machine's Python and platform instead",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.functions) - set(FUNCTIONS))
    if unknown:
        parser.error(f"unknown function(s) {', '.join(unknown)}; choose from {', '.join(FUNCTIONS)}")
    args.functions = args.functions or list(FUNCTIONS)

    if args.host is not None:
        for function in args.functions:
            build_host_tree(function, args.host.resolve())
        return 0
    args.dist.mkdir(parents=True, exist_ok=True)
    manifest_path = args.dist / "manifest.json"
    manifest = {"runtime": args.runtime, "architecture": args.architecture, "packages": {}}
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text())
        if (previous.get("runtime"), previous.get("architecture")) == (args.runtime, args.architecture):
            manifest["packages"] = previous.get("packages", {})
    for function in args.functions:
        path = build(function, args.dist, args.runtime, args.architecture)
        manifest["packages"][function] = base64_sha256(path)
        size = path.stat().st_size
        print(
            f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: "
            f"{size / 1e6:.1f} MB ({args.runtime}, {args.architecture})"
        )
    manifest["packages"] = dict(sorted(manifest["packages"].items()))
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
