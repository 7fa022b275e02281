"""The execution environments of one function: warm reuse, scale-out up to its concurrency, throttling.

Like Lambda: an invocation takes an idle environment or starts a new one, up to the function's
concurrency limit (its reserved concurrency, or ``DEFAULT_CONCURRENCY`` standing in for the
account's unreserved pool). Beyond the limit an invocation waits up to ``throttle_wait`` seconds
for an environment to come free, then fails with ``FunctionThrottled`` (Lambda's 429
TooManyRequestsException); with ``throttle_wait=0`` it fails at once, as a synchronous Invoke does.
An environment whose role credentials would expire before an invocation could end is retired
and replaced by one with fresh credentials. After ``reconfigure`` (UpdateFunctionConfiguration)
no environment of the old configuration takes another invocation: those in flight finish, and
the next invocations start environments with the new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .faults import Faults
from .sandbox import FunctionSpec, FunctionThrottled, InvocationError, Sandbox

# The local stand-in for the account's unreserved concurrency: a 2-core machine starts about
# this many Python environments in a few seconds; more would only queue on the CPU.
DEFAULT_CONCURRENCY = 10
CREDENTIAL_MARGIN = 60.0  # seconds of validity an environment's credentials must have beyond its timeout


class FunctionPool:
    """Warm execution environments of one function; grows on demand up to ``max_size``."""

    def __init__(
        self,
        spec: FunctionSpec,
        max_size: int = DEFAULT_CONCURRENCY,
        *,
        throttle_wait: float = 0.0,
        clock: Callable[[], float] = time.time,
        sandbox_factory: Callable[[FunctionSpec], Any] = Sandbox,
        faults: Faults | None = None,
    ) -> None:
        self.spec = spec
        self.max_size = max(1, max_size)
        self.throttle_wait = throttle_wait
        self._clock = clock
        self._new = sandbox_factory
        self.faults = faults  # kills processes mid-invocation at the plan's rate (faults.py)
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self._starting = 0
        self._lock = threading.Condition()
        self._closed = False
        self.throttles = 0
        self.peak = 0

    @property
    def size(self) -> int:
        return len(self._all)

    def warm(self, count: int = 1) -> None:
        """Start ``count`` environments now and wait for their init (InitError if it fails)."""
        started = []
        with self._lock:
            for _ in range(min(count, self.max_size) - len(self._all)):
                sandbox = self._new(self.spec)
                self._all.append(sandbox)
                self._idle.append(sandbox)
                started.append(sandbox)
        for sandbox in started:
            sandbox.wait_ready()

    def reconfigure(self, spec: FunctionSpec) -> None:
        """Start every environment from now on with ``spec``; retire the idle ones of the old spec."""
        with self._lock:
            self.spec = spec
            retired, self._idle = self._idle, []
            for sandbox in retired:
                self._all.remove(sandbox)
        for sandbox in retired:
            sandbox.close()

    def _fresh(self, sandbox: Any) -> bool:
        return (
            sandbox.spec is self.spec
            and bool(sandbox.alive)
            and sandbox.credentials_expire_at - self._clock() > (self.spec.timeout + CREDENTIAL_MARGIN)
        )

    def _acquire(self) -> Any:
        deadline = time.monotonic() + self.throttle_wait
        retired = []
        try:
            with self._lock:
                while True:
                    if self._closed:
                        raise InvocationError(
                            {"errorType": "Local.Stopped", "errorMessage": "runtime stopped"}
                        )
                    while self._idle:
                        sandbox = self._idle.pop()
                        if self._fresh(sandbox):
                            return sandbox
                        self._all.remove(sandbox)
                        retired.append(sandbox)
                    if len(self._all) + self._starting < self.max_size:
                        self._starting += 1
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.throttles += 1
                        raise FunctionThrottled(self.spec.name, self.max_size)
                    self._lock.wait(remaining)
        finally:
            for sandbox in retired:
                sandbox.close()
        # A cold start happens outside the lock: other invocations keep being served meanwhile.
        try:
            sandbox = self._new(self.spec)
        finally:
            with self._lock:
                self._starting -= 1
        with self._lock:
            self._all.append(sandbox)
            self.peak = max(self.peak, len(self._all))
        return sandbox

    def _release(self, sandbox: Any) -> None:
        with self._lock:
            if sandbox.alive and not self._closed and sandbox.spec is self.spec:
                self._idle.append(sandbox)
            else:
                if sandbox in self._all:
                    self._all.remove(sandbox)
                sandbox.kill()
            self._lock.notify()

    def invoke(self, event: Any) -> Any:
        sandbox = self._acquire()
        # As Lambda on a timeout or out of memory: the process dies, whatever it was doing.
        records = event.get("Records") if isinstance(event, dict) else None
        disarm = self.faults.arm_kill(sandbox.process.kill, records) if self.faults else None
        try:
            return sandbox.invoke(event)
        finally:
            if disarm:
                disarm()
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
