"""Shared fixtures: moto started before any client, handlers loaded fresh per test, drivers.

Handler modules are loaded by file path under unique names, so every test gets a cold start
(configuration parsed and clients built inside that test's moto).
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).parent / "events"
BUCKET = "async-jobs-state"
QUEUE_NAME = "async-jobs"
DLQ_NAME = "async-jobs-dlq"
ACCOUNT = "123456789012"
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{QUEUE_NAME}"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
MAX_RECEIVE_COUNT = 3

BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "async-jobs",
    "POWERTOOLS_METRICS_NAMESPACE": "AsyncJobs",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "STATE_BUCKET": BUCKET,
    "QUEUE_URL": QUEUE_URL,
    "QUEUE_FIFO": "false",
    "API_TYPE": "rest",
    "AUTHORIZATION": "AWS_IAM",
    "RETRY_AFTER_SECONDS": "2",
    "MAX_RECORDS_PER_JOB": "20000",
    "MAX_BODY_BYTES": "3000000",
    "UPLOAD_URL_TTL_SECONDS": "900",
    "CHUNK_SIZE": "4",
    "TOLERATED_FAILURE_PERCENT": "10",
    "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
    "SINK": "s3",
}
_UNSET = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "RECORD_SCHEMA_KEY", "RECORD_PROCESSOR")


def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """The process's own AWS credentials gone: each client of the test names who it is."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)


def pytest_configure(config: pytest.Config) -> None:
    # Powertools warns when an invocation published no application metric (GET, 304, ...).
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


_counter = itertools.count()


def load_handler(name: str) -> ModuleType:
    """functions/{name}/{name}.py under a fresh module name: a cold start."""
    path = ROOT / "functions" / name / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_handler_{next(_counter)}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeContext:
    function_name = "async-jobs-fn"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:async-jobs-fn"
    log_group_name = "/aws/lambda/async-jobs-fn"
    log_stream_name = "stream"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    return BASE_ENV


@dataclass
class Aws:
    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str

    def keys(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def get_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def put_json(self, key: str, data: Any) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(data).encode())

    def state(self, job_id: str) -> dict[str, Any]:
        return self.get_json(f"jobs/{job_id}/state.json")

    def counted(self, job_id: str) -> dict[str, Any]:
        """The state with its open accounting segments folded in (what the job has counted so
        far, rolled up or not): `succeeded_records`, `failed_records` and `done` chunk numbers."""
        from async_jobs import model

        state = self.state(job_id)
        attempt = int(state.get("attempt") or 0)
        done = model.chunk_numbers(model.ranges(state["done"]))
        counted = {**state, "done": list(done)}
        for key in self.keys(f"jobs/{job_id}/state/"):
            segment = self.get_json(key)
            chunks = model.chunk_numbers(model.ranges(segment["done"]))
            if int(segment["attempt"]) != attempt or any(n in done for n in chunks):
                continue  # another attempt's, or rolled up into the state already
            counted["succeeded_records"] += segment["succeeded"]
            counted["failed_records"] += segment["failed"]
            counted["done"] = sorted(counted["done"] + chunks)
        return counted

    def queue_depth(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture
def aws(env: dict[str, str]) -> Iterator[Aws]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        dlq_url = sqs.create_queue(QueueName=DLQ_NAME)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue_url = sqs.create_queue(
            QueueName=QUEUE_NAME,
            Attributes={
                "VisibilityTimeout": "60",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
                ),
            },
        )["QueueUrl"]
        assert queue_url == QUEUE_URL
        yield Aws(s3, sqs, queue_url, dlq_url)


@pytest.fixture
def atomic_s3_reads() -> Iterator[None]:
    """Serialise moto's in-process GetObject with writes of the same lock.

    Without a versioned bucket moto closes an object's buffer when it is overwritten, so a
    GET racing an overwrite can fail with "I/O operation on closed file" (AWS never does).
    atomic_conditional_writes() locks the writes; this adds the reads for threaded tests.
    """
    from moto.s3.responses import S3Response

    from async_jobs_local.moto_patches import S3_WRITE_LOCK

    original = S3Response.__dict__["get_object"]

    def get_object(self: Any) -> Any:
        with S3_WRITE_LOCK:
            return original(self)

    S3Response.get_object = get_object  # type: ignore[method-assign]
    try:
        yield
    finally:
        S3Response.get_object = original  # type: ignore[method-assign]


# -- API driver ---------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def json(self) -> Any:
        return self.body


def _normalize(result: dict[str, Any]) -> Reply:
    headers: dict[str, str] = {}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ", ".join(values)
    for name, value in (result.get("headers") or {}).items():
        headers[name.lower()] = value
    raw = result.get("body") or ""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw
    return Reply(int(result["statusCode"]), headers, body)


def _resource(path: str) -> str:
    if path.rstrip("/") in ("/jobs", "/jobs/uploads"):
        return path.rstrip("/")
    if path.rstrip("/").endswith("/retry"):
        return "/jobs/{job_id}/retry"
    return "/jobs/{job_id}"


@dataclass
class Api:
    kind: str = "rest"
    caller: str | None = ALICE
    submit: ModuleType | None = None
    status: ModuleType | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def event(
        self,
        method: str,
        path: str,
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        caller: str | None | object = ...,
        base64_body: bool = False,
    ) -> dict[str, Any]:
        who = self.caller if caller is ... else caller
        if isinstance(body, bytes | bytearray):
            text: str | None = base64.b64encode(body).decode() if base64_body else body.decode()
        elif body is not None and base64_body:
            text = base64.b64encode(body.encode()).decode()
        else:
            text = body
        if self.kind == "rest":
            event = load_event("rest_request.json")
            event["httpMethod"] = method
            event["path"] = path
            event["resource"] = _resource(path)
            event["requestContext"]["httpMethod"] = method
            event["requestContext"]["resourcePath"] = _resource(path)
            event["requestContext"]["path"] = "/prod" + path
            event["requestContext"]["identity"]["userArn"] = who
            if headers:
                event["headers"].update(headers)
        else:
            event = load_event("http_request.json")
            event["rawPath"] = path
            event["routeKey"] = f"{method} {_resource(path)}"
            event["requestContext"]["http"]["method"] = method
            event["requestContext"]["http"]["path"] = path
            event["requestContext"]["routeKey"] = event["routeKey"]
            if who is None:
                event["requestContext"].pop("authorizer", None)
            else:
                event["requestContext"]["authorizer"] = {"iam": {"userArn": who}}
            for name, value in (headers or {}).items():
                event["headers"][name.lower()] = value
        event["body"] = text
        event["isBase64Encoded"] = base64_body
        return event

    def send(self, event: dict[str, Any], *, to: str | None = None) -> Reply:
        method = event.get("httpMethod") or event["requestContext"]["http"]["method"]
        target = to or ("status" if method == "GET" else "submit")
        module = self.status if target == "status" else self.submit
        assert module is not None
        return _normalize(module.handler(copy.deepcopy(event), FakeContext()))

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Reply:
        return self.send(self.event(method, path, body, headers, **kwargs), to=kwargs.get("to"))

    def submit_json(self, document: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        return self.request("POST", "/jobs", json.dumps(document), all_headers, **kwargs)

    def get(self, job_id: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        return self.request("GET", f"/jobs/{job_id}", None, headers, **kwargs)

    def delete(self, job_id: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", f"/jobs/{job_id}", None, None, **kwargs)


@pytest.fixture
def api(aws: Aws) -> Api:
    return Api(submit=load_handler("submit"), status=load_handler("status"))


@pytest.fixture
def http_api(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("API_TYPE", "http")
    return Api(kind="http", submit=load_handler("submit"), status=load_handler("status"))


# -- worker driver --------------------------------------------------------------------------------
def sqs_record(body: Any, receive_count: int = 1, message_id: str | None = None) -> dict[str, Any]:
    record = load_event("sqs_record.json")
    record["body"] = body if isinstance(body, str) else json.dumps(body)
    record["messageId"] = message_id or str(uuid.uuid4())
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return record


@dataclass
class Worker:
    module: ModuleType
    aws: Aws
    invocations: int = 0
    failures: int = 0

    def invoke(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        self.invocations += 1
        result: dict[str, Any] = self.module.handler({"Records": records}, FakeContext())
        self.failures += len(result.get("batchItemFailures", []))
        return result

    def deliver(self, body: Any, receive_count: int = 1) -> dict[str, Any]:
        return self.invoke([sqs_record(body, receive_count)])

    def receive(self) -> list[dict[str, Any]]:
        response = self.aws.sqs.receive_message(
            QueueUrl=self.aws.queue_url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        return list(response.get("Messages", []))

    def drain(self, *, twice: bool = False, max_rounds: int = 10_000) -> int:
        """Play the event source mapping until the queue is empty.

        receive -> worker handler -> delete the messages not reported failed; failed ones
        become visible again at once. With `twice`, every message is first handled and put
        back (visibility 0) without delete, so SQS really delivers it a second time.
        """
        seen: set[str] = set()
        handled = 0
        for _ in range(max_rounds):
            messages = self.receive()
            if not messages:
                return handled
            records = [
                sqs_record(m["Body"], int(m["Attributes"]["ApproximateReceiveCount"]), m["MessageId"])
                for m in messages
            ]
            result = self.invoke(records)
            handled += len(records)
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            for message in messages:
                again = twice and message["MessageId"] not in seen
                seen.add(message["MessageId"])
                if message["MessageId"] in failed or again:
                    self.aws.sqs.change_message_visibility(
                        QueueUrl=self.aws.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=0,
                    )
                else:
                    self.aws.sqs.delete_message(
                        QueueUrl=self.aws.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        raise AssertionError("queue did not drain")


@pytest.fixture
def worker(aws: Aws) -> Worker:
    return Worker(load_handler("worker"), aws)


def records(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"item-{i}"} for i in range(start, start + count)]


def result_lines(aws: Aws, job_id: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for key in aws.keys(f"jobs/{job_id}/results/"):
        body = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        lines.extend(json.loads(line) for line in body.splitlines() if line)
    return lines
