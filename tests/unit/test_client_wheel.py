"""The client is a distribution of its own: its wheel holds the async_jobs_client package alone
(with the module's contract), requires botocore only, runs `async-jobs`, and is versioned by
the repository's VERSION."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from async_jobs.contract import CONTRACT_FILE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy (links resolved, as `pip install ./client` reads them), so setuptools'
    # scratch directories stay out of the source tree.
    source = tmp_path_factory.mktemp("client-src") / "client"
    scratch = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    shutil.copytree(ROOT / "client", source, ignore=scratch)
    out = tmp_path_factory.mktemp("client-wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    [path] = out.glob("async_jobs_client-*.whl")
    return path


def metadata(wheel: Path) -> tuple[list[str], dict[str, str | list[str]]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(meta).decode())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        fields: dict[str, str | list[str]] = {
            "Name": message["Name"],
            "Version": message["Version"],
            "Requires-Dist": message.get_all("Requires-Dist") or [],
            "entry_points": archive.read(entry_points).decode(),
            "contract": archive.read("async_jobs_client/contract.json").decode(),
        }
    return names, fields


def test_the_wheel_holds_the_client_alone_and_requires_botocore_only(wheel: Path) -> None:
    names, fields = metadata(wheel)
    assert fields["Name"] == "async-jobs-client"
    assert fields["Version"] == (ROOT / "VERSION").read_text().strip()
    assert [r.split(">")[0].split("=")[0].strip() for r in fields["Requires-Dist"]] == ["botocore"]
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"async_jobs_client"}
    assert "async-jobs = async_jobs_client.cli:main" in str(fields["entry_points"])
    # the module's contract, as a file (not a link) in the wheel
    assert fields["contract"] == CONTRACT_FILE.read_text()
