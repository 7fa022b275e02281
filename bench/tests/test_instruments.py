"""The local stack's measurement hooks count what a function sends and slow what the rules name.

The function here is a real package (the worker's, as shipped) plus a handler that makes known
calls against a moto server: its counts must match them exactly, a lost conditional write must
show as a 412, and a latency rule must add its delay to the matching calls only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from async_jobs_local.instrumentation import Instruments
from async_jobs_local.local_functions import LocalFunction, package_for
from async_jobs_local.packages import build_packages
from async_jobs_local.sandbox import FunctionSpec, Sandbox

ROOT = Path(__file__).resolve().parents[2]

HANDLER = """
import os
import boto3
from botocore.exceptions import ClientError

s3 = boto3.client("s3")

def handler(event, context):
    for n in range(event["puts"]):
        s3.put_object(Bucket="bench-probe", Key=f"jobs/x/results/{n}.json", Body=b"{}")
    s3.put_object(Bucket="bench-probe", Key="jobs/x/state.json", Body=b"{}")
    try:
        s3.put_object(Bucket="bench-probe", Key="jobs/x/state.json", Body=b"{}", IfNoneMatch="*")
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"]
    return 200
"""


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    ).create_bucket(Bucket="bench-probe")
    yield url
    server.stop()


@pytest.mark.slow
def test_counts_conflicts_and_latency_come_from_inside_the_function(tmp_path: Path, endpoint: str) -> None:
    packages = build_packages(ROOT, tmp_path / "packages")
    source = tmp_path / "probe.py"
    source.write_text(HANDLER)
    code = package_for(
        LocalFunction("probe", "probe.handler", source, "worker"), tmp_path, packages / "worker"
    )
    instruments = Instruments()
    spec = FunctionSpec(
        name="probe",
        handler="probe.handler",
        code_dir=code,
        environment={"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"},
        timeout=30,
        runtime_environment={"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint},
        log_path=tmp_path / "probe.log",
        instruments=instruments,
    )
    sandbox = Sandbox(spec)
    try:
        assert sandbox.invoke({"puts": 3}) == 412
        snapshot = instruments.snapshot()
        assert snapshot["requests"]["probe"] == {
            "s3.PutObject": 3,
            "s3.PutObject@state": 2,
            "s3.PutObject@state!412": 1,
        }
        assert snapshot["invocations"] == {"probe": 1}
        assert instruments.clients["probe"] == ["s3"]

        fast = snapshot["seconds"]["probe"]
        instruments.set_latency("probe", [{"service": "s3", "key_contains": "/results/", "seconds": 0.2}])
        started = time.monotonic()
        sandbox.invoke({"puts": 2})
        assert time.monotonic() - started >= 0.4  # two matching calls, 0.2 s each
        slow = instruments.snapshot()["seconds"]["probe"] - fast
        assert 0.4 <= slow < 0.4 + 10 * max(fast, 0.05), (fast, slow)
        assert instruments.snapshot()["requests"]["probe"]["s3.PutObject"] == 5
    finally:
        sandbox.close()
