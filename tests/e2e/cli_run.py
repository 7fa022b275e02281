"""Run the installed ``async-jobs`` console script as a user does, with its own peak memory."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# A small launcher measures the command: a child forked straight from pytest would report
# pytest's resident size (ru_maxrss survives exec), and RUSAGE_CHILDREN of pytest would mix in
# the stack's own processes.
LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


@dataclass
class CliRun:
    code: int
    out: str
    err: str
    seconds: float
    peak_rss_mib: float


def run_cli(*argv: str, env: dict[str, str], timeout: float = 1200) -> CliRun:
    """Exit code, output, wall time and peak RSS of one ``async-jobs`` process."""
    script = Path(sys.executable).with_name("async-jobs")
    with tempfile.TemporaryDirectory() as scratch:
        rss_file = Path(scratch) / "maxrss"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(rss_file), str(script), *argv],
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.monotonic() - started
        # ru_maxrss is KiB on Linux
        peak = int(rss_file.read_text()) / 1024
    return CliRun(done.returncode, done.stdout.decode(), done.stderr.decode(), seconds, peak)
