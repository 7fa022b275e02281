"""Write the release archive: the module source plus the built Lambda packages.

Registry consumers never run our Makefile inside `.terraform/`: a git tag or a private
registry serves this archive, whose `dist/*.zip` are where the module looks for its
packages by default. The archive is reproducible (sorted entries, fixed mtimes, owners
and modes, gzip header without a timestamp).
"""

from __future__ import annotations

import argparse
import gzip
import io
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE_FILES = (
    "*.tf",
    "README.md",
    "LICENSE",
    "functions/platform.json",
    # Terraform reads the contract for its routes and settings
    "functions/shared/async_jobs/contract.json",
)
MODULE_DIRS = ("modules", "examples")
PACKAGES = ("dist/submit.zip", "dist/worker.zip", "dist/status.zip", "dist/manifest.json")


def tracked_files() -> list[str]:
    """Files git tracks under the module's paths (so no local state ends up in a release)."""
    out = subprocess.run(
        ["git", "ls-files", "--", *MODULE_FILES, *MODULE_DIRS],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [line for line in out.splitlines() if line]


def add_file(archive: tarfile.TarFile, prefix: str, relative: str) -> None:
    data = (ROOT / relative).read_bytes()
    info = tarfile.TarInfo(f"{prefix}/{relative}")
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    missing = [p for p in PACKAGES if not (ROOT / p).is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make build` first")
    files = sorted(set(tracked_files()) | set(PACKAGES))
    prefix = args.output.name.removesuffix(".tar.gz")

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for relative in files:
            add_file(archive, prefix, relative)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with (
        args.output.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(buffer.getvalue())
    print(f"{args.output}: {len(files)} files, {args.output.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
