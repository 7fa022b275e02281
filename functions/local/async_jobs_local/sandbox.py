"""One Lambda execution environment as a local process, running the function's package as shipped.

The process is ``python -I -S runtime_loop.py``: its ``sys.path`` is the function's unpacked
package (built by ``functions/build.py --host``) and the standard library, nothing else, so a
module the package lacks fails here as it fails on Lambda. Its environment is exactly the
deployed function's variables plus the runtime's own (region, endpoint, and temporary
credentials of the function's execution role). It imports the handler once (cold start) and
then serves one invocation at a time.

Why processes rather than threads: the handlers read their configuration and build their
clients once, at import; the ``async_jobs`` package and Powertools keep module-level
singletons. A process per environment gives each function its own environment, modules and
credentials, and lets a handler that overruns its timeout be stopped for real (the process is
killed, as Lambda does), which a thread could not be.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runtime_loop import read_frame, write_frame

log = logging.getLogger("async_jobs_local")

# Process-level variables a child keeps from the parent; everything else comes from the function.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
RUNTIME_LOOP = Path(__file__).with_name("runtime_loop.py")
INIT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Credentials:
    """Temporary credentials of an execution role, as Lambda hands them to an environment."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float  # epoch seconds

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


@dataclass(frozen=True)
class FunctionSpec:
    """What is needed to run one deployed function locally."""

    name: str
    handler: str  # "module.function", as in the deployed configuration
    code_dir: Path  # the function's unpacked package: its whole sys.path besides the stdlib
    environment: Mapping[str, str]  # deployed Environment.Variables
    timeout: float  # seconds, deployed Timeout
    memory_mb: int = 128
    runtime_environment: Mapping[str, str] = field(default_factory=dict)  # endpoint, region
    credentials: Callable[[], Credentials] | None = None  # the execution role's, fresh on each call
    log_path: Path | None = None
    arn: str = ""
    role: str = ""
    # Measurement hooks (instrumentation.Instruments): request counts, durations, latency rules.
    instruments: Any = None

    def process_environment(self, credentials: Credentials | None) -> dict[str, str]:
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
        if credentials is not None:
            env.update(credentials.environment())
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


class FunctionThrottled(InvocationError):
    """Lambda's TooManyRequestsException: every environment the function may have is busy."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(
            {
                "errorType": "TooManyRequestsException",
                "errorMessage": f"{name}: rate exceeded (concurrency limit {limit})",
            }
        )


class InitError(InvocationError):
    """The function's init phase failed (e.g. Runtime.ImportModuleError)."""


class Sandbox:
    """One execution environment: a child process serving one invocation at a time."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        credentials = spec.credentials() if spec.credentials else None
        self.credentials_expire_at = credentials.expiration if credentials else float("inf")
        log_file = spec.log_path.open("ab") if spec.log_path else None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-u", str(RUNTIME_LOOP)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=spec.process_environment(credentials),
                cwd=spec.code_dir,
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
                "instrument": spec.instruments is not None,
            },
        )

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        ready, _, _ = select.select([self._replies], [], [], max(0.0, timeout))
        if not ready:
            return None
        reply: dict[str, Any] = read_frame(self._replies)
        return reply

    def wait_ready(self, timeout: float = INIT_TIMEOUT) -> None:
        """Wait for the init phase; InitError (logged, naming the function) if it failed."""
        if self._ready is not None:
            if self._init_error:
                raise InitError(self._init_error)
            return
        try:
            reply = self._receive(timeout)
        except (EOFError, OSError):
            reply = {
                "kind": "init_error",
                "payload": {"errorType": "Runtime.ExitError", "errorMessage": "exited during init"},
            }
        if reply is None:
            self.kill()
            reply = {
                "kind": "init_error",
                "payload": {"errorType": "Runtime.InitTimeout", "errorMessage": "init timed out"},
            }
        self._ready = reply["kind"] == "ready"
        if self._ready and self.spec.instruments is not None and "measured" in reply:
            self.spec.instruments.record_init(self.spec, reply["measured"])
        if not self._ready:
            self._init_error = reply["payload"]
            self.kill()
            log.error(
                "%s: init failed: %s: %s (log: %s)",
                self.spec.name,
                self._init_error.get("errorType"),
                self._init_error.get("errorMessage"),
                self.spec.log_path,
            )
            raise InitError(self._init_error)

    def invoke(self, event: Any) -> Any:
        """Run the handler on ``event``; the handler's result, or InvocationError / FunctionTimeout."""
        # Lambda's init phase has its own budget (10 s), not counted in the function timeout.
        self.wait_ready(max(INIT_TIMEOUT, self.spec.timeout))
        started = time.time()
        deadline = started + self.spec.timeout
        request_id = str(uuid.uuid4())
        self.invocations += 1
        try:
            frame = {"request_id": request_id, "event": event, "deadline": deadline}
            if self.spec.instruments is not None:
                frame["latency"] = self.spec.instruments.latency_rules(self.spec.name)
            write_frame(self._requests, frame)
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
        if self.spec.instruments is not None and "measured" in reply:
            self.spec.instruments.record(self.spec, reply["measured"])
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
