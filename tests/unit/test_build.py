"""functions/build.py: zips are byte-for-byte reproducible whatever the files' times, modes and
the building interpreter's path."""

from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("build_tool", ROOT / "functions" / "build.py")
assert spec and spec.loader
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


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
