"""A local execution environment runs its package alone: what the package lacks, the function lacks."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import pytest

from async_jobs_local.apigw import ApiGateway, Request
from async_jobs_local.sandbox import Credentials, FunctionSpec, FunctionTimeout, InitError, Sandbox


def package(tmp_path: Path, source: str) -> Path:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "fn.py").write_text(source)
    (code / "helper.py").write_text("VALUE = 'from the package'\n")
    return code


def spec(code: Path, tmp_path: Path) -> FunctionSpec:
    return FunctionSpec(
        name="local-fn",
        handler="fn.handler",
        code_dir=code,
        environment={"SETTING": "deployed"},
        timeout=5,
        credentials=lambda: Credentials("ASIA0000000000000001", "secret", "token", 2e9),
        log_path=tmp_path / "fn.log",
    )


def test_the_handler_sees_its_package_its_environment_and_its_role(tmp_path: Path) -> None:
    code = package(
        tmp_path,
        "import os, sys\n"
        "import helper\n"
        "def handler(event, context):\n"
        "    return {'helper': helper.VALUE, 'setting': os.environ['SETTING'],\n"
        "            'key': os.environ['AWS_ACCESS_KEY_ID'], 'path': sys.path, 'event': event}\n",
    )
    sandbox = Sandbox(spec(code, tmp_path))
    try:
        result = sandbox.invoke({"n": 1})
    finally:
        sandbox.close()
    assert (result["helper"], result["setting"], result["key"]) == (
        "from the package",
        "deployed",
        "ASIA0000000000000001",
    )
    assert result["event"] == {"n": 1}
    # nothing but the package and the standard library
    assert result["path"][0] == str(code)
    assert not [p for p in result["path"][1:] if "site-packages" in p or "functions" in p]


@pytest.mark.parametrize("module", ["moto", "async_jobs", "no_such_module"])
def test_a_module_missing_from_the_package_is_an_init_error(
    tmp_path: Path, module: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a handler importing a module its package does not ship (moto and async_jobs are
    # importable in the test's own interpreter)
    code = package(tmp_path, f"import {module}\ndef handler(event, context):\n    return 1\n")
    sandbox = Sandbox(spec(code, tmp_path))
    # WHEN it is invoked THEN init fails as on Lambda, naming the function and the module
    try:
        with caplog.at_level(logging.ERROR, "async_jobs_local"), pytest.raises(InitError) as failed:
            sandbox.invoke({})
    finally:
        sandbox.close()
    assert failed.value.payload["errorType"] == "Runtime.ImportModuleError"
    assert f"No module named '{module}'" in failed.value.payload["errorMessage"]
    assert "local-fn: init failed: Runtime.ImportModuleError: Unable to import module 'fn'" in caplog.text
    assert f"No module named '{module}'" in (tmp_path / "fn.log").read_text()


def test_an_init_error_is_a_502_on_the_api() -> None:
    def broken(function: str, event: dict[str, object]) -> object:
        raise InitError({"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'x'"})

    gateway = ApiGateway({"api_routes": {"POST /jobs": "submit"}}, broken)
    response = gateway.handle(Request("POST", "/jobs", (("Host", "h"),), b"{}"))
    assert (response.status, json.loads(response.body)) == (502, {"message": "Internal server error"})


def test_a_handler_that_overruns_its_timeout_is_killed(tmp_path: Path) -> None:
    # GIVEN a handler that runs past its function's timeout (as a worker stuck on a chunk)
    code = package(tmp_path, "import time\ndef handler(event, context):\n    time.sleep(60)\n")
    sandbox = Sandbox(dataclasses.replace(spec(code, tmp_path), timeout=1))
    # WHEN invoked THEN the invocation times out and its process is gone, as Lambda stops it
    started = time.monotonic()
    try:
        with pytest.raises(FunctionTimeout):
            sandbox.invoke({})
        assert time.monotonic() - started < 15
        assert not sandbox.alive and sandbox.process.poll() is not None
    finally:
        sandbox.close()
