"""Local execution environments: scale-out to the concurrency limit, throttling beyond, fresh credentials."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from async_jobs_local.pool import CREDENTIAL_MARGIN, FunctionPool
from async_jobs_local.sandbox import Credentials, FunctionSpec, FunctionThrottled


class FakeSandbox:
    """Stands in for a child process: records its credentials, holds each invocation until released."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        credentials = spec.credentials() if spec.credentials else None
        self.credentials_expire_at = credentials.expiration if credentials else float("inf")
        self.access_key = credentials.access_key_id if credentials else None
        self.alive = True
        self.closed = False
        self.gate: threading.Event | None = None

    def wait_ready(self, timeout: float = 10) -> None:
        pass

    def invoke(self, event: Any) -> Any:
        if event.get("hold"):
            event["hold"].wait(5)
        return {"key": self.access_key}

    def kill(self) -> None:
        self.alive = False

    def close(self) -> None:
        self.closed = True
        self.alive = False


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def spec(
    credentials: Any = None, timeout: float = 10.0, environment: dict[str, str] | None = None
) -> FunctionSpec:
    return FunctionSpec(
        name="fn",
        handler="fn.handler",
        code_dir=Path("."),
        environment=environment or {},
        timeout=timeout,
        credentials=credentials,
    )


def test_scales_out_to_the_limit_then_throttles() -> None:
    # GIVEN a function limited to 3 concurrent environments, throttling at once beyond
    pool = FunctionPool(spec(), max_size=3, throttle_wait=0, sandbox_factory=FakeSandbox)
    hold = threading.Event()
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(pool.invoke({"hold": hold}))) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while pool.size < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    # WHEN a 4th invocation arrives while 3 are running THEN it is throttled
    with pytest.raises(FunctionThrottled):
        pool.invoke({})
    hold.set()
    for thread in threads:
        thread.join()
    # and once they are done, the warm environments serve again, without a new cold start
    assert len(results) == 3 and pool.size == 3 and pool.peak == 3 and pool.throttles == 1
    pool.invoke({})
    assert pool.size == 3


def test_waits_for_a_free_environment_within_throttle_wait() -> None:
    pool = FunctionPool(spec(), max_size=1, throttle_wait=5, sandbox_factory=FakeSandbox)
    hold = threading.Event()
    first = threading.Thread(target=pool.invoke, args=({"hold": hold},))
    first.start()
    threading.Timer(0.2, hold.set).start()
    assert pool.invoke({}) == {"key": None}  # waited for the first to finish
    first.join()
    assert pool.throttles == 0


def test_environment_with_expiring_credentials_is_replaced() -> None:
    # GIVEN role sessions of one hour and a warm environment
    clock = Clock()
    issued: list[Credentials] = []

    def credentials() -> Credentials:
        issued.append(Credentials(f"ASIA{len(issued):016d}", "s", "t", clock() + 3600))
        return issued[-1]

    pool = FunctionPool(spec(credentials), max_size=2, clock=clock, sandbox_factory=FakeSandbox)
    assert pool.invoke({}) == {"key": issued[0].access_key_id}
    # WHEN its credentials would expire before an invocation could end
    clock.now += 3600 - 10.0 - CREDENTIAL_MARGIN + 1
    # THEN the next invocation runs in a new environment with fresh credentials
    assert pool.invoke({}) == {"key": issued[1].access_key_id}
    assert pool.size == 1


def test_environment_with_valid_credentials_is_reused() -> None:
    clock = Clock()
    calls = []

    def credentials() -> Credentials:
        calls.append(1)
        return Credentials("ASIA0000000000000000", "s", "t", clock() + 3600)

    pool = FunctionPool(spec(credentials), max_size=2, clock=clock, sandbox_factory=FakeSandbox)
    pool.invoke({})
    clock.now += 3000
    pool.invoke({})
    assert len(calls) == 1


def test_a_new_configuration_serves_every_invocation_after_the_update() -> None:
    # GIVEN two warm environments, one of them busy with an invocation
    sandboxes: list[FakeSandbox] = []

    def factory(spec: FunctionSpec) -> FakeSandbox:
        sandboxes.append(FakeSandbox(spec))
        return sandboxes[-1]

    pool = FunctionPool(spec(environment={"TABLE": "a"}), max_size=3, sandbox_factory=factory)
    pool.warm(2)
    hold = threading.Event()
    busy = threading.Thread(target=pool.invoke, args=({"hold": hold},))
    busy.start()
    deadline = time.monotonic() + 5
    while len(pool._idle) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    # WHEN the function's configuration changes (UpdateFunctionConfiguration)
    pool.reconfigure(spec(environment={"TABLE": "b"}))
    # THEN the idle environment is retired at once, the busy one finishes and is retired after
    assert [s.closed for s in sandboxes] == [False, True] or [s.closed for s in sandboxes] == [True, False]
    hold.set()
    busy.join()
    assert not any(s.alive for s in sandboxes) and pool.size == 0
    # and the next invocations run in environments started with the new configuration only
    pool.invoke({})
    pool.invoke({})
    assert len(sandboxes) == 3 and sandboxes[2].spec.environment == {"TABLE": "b"} and pool.size == 1
