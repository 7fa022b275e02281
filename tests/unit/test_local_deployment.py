"""Runs of the local deployment: old ones are pruned, live ones never."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from async_jobs_local.deployment import _prune_runs


def test_prune_keeps_the_newest_and_every_live_run(tmp_path: Path) -> None:
    # GIVEN four runs, the oldest still live (its deployment holds the lock)
    runs = []
    for index in range(4):
        run = tmp_path / f"run-{index}"
        (run / "packages").mkdir(parents=True)
        (run / ".lock").touch()
        os.utime(run, (1000 + index, 1000 + index))
        runs.append(run)
    with (runs[0] / ".lock").open("r") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # WHEN the runs are pruned to the newest one
        _prune_runs(tmp_path, keep=1)
    # THEN the live run and the newest remain
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run-0", "run-3"]
