"""Terraform CLI runs against the local moto endpoint, with state kept outside the source tree."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("async_jobs_local")

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_SESSION_TOKEN": "test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class TerraformError(RuntimeError):
    pass


@contextmanager
def init_lock(project_root: Path) -> Iterator[None]:
    """Hold while ``terraform init`` runs: one init at a time per provider plugin cache.

    Concurrent inits (parallel test workers, a test run beside `make local`) share the plugin
    cache, which Terraform does not make safe for concurrent writers, and write the same
    ``.terraform.lock.hcl`` next to an example. Plan, apply and destroy need no lock: each run
    has its own TF_DATA_DIR and state.
    """
    cache = os.environ.get("TF_PLUGIN_CACHE_DIR")
    lock_dir = Path(cache).parent if cache else project_root / ".terraform.d"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "init.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class Terraform:
    """``terraform`` in ``example_dir`` with its data dir and state under ``work_dir``.

    The example directory itself is only read (apart from the ``.terraform.lock.hcl`` that
    ``init`` writes, which is git-ignored), so several stacks of one example can run at once.
    """

    def __init__(
        self,
        example_dir: Path,
        work_dir: Path,
        endpoint_url: str,
        *,
        variables: Mapping[str, Any] | None = None,
        project_root: Path | None = None,
        binary: str = "terraform",
    ) -> None:
        self.example_dir = example_dir.resolve()
        self.work_dir = work_dir
        self.endpoint_url = endpoint_url
        self.variables = dict(variables or {})
        self.binary = shutil.which(binary) or binary
        self.state_path = work_dir / "terraform.tfstate"
        self.log_path = work_dir / "terraform.log"
        self.project_root = project_root
        work_dir.mkdir(parents=True, exist_ok=True)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # Nothing from the caller's AWS profile or account may leak into a local run.
        for key in list(env):
            if key.startswith("AWS_"):
                del env[key]
        env.update(FAKE_CREDENTIALS)
        env["AWS_ENDPOINT_URL"] = self.endpoint_url
        env["TF_DATA_DIR"] = str(self.work_dir / ".terraform")
        env["TF_IN_AUTOMATION"] = "1"
        env["CHECKPOINT_DISABLE"] = "1"
        env.setdefault("TF_INPUT", "0")
        if "TF_CLI_CONFIG_FILE" not in env and self.project_root:
            rc = self.project_root / ".terraform.d" / "terraformrc"
            if rc.is_file():
                env["TF_CLI_CONFIG_FILE"] = str(rc)
        if "TF_PLUGIN_CACHE_DIR" not in env and self.project_root:
            cache = self.project_root / ".terraform.d" / "plugin-cache"
            cache.mkdir(parents=True, exist_ok=True)
            env["TF_PLUGIN_CACHE_DIR"] = str(cache)
        return env

    def _var_args(self) -> list[str]:
        args = []
        for name, value in self.variables.items():
            rendered = value if isinstance(value, str) else json.dumps(value)
            args += ["-var", f"{name}={rendered}"]
        return args

    def run(self, *args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.binary, f"-chdir={self.example_dir}", *args]
        log.debug("%s", " ".join(command))
        with self.log_path.open("a") as log_file:
            log_file.write(f"\n$ {' '.join(command)}\n")
            log_file.flush()
            result = subprocess.run(
                command,
                env=self.environment(),
                stdout=subprocess.PIPE if capture else log_file,
                stderr=log_file if capture else subprocess.STDOUT,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        if check and result.returncode != 0:
            tail = "\n".join(self.log_path.read_text().splitlines()[-40:])
            raise TerraformError(
                f"terraform {args[0]} failed (exit {result.returncode}); see {self.log_path}\n{tail}"
            )
        return result

    def init(self) -> None:
        with init_lock(self.project_root or self.example_dir.parents[1]):
            self.run("init", "-input=false", "-no-color", "-upgrade=false")

    def apply(self) -> None:
        self.run(
            "apply",
            "-input=false",
            "-no-color",
            "-auto-approve",
            f"-state={self.state_path}",
            *self._var_args(),
        )

    def plan_has_changes(self) -> bool:
        """``plan -detailed-exitcode``: False when the live infrastructure matches the configuration."""
        result = self.run(
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            f"-state={self.state_path}",
            *self._var_args(),
            check=False,
        )
        if result.returncode == 1:
            raise TerraformError(f"terraform plan failed; see {self.log_path}")
        return result.returncode == 2

    def output(self) -> dict[str, Any]:
        result = self.run("output", "-json", "-no-color", f"-state={self.state_path}", capture=True)
        return {name: item.get("value") for name, item in json.loads(result.stdout or "{}").items()}

    def destroy(self) -> None:
        self.run(
            "destroy",
            "-input=false",
            "-no-color",
            "-auto-approve",
            f"-state={self.state_path}",
            *self._var_args(),
        )
