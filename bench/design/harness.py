"""The handlers in-process against the AWS model, and the event source mapping that feeds them.

`Harness` sets the functions' environment, points their client factory at the model and loads
each handler fresh (a cold start). `EventSourceMapping` plays Lambda's SQS poller: worker
threads (one per concurrent execution) block on the queue's condition until a message is
visible (no polling), take up to `batch_size` messages, wait up to the batching window for a
fuller batch, invoke the worker handler and delete what it did not report failed; failed and
killed messages come back after the visibility timeout; a message received more often than
`max_receive_count` moves to the dead-letter queue, which the same function consumes.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .aws_model import EventsModel, Faults, Killed, Message, Queue, Requests, S3Model, SQSModel

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
BUCKET = "bench-state"
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/bench"
DLQ_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/bench-dlq"
CALLER = f"arn:aws:iam::{ACCOUNT}:user/bench"
_counter = itertools.count()


CONTRACT = ROOT / "functions" / "shared" / "async_jobs" / "contract.json"


def module_defaults() -> dict[str, Any]:
    """The module's defaults of the settings the design depends on: variables.tf's, or the
    contract's where the variable defaults to null."""
    text = (ROOT / "variables.tf").read_text()

    def default(name: str) -> Any:
        match = re.search(rf'variable "{name}" {{.*?\n  default\s*=\s*([^\n]+)', text, re.S)
        if match is None:
            raise LookupError(f"variables.tf has no default for {name}")
        return json.loads(match.group(1).strip())

    names = (
        "chunk_size",
        "max_receive_count",
        "worker_batch_size",
        "worker_maximum_batching_window_in_seconds",
        "worker_maximum_concurrency",
        "retry_after_seconds",
    )
    found = {name: default(name) for name in names}
    # a setting whose variable defaults to null takes the contract's default (main.tf)
    settings = json.loads(CONTRACT.read_text())["settings"]
    for name, value in found.items():
        if value is None and name in settings:
            found[name] = settings[name]["default"]
    if found["worker_maximum_batching_window_in_seconds"] is None:
        found["worker_maximum_batching_window_in_seconds"] = 1  # main.tf: 1 s on a standard queue
    return found


def load_handler(name: str) -> ModuleType:
    path = ROOT / "functions" / name / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}_{next(_counter)}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeContext:
    function_name = "bench-fn"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:bench-fn"
    log_group_name = "/aws/lambda/bench-fn"
    log_stream_name = "stream"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class WaitingSink:
    """A sink that waits one latency per chunk write and keeps the row indices by chunk, so the
    benchmark measures waiting, not serialising (a write replaces the chunk: idempotent)."""

    def __init__(self, latency: float, faults: Faults, requests: Requests) -> None:
        self.latency = latency
        self.faults = faults
        self.requests = requests
        self.rows: dict[tuple[str, int], list[int]] = {}
        self.lock = threading.Lock()

    def results_location(self, job_id: str) -> str:
        return f"bench://{job_id}/"

    def write(self, job_id: str, chunk: int, rows: Any) -> None:
        self.faults.check()
        time.sleep(self.latency)
        with self.lock:
            self.rows[(job_id, chunk)] = [index for index, _ in rows]
        self.requests.add("sink.write")

    def row_indices(self, job_id: str) -> list[int]:
        with self.lock:
            return [i for (job, _), rows in self.rows.items() if job == job_id for i in rows]


@dataclass
class Invocations:
    count: int = 0
    seconds: float = 0.0
    killed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, killed: bool) -> None:
        with self.lock:
            self.count += 1
            self.seconds += seconds
            self.killed += int(killed)


class Harness:
    def __init__(self, *, latency: float, env: dict[str, str], sink_latency: float | None = None) -> None:
        self.requests = Requests()
        self.faults = Faults()
        self.queue = Queue(QUEUE_URL, f"arn:aws:sqs:us-east-1:{ACCOUNT}:bench")
        self.dlq = Queue(DLQ_URL, f"arn:aws:sqs:us-east-1:{ACCOUNT}:bench-dlq")
        self.s3 = S3Model(latency, self.requests, self.faults)
        self.sqs = SQSModel(latency, self.requests, self.faults, {QUEUE_URL: self.queue, DLQ_URL: self.dlq})
        self.events = EventsModel(latency, self.requests, self.faults)
        self.sink = WaitingSink(latency if sink_latency is None else sink_latency, self.faults, self.requests)
        self.env = {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "bench",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
            "STATE_BUCKET": BUCKET,
            "QUEUE_URL": QUEUE_URL,
            "QUEUE_FIFO": "false",
            "API_TYPE": "rest",
            "AUTHORIZATION": "AWS_IAM",
            "EVENTS_ENABLED": "true",
            "SINK": "s3",
            "DEAD_LETTER_QUEUE_ARN": self.dlq.arn,
            **env,
        }
        self.changed = threading.Condition()
        self.s3.on_write = self._written

    def _written(self, key: str) -> None:
        if key.endswith("/state.json"):
            with self.changed:
                self.changed.notify_all()

    def client(self, service: str) -> Any:
        return {"s3": self.s3, "sqs": self.sqs, "events": self.events}[service]

    @contextmanager
    def running(self) -> Iterator[Harness]:
        """The environment and client factory of the functions, handlers loaded fresh."""
        import async_jobs.wiring.api as api_wiring  # noqa: PLC0415
        import async_jobs.wiring.worker as worker_wiring  # noqa: PLC0415

        saved_env = {name: os.environ.get(name) for name in self.env}
        saved = (api_wiring.client, worker_wiring.client, worker_wiring.build_sink)
        os.environ.update(self.env)
        api_wiring.client = self.client
        worker_wiring.client = self.client
        worker_wiring.build_sink = lambda config, store: self.sink
        try:
            self.submit = load_handler("submit")
            self.status = load_handler("status")
            self.worker = load_handler("worker")
            yield self
        finally:
            api_wiring.client, worker_wiring.client, worker_wiring.build_sink = saved
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    # -- the API -------------------------------------------------------------------------------
    def api(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        resource = "/jobs/{job_id}" if path.count("/") == 2 and not path.endswith("uploads") else path
        if path.endswith("/retry"):
            resource = "/jobs/{job_id}/retry"
        event = {
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": {"Host": "api.bench", **(headers or {})},
            "multiValueHeaders": {},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": {"job_id": path.split("/")[2]} if resource.startswith("/jobs/{") else None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": method,
                "path": "/prod" + path,
                "stage": "prod",
                "domainName": "api.bench",
                "requestId": str(uuid.uuid4()),
                "accountId": ACCOUNT,
                "apiId": "bench",
                "identity": {"userArn": CALLER, "sourceIp": "127.0.0.1"},
            },
            "body": body,
            "isBase64Encoded": False,
        }
        self.requests.add("apigateway.Request")
        module = self.status if method == "GET" else self.submit
        started = time.perf_counter()
        result = module.handler(event, FakeContext())
        self.api_seconds = time.perf_counter() - started
        raw = result.get("body") or ""
        return int(result["statusCode"]), json.loads(raw) if raw else None

    def state(self, job_id: str) -> dict[str, Any] | None:
        data = self.s3.body(f"jobs/{job_id}/state.json")
        return None if data is None else json.loads(data)

    def wait_terminal(self, job_id: str, timeout: float) -> dict[str, Any]:
        terminal = {"succeeded", "completed_with_errors", "failed", "cancelled", "expired"}
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                state = self.state(job_id)
                if state and state["status"] in terminal and not state.get("rerun"):
                    return state
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"job {job_id} did not end in {timeout} s: {state and state['status']}"
                    )
                self.changed.wait(min(left, 1.0))


def s3_notification(key: str, version: str, etag: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": BUCKET},
                        "object": {"key": key, "versionId": version, "eTag": etag.strip('"')},
                    },
                }
            ]
        }
    )


@dataclass
class Chaos:
    """Faults of the event source mapping: a share of invocations killed at a random AWS call,
    a share of deliveries duplicated (a message delivered again while its first delivery runs)."""

    kill: float = 0.0
    duplicate: float = 0.0
    seed: int = 7


class EventSourceMapping:
    def __init__(
        self,
        harness: Harness,
        *,
        workers: int,
        batch_size: int,
        window: float,
        max_receive_count: int,
        visibility: float = 0.2,
        chaos: Chaos | None = None,
    ) -> None:
        import random  # noqa: PLC0415

        self.h = harness
        self.workers = workers
        self.batch_size = batch_size
        self.window = window
        self.max_receive_count = max_receive_count
        self.visibility = visibility
        self.chaos = chaos or Chaos()
        self.random = random.Random(self.chaos.seed)
        self.random_lock = threading.Lock()
        self.invocations = Invocations()
        self.stopping = False
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self) -> EventSourceMapping:
        for queue in (self.h.queue, self.h.dlq):
            count = self.workers if queue is self.h.queue else 1
            for _ in range(count):
                thread = threading.Thread(target=self._run, args=(queue,), daemon=True)
                thread.start()
                self.threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping = True
        for queue in (self.h.queue, self.h.dlq):
            with queue.condition:
                queue.condition.notify_all()
        for thread in self.threads:
            thread.join(timeout=10)

    def _chance(self, share: float) -> bool:
        with self.random_lock:
            return share > 0 and self.random.random() < share

    def _take(self, queue: Queue) -> list[Message]:
        batch: list[Message] = []
        deadline: float | None = None
        with queue.condition:
            while not self.stopping:
                now = time.monotonic()
                next_due = queue.due(now)
                while queue.ready and len(batch) < self.batch_size:
                    message = queue.ready.popleft()
                    message.receives += 1
                    if queue is self.h.queue and message.receives > self.max_receive_count:
                        self.h.dlq.put(message.body)  # the redrive policy
                        continue
                    queue.in_flight[message.id] = message
                    batch.append(message)
                if batch and deadline is None:
                    deadline = now + self.window
                if len(batch) >= self.batch_size or (batch and now >= (deadline or now)):
                    return batch
                waits = [w for w in (None if deadline is None else deadline - now, next_due) if w is not None]
                queue.condition.wait(max(min(waits), 0.001) if waits else None)
        return batch

    def _settle(self, queue: Queue, messages: list[Message], failed: set[str]) -> None:
        later = time.monotonic() + self.visibility
        with queue.condition:
            for message in messages:
                queue.in_flight.pop(message.id, None)
                if message.id in failed:
                    message.visible_at = later
                    queue.add(message)
            queue.condition.notify_all()

    def _run(self, queue: Queue) -> None:
        dead_letter = queue is self.h.dlq
        while not self.stopping:
            batch = self._take(queue)
            if not batch:
                continue
            self.h.requests.add("sqs.ReceiveMessage")
            if not dead_letter:
                for message in batch:
                    if self._chance(self.chaos.duplicate):
                        queue.put(message.body)  # at-least-once: delivered again
            records = [
                {
                    "messageId": m.id,
                    "receiptHandle": m.id,
                    "body": m.body,
                    "attributes": {"ApproximateReceiveCount": str(m.receives)},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue.arn,
                    "awsRegion": "us-east-1",
                }
                for m in batch
            ]
            killed = False
            if not dead_letter and self._chance(self.chaos.kill):
                with self.random_lock:
                    self.h.faults.arm(self.random.randint(0, 12))
            started = time.perf_counter()
            try:
                result = self.h.worker.handler({"Records": records}, FakeContext())
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except Killed:
                killed, failed = True, {m.id for m in batch}
            except Exception as exc:  # noqa: BLE001 - the invocation failed: every message returns
                self.errors.append(exc)
                failed = {m.id for m in batch}
            finally:
                self.h.faults.arm(None)
            self.invocations.add(time.perf_counter() - started, killed)
            if len(failed) < len(batch):
                self.h.requests.add("sqs.DeleteMessageBatch")
            self._settle(queue, batch, failed)
