"""Write the release archive: the module source plus the built Lambda packages; tag a release.

Registry consumers never run our Makefile inside `.terraform/`: a git tag or a private
registry serves this archive, whose `dist/*.zip` are where the module looks for its
packages by default. The module sits at the archive's root, so `source = "<url>.tar.gz"`
needs no `//subdir`. The archive is reproducible (sorted entries, fixed mtimes, owners
and modes, gzip header without a timestamp).

`--release X.Y.Z` (`make release VERSION=X.Y.Z`) is the release itself: the working tree
must be clean, `VERSION` must read X.Y.Z and `CHANGELOG.md` must have its section; the
archive is written, then the commit is tagged `vX.Y.Z`.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE_FILES = (
    "*.tf",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "VERSION",
    "openapi.yaml",
    "functions/platform.json",
    # Terraform reads the contract for its routes and settings
    "functions/shared/async_jobs/contract.json",
)
MODULE_DIRS = ("modules", "examples", "docs")
PACKAGES = ("dist/submit.zip", "dist/worker.zip", "dist/status.zip", "dist/manifest.json")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")


def version(root: Path = ROOT) -> str:
    """The version of the next (or current) release: one place, the VERSION file."""
    return (root / "VERSION").read_text().strip()


def changelog_versions(root: Path = ROOT) -> list[str]:
    """Released versions named by CHANGELOG.md's `## [x.y.z] - date` headings, newest first."""
    text = (root / "CHANGELOG.md").read_text()
    return re.findall(r"^## \[(\d[^\]]*)\] - \d{4}-\d{2}-\d{2}$", text, re.MULTILINE)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def tracked_files() -> list[str]:
    """Files git tracks under the module's paths (so no local state ends up in a release).

    Glob pathspecs: a plain `*.tf` would also match bench/ and tests/ Terraform files."""
    pathspecs = [f":(glob){pattern}" for pattern in (*MODULE_FILES, *MODULE_DIRS)]
    return [line for line in git("ls-files", "--", *pathspecs).splitlines() if line]


def release_problems(wanted: str) -> list[str]:
    """Why `wanted` cannot be released from this checkout now (empty: it can)."""
    problems = []
    if not SEMVER.match(wanted):
        problems.append(f"VERSION={wanted!r} is not a semantic version x.y.z")
    if version() != wanted:
        problems.append(f"VERSION holds {version()!r}, not {wanted!r}: set it and commit")
    if wanted not in changelog_versions():
        problems.append(f"CHANGELOG.md has no '## [{wanted}] - <date>' section: move Unreleased under it")
    if git("status", "--porcelain", "--untracked-files=no").strip():
        problems.append("the working tree has uncommitted changes: commit them first")
    if git("tag", "--list", f"v{wanted}").strip():
        problems.append(f"the tag v{wanted} exists already")
    return problems


def add_file(archive: tarfile.TarFile, relative: str) -> None:
    data = (ROOT / relative).read_bytes()
    info = tarfile.TarInfo(relative)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def write_archive(output: Path) -> int:
    missing = [p for p in PACKAGES if not (ROOT / p).is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make build` first")
    files = sorted(set(tracked_files()) | set(PACKAGES))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for relative in files:
            add_file(archive, relative)
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(buffer.getvalue())
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="archive path (default dist/async-jobs-<version>.tar.gz)")
    parser.add_argument("--release", metavar="X.Y.Z", help="check, write the archive and tag vX.Y.Z")
    args = parser.parse_args(argv)

    if args.release:
        problems = release_problems(args.release)
        if problems:
            print("\n".join(f"release {args.release}: {p}" for p in problems), file=sys.stderr)
            return 2
    output = args.output or ROOT / "dist" / f"async-jobs-{args.release or version()}.tar.gz"
    count = write_archive(output)
    print(f"{output}: {count} files, {output.stat().st_size / 1e6:.1f} MB")
    if args.release:
        git("tag", "--annotate", f"v{args.release}", "--message", f"async-jobs {args.release}")
        print(f"tagged v{args.release} at {git('rev-parse', '--short', 'HEAD').strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
