"""The functions' packages as shipped, built for this machine and given to one deployment.

``functions/build.py --host`` builds each function's package unpacked for this machine's
Python, from the same pinned requirements and sources as the Lambda zips. Builds of several
deployments at once are serialised with a file lock (they share the dependency cache); each
deployment then gets its own hard-linked copy, so a later rebuild never changes the files a
running deployment imports from.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path


class PackageBuildError(RuntimeError):
    pass


def build_packages(project_root: Path, destination: Path) -> Path:
    """``destination/<function>/`` for every function, built from the current sources."""
    build_root = project_root / ".local" / "packages"
    build_root.mkdir(parents=True, exist_ok=True)
    with (build_root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            [sys.executable, str(project_root / "functions" / "build.py"), "--host", str(build_root)],
            capture_output=True,
            text=True,
            check=False,
            cwd=project_root,
        )
        if result.returncode != 0:
            raise PackageBuildError(f"functions/build.py --host failed:\n{result.stdout}{result.stderr}")
        shutil.rmtree(destination, ignore_errors=True)
        destination.mkdir(parents=True)
        for tree in sorted(build_root.iterdir()):
            if tree.is_dir() and not tree.name.startswith("."):
                shutil.copytree(tree, destination / tree.name, copy_function=os.link)
    return destination
