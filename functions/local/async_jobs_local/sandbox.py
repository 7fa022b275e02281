"""Lambda execution environments as local processes.

Each function runs in its own child process, one invocation at a time, like a Lambda execution
environment: the process starts with exactly the deployed function's environment variables
(plus the runtime's own, and the moto endpoint), imports the handler once (cold start) and then
serves invocations. A pool keeps idle environments warm and starts more under concurrent load.

Why processes rather than threads: the handlers read their configuration and build their
clients once, at import; the shared ``async_jobs`` package and Powertools keep module-level
singletons. In one interpreter the three functions would share those and one ``os.environ``.
A process per environment gives each function its own environment and module instances, and
lets a handler that overruns its timeout be stopped for real (the process is killed, as Lambda
does), which a thread could not be.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bootstrap import read_frame, write_frame

log = logging.getLogger("async_jobs_local")

# Process-level variables a child keeps from the parent; everything else comes from the function.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "PYTHONDONTWRITEBYTECODE")
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
INIT_TIMEOUT = 10.0


@dataclass(frozen=True)
class FunctionSpec:
    """What is needed to run one deployed function locally."""

    name: str
    handler: str  # "module.function", as in the deployed configuration
    code_dir: Path  # holds <module>.py
    library_paths: tuple[Path, ...]  # e.g. functions/shared (the async_jobs package)
    environment: Mapping[str, str]  # deployed Environment.Variables
    timeout: float  # seconds, deployed Timeout
    memory_mb: int = 128
    runtime_environment: Mapping[str, str] = field(default_factory=dict)  # endpoint, creds, region
    log_path: Path | None = None
    arn: str = ""

    def process_environment(self) -> dict[str, str]:
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python_local",
                "LAMBDA_TASK_ROOT": str(self.code_dir),
                "_HANDLER": self.handler,
            }
        )
        env.update(self.runtime_environment)
        env.update(self.environment)
        # No X-Ray daemon locally: keep the tracer quiet (it is a no-op outside Lambda anyway).
        env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        env["AWS_XRAY_SDK_ENABLED"] = "false"
        env["AWS_XRAY_CONTEXT_MISSING"] = "IGNORE_ERROR"
        return env


class InvocationError(Exception):
    """The function failed: its error payload (errorType, errorMessage, stackTrace) as Lambda gives it."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload.get('errorType')}: {payload.get('errorMessage')}")
        self.payload = payload


class FunctionTimeout(InvocationError):
    def __init__(self, name: str, timeout: float) -> None:
        super().__init__(
            {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"{name}: task timed out after {timeout:.2f} seconds",
            }
        )


class Sandbox:
    """One execution environment: a child process serving one invocation at a time."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        log_file = spec.log_path.open("ab") if spec.log_path else None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-u", str(BOOTSTRAP)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=spec.process_environment(),
                bufsize=0,
                close_fds=True,
            )
        finally:
            if log_file:
                log_file.close()
        assert self.process.stdin is not None and self.process.stdout is not None
        self._requests = self.process.stdin
        self._replies = self.process.stdout
        self._ready: bool | None = None
        self._init_error: dict[str, Any] | None = None
        self.invocations = 0
        write_frame(
            self._requests,
            {
                "name": spec.name,
                "arn": spec.arn,
                "handler": spec.handler,
                "memory_mb": spec.memory_mb,
                "code_dir": str(spec.code_dir),
                "library_paths": [str(path) for path in spec.library_paths],
            },
        )

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        ready, _, _ = select.select([self._replies], [], [], max(0.0, timeout))
        if not ready:
            return None
        reply: dict[str, Any] = read_frame(self._replies)
        return reply

    def _wait_ready(self, timeout: float) -> None:
        if self._ready is not None:
            if self._init_error:
                raise InvocationError(self._init_error)
            return
        try:
            reply = self._receive(timeout)
        except (EOFError, OSError):
            reply = {
                "kind": "init_error",
                "payload": {"errorType": "Runtime.ExitError", "errorMessage": "exited"},
            }
        if reply is None:
            self.kill()
            raise InvocationError(
                {"errorType": "Runtime.InitTimeout", "errorMessage": f"{self.spec.name}: init timed out"}
            )
        self._ready = reply["kind"] == "ready"
        if not self._ready:
            self._init_error = reply["payload"]
            self.kill()
            raise InvocationError(reply["payload"])

    def invoke(self, event: Any) -> Any:
        """Run the handler on ``event``; the handler's result, or InvocationError / FunctionTimeout."""
        # Lambda's init phase has its own budget (10 s), not counted in the function timeout.
        self._wait_ready(max(INIT_TIMEOUT, self.spec.timeout))
        started = time.time()
        deadline = started + self.spec.timeout
        request_id = str(uuid.uuid4())
        self.invocations += 1
        try:
            write_frame(self._requests, {"request_id": request_id, "event": event, "deadline": deadline})
            reply = self._receive(deadline - time.time())
        except (EOFError, OSError) as exc:
            self.kill()
            raise InvocationError(
                {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"{self.spec.name}: process exited ({exc})",
                }
            ) from None
        if reply is None:
            self.kill()
            raise FunctionTimeout(self.spec.name, self.spec.timeout)
        log.debug("%s %s %.0f ms", self.spec.name, request_id, (time.time() - started) * 1000)
        if reply["kind"] == "error":
            raise InvocationError(reply["payload"])
        return reply["payload"]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and self._init_error is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self._requests, self._replies):
            try:
                stream.close()
            except OSError:
                pass

    def close(self, timeout: float = 2.0) -> None:
        if self.process.poll() is None:
            try:
                write_frame(self._requests, None)
                self.process.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


class FunctionPool:
    """Warm execution environments of one function; grows on demand up to ``max_size``."""

    def __init__(self, spec: FunctionSpec, max_size: int | None = None) -> None:
        self.spec = spec
        self.max_size = max_size
        self._idle: list[Sandbox] = []
        self._all: list[Sandbox] = []
        self._lock = threading.Condition()
        self._closed = False

    def warm(self, count: int = 1) -> None:
        """Start ``count`` environments now, so the first invocations do not pay the cold start."""
        with self._lock:
            for _ in range(count - len(self._all)):
                sandbox = Sandbox(self.spec)
                self._all.append(sandbox)
                self._idle.append(sandbox)

    def _acquire(self) -> Sandbox:
        with self._lock:
            while True:
                if self._closed:
                    raise InvocationError({"errorType": "Local.Stopped", "errorMessage": "runtime stopped"})
                while self._idle:
                    sandbox = self._idle.pop()
                    if sandbox.alive:
                        return sandbox
                    self._all.remove(sandbox)
                if self.max_size is None or len(self._all) < self.max_size:
                    sandbox = Sandbox(self.spec)
                    self._all.append(sandbox)
                    return sandbox
                self._lock.wait()

    def _release(self, sandbox: Sandbox) -> None:
        with self._lock:
            if sandbox.alive and not self._closed:
                self._idle.append(sandbox)
            else:
                if sandbox in self._all:
                    self._all.remove(sandbox)
                sandbox.kill()
            self._lock.notify()

    def invoke(self, event: Any) -> Any:
        sandbox = self._acquire()
        try:
            return sandbox.invoke(event)
        finally:
            self._release(sandbox)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sandboxes = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._lock.notify_all()
        for sandbox in sandboxes:
            sandbox.close()
