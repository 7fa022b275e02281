"""Runs of the local deployment: old ones are pruned, live ones never; one deployment per process."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import pytest

from async_jobs_local.deployment import DeploymentError, LocalDeployment, _prune_runs


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


def test_a_second_deployment_in_one_process_is_refused(tmp_path: Path, monkeypatch: Any) -> None:
    # GIVEN a deployment running in this process (its start-up stubbed: no moto, no Terraform)
    monkeypatch.setattr(LocalDeployment, "_start", lambda self: None)
    first = LocalDeployment(work_dir=tmp_path / "first")
    second = LocalDeployment(work_dir=tmp_path / "second")
    first.start()
    try:
        # WHEN another one starts, THEN it is refused: moto's backends are global to the process
        with pytest.raises(DeploymentError, match="another local deployment is running"):
            second.start()
    finally:
        first.stop()
    # AND once the first has stopped, the second may start
    second.start()
    second.stop()
