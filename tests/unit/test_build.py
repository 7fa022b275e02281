"""functions/build.py: zips are byte-for-byte reproducible whatever the files' times, modes and
the building interpreter's path, and each holds only the shared modules its handler imports."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from async_jobs_tools import build


def staging(root: Path, interpreter: str, mtime: int, mode: int) -> Path:
    files = {
        "worker.py": "def handler(event, context):\n    return {}\n",
        "async_jobs/__init__.py": "",
        "pkg/__init__.py": "VALUE = 1\n",
        "pkg/__pycache__/x.cpython-311.pyc": "junk",
        "bin/tool": f"#!{interpreter}\nimport pkg\n",
        "pkg-1.0.dist-info/RECORD": (
            f"../../bin/tool,sha256={interpreter},30\npkg/__init__.py,sha256=abc,10\n"
        ),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (mtime, mtime))
        path.chmod(mode)
    return root


def test_zip_is_identical_across_times_modes_and_build_paths(tmp_path: Path) -> None:
    # GIVEN the same package staged twice, with other mtimes, modes and interpreter paths
    first = staging(tmp_path / "a", "/home/a/.venv/bin/python", 1_000_000_000, 0o600)
    second = staging(tmp_path / "b", "/srv/b/.venv/bin/python3", 1_700_000_000, 0o755)

    # WHEN both are zipped
    build.write_zip(first, tmp_path / "a.zip")
    build.write_zip(second, tmp_path / "b.zip")

    # THEN the bytes are the same, and what is left out is left out
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        names = archive.namelist()
        record = archive.read("pkg-1.0.dist-info/RECORD").decode()
        infos = archive.infolist()
    assert names == sorted(names)
    assert "bin/tool" not in names and not any("__pycache__" in n for n in names)
    assert record == "pkg/__init__.py,sha256=abc,10\n"
    assert {i.date_time for i in infos} == {build.FIXED_DATE}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


API_ONLY = {
    "async_jobs/web.py",
    "async_jobs/service.py",
    "async_jobs/identity.py",
    "async_jobs/wiring/api.py",
}
WORKER_ONLY = {
    "async_jobs/engine.py",
    "async_jobs/records.py",
    "async_jobs/sinks/__init__.py",
    "async_jobs/sinks/redshift.py",
    "async_jobs/wiring/worker.py",
}


@pytest.mark.parametrize(
    ("function", "ships", "leaves_out"),
    [("submit", API_ONLY, WORKER_ONLY), ("status", API_ONLY, WORKER_ONLY), ("worker", WORKER_ONLY, API_ONLY)],
)
def test_each_function_ships_only_the_shared_modules_it_imports(
    function: str, ships: set[str], leaves_out: set[str]
) -> None:
    # WHEN the shared sources of a function are collected from its handler's imports
    files = {p.relative_to(build.SHARED_DIR).as_posix() for p in build.shared_sources(function)}
    # THEN its own side is there with the package markers, the other side is not
    assert (
        ships | {"async_jobs/__init__.py", "async_jobs/wiring/__init__.py", "async_jobs/config.py"} <= files
    )
    assert not files & leaves_out
