"""Completion events and callbacks through the handlers (moto: S3, SQS, EventBridge, Secrets Manager).

The callback's HTTP request is replaced by a recorder (unit tests never touch the network); the
e2e module tests/e2e/test_notifications.py sends real signed HTTPS requests.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from async_jobs import callbacks, model
from async_jobs.callbacks import CallbackClient, Delivery, verify_signature
from async_jobs.messaging import JobQueue
from async_jobs.store import JobStore, Keys

from .conftest import BUCKET, Api, Aws, Worker, records

HOOK = "https://hooks.example.com/jobs/ended"


def notify() -> ModuleType:
    """async_jobs.notify, imported once the environment is set (Powertools reads it at import)."""
    return importlib.import_module("async_jobs.notify")


SECRET = "s3cr3t-signing-key"


@dataclass
class Recorder:
    """Stands in for the HTTPS request: scripted outcomes, every call kept."""

    script: list[Delivery] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    def deliver(self, url: str, body: bytes, event_id: str) -> Delivery:
        self.calls.append((url, json.loads(body), event_id))
        return self.script.pop(0) if self.script else Delivery("delivered", 200, "delivered")


@dataclass
class Bus:
    """A rule on the default bus that copies every event to a queue we read."""

    sqs: Any
    url: str

    def events(self) -> list[dict[str, Any]]:
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(CallbackClient, "deliver", recorder.deliver)
    return recorder


@pytest.fixture
def bus(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="callbacks", SecretString=SECRET)["ARN"]
    events = boto3.client("events", region_name="us-east-1")
    capture = aws.sqs.create_queue(QueueName="captured-events")["QueueUrl"]
    capture_arn = aws.sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="jobs", EventPattern=json.dumps({"source": ["async-jobs"]}))
    events.put_targets(Rule="jobs", Targets=[{"Id": "q", "Arn": capture_arn}])
    for name, value in {
        "EVENTS_ENABLED": "true",
        "EVENTS_SOURCE": "async-jobs",
        "CALLBACK_ALLOWED_HOSTS": "hooks.example.com,hooks.example.com:8443,*.partner.example",
        "CALLBACK_SECRET_ARN": arn,
        "CALLBACK_MAX_ATTEMPTS": "3",
    }.items():
        monkeypatch.setenv(name, value)
    yield Bus(aws.sqs, capture)


def _submit(api: Api, count: int = 6, callback: str | None = HOOK) -> str:
    headers = {"Callback-Url": callback} if callback else {}
    reply = api.submit_json({"records": records(count)}, headers)
    assert reply.status == 202, reply.body
    return str(reply.body["job_id"])


def test_a_job_ends_with_one_event_and_one_callback_though_every_message_comes_twice(
    bus: Bus, recorder: Recorder, api: Api, aws: Aws, worker: Worker
) -> None:
    # GIVEN a job of two chunks with a callback
    job_id = _submit(api)
    # WHEN the worker gets every message twice (split, chunks, notify)
    worker.drain(twice=True)
    # THEN one event on the default bus, source async-jobs, detail-type Job Ended, the job as detail
    events = bus.events()
    assert len(events) == 1, events
    event = events[0]
    assert (event["source"], event["detail-type"]) == ("async-jobs", "Job Ended")
    job = api.get(job_id).body
    assert event["detail"]["job_id"] == job_id and event["detail"]["status"] == "succeeded"
    assert event["detail"]["links"]["self"] == job["links"]["self"]
    # AND one callback attempt with the same resource and a stable event id
    assert len(recorder.calls) == 1
    url, body, event_id = recorder.calls[0]
    assert (url, body["status"], event_id) == (HOOK, "succeeded", f"{job_id}:0")
    # AND the job resource shows the delivery
    assert job["callback"]["status"] == "delivered"
    assert job["callback"]["attempts"] == 1 and job["callback"]["last_status"] == 200
    assert job["callback"]["last_attempt_at"] is not None


def test_a_callback_that_meets_503_is_retried_later_then_delivered(
    bus: Bus, recorder: Recorder, api: Api, aws: Aws, worker: Worker
) -> None:
    recorder.script = [Delivery("retry", 503, "HTTP 503")]
    job_id = _submit(api)
    worker.drain()
    # THEN attempt 1 is recorded and attempt 2 waits on the queue with a delay (SQS DelaySeconds)
    job = api.get(job_id).body
    assert job["callback"] == {**job["callback"], "status": "pending", "attempts": 1, "last_status": 503}
    delayed = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert delayed["ApproximateNumberOfMessagesDelayed"] == "1"
    # WHEN the delayed attempt arrives
    worker.deliver({"kind": "notify", "job_id": job_id, "attempt": 0, "delivery": 2})
    # THEN it is delivered; the event went out once, with the first attempt
    job = api.get(job_id).body
    assert (job["callback"]["status"], job["callback"]["attempts"]) == ("delivered", 2)
    assert len(recorder.calls) == 2 and len(bus.events()) == 1
    # AND a late duplicate of attempt 2 sends nothing
    worker.deliver({"kind": "notify", "job_id": job_id, "attempt": 0, "delivery": 2})
    assert len(recorder.calls) == 2


def test_a_4xx_is_final_and_the_last_attempt_fails_the_callback(
    bus: Bus, recorder: Recorder, api: Api, aws: Aws, worker: Worker
) -> None:
    recorder.script = [Delivery("failed", 404, "HTTP 404")]
    job_id = _submit(api)
    worker.drain()
    assert api.get(job_id).body["callback"]["status"] == "failed"
    assert aws.queue_depth() == 0  # nothing more queued
    # the last of CALLBACK_MAX_ATTEMPTS (3) that meets a 5xx fails too
    recorder.script = [Delivery("retry", 500, "HTTP 500")]
    other = _submit(api)
    worker.drain()
    for attempt in (2, 3):
        recorder.script = [Delivery("retry", 500, "HTTP 500")]
        worker.deliver({"kind": "notify", "job_id": other, "attempt": 0, "delivery": attempt})
    callback = api.get(other).body["callback"]
    assert (callback["status"], callback["attempts"], callback["last_status"]) == ("failed", 3, 500)


def test_a_cancel_on_the_api_side_notifies_too(
    bus: Bus, recorder: Recorder, api: Api, aws: Aws, worker: Worker
) -> None:
    # GIVEN a queued job nobody started WHEN it is cancelled (the submit function ends it)
    job_id = _submit(api)
    assert api.delete(job_id).body["status"] == "cancelled"
    # THEN its notify message is on the queue and the worker publishes the event and the callback
    worker.drain()
    events = bus.events()
    assert [e["detail"]["status"] for e in events] == ["cancelled"]
    assert [call[1]["status"] for call in recorder.calls] == ["cancelled"]


def refuse_first_notify(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """SQS refuses the first notify message sent; the refused message is kept in the list."""
    original = JobQueue.send_notify
    failures: list[dict[str, Any]] = []

    def flaky(self: JobQueue, message: dict[str, Any], **kwargs: Any) -> None:
        if not failures:
            failures.append(message)
            raise ConnectionError("network gone")
        original(self, message, **kwargs)

    monkeypatch.setattr(JobQueue, "send_notify", flaky)
    return failures


@pytest.mark.usefixtures("bus")
def test_a_crash_before_the_notify_message_is_sent_is_repaired_by_the_redelivery(
    recorder: Recorder, api: Api, aws: Aws, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = Bus(aws.sqs, aws.sqs.get_queue_url(QueueName="captured-events")["QueueUrl"])
    # GIVEN SQS refuses the first notify message (the worker that ended the job dies there)
    failures = refuse_first_notify(monkeypatch)
    job_id = _submit(api, count=4)  # one chunk: the chunk message ends the job
    # WHEN the queue is drained (the failed chunk message comes back)
    worker.drain()
    # THEN the job ended once and was notified once
    assert failures and aws.state(job_id)["notify"] == model.NOTIFY_QUEUED
    assert len(bus.events()) == 1 and len(recorder.calls) == 1


def test_events_off_and_no_callback_queue_nothing(
    api: Api, aws: Aws, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTS_ENABLED", "false")
    job_id = _submit(api, callback=None)
    worker.drain()
    assert aws.state(job_id)["status"] == "succeeded"
    assert aws.queue_depth() == 0 and api.get(job_id).body["callback"] is None


def test_callback_url_needs_an_allowed_host(bus: Bus, api: Api) -> None:
    for url in ("https://x.partner.example/h", "https://hooks.example.com:8443/h?a=1"):
        assert api.submit_json({"records": records(1)}, {"Callback-Url": url}).status == 202
    for url in (
        "http://hooks.example.com/h",
        "https://partner.example/h",
        "https://10.0.0.1/h",
        "https://hooks.example.com:22/h",  # an allowed host on a port its entry does not name
    ):
        reply = api.submit_json({"records": records(1)}, {"Callback-Url": url})
        assert reply.status == 400 and reply.body["errors"][0]["parameter"] == "Callback-Url"
    upload = api.request(
        "POST",
        "/jobs/uploads",
        "{}",
        {"Content-Type": "application/json", "Callback-Url": "https://evil.test/"},
    )
    assert upload.status == 400


def test_callbacks_are_refused_when_no_host_is_allowed(api: Api, aws: Aws) -> None:
    reply = api.submit_json({"records": records(1)}, {"Callback-Url": HOOK})
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/problem+json"
    assert "not enabled" in reply.body["detail"]
    assert aws.keys("jobs/") == []  # a rejected request stores nothing


# -- claims, publisher and signature, one at a time -------------------------------------------------
def _ended_state(store: JobStore, job_id: str) -> None:
    moment = model.now()
    state = model.new_state(
        job_id=job_id,
        owner=None,
        status=model.JobStatus.QUEUED,
        input_key="x",
        total_records=0,
        metadata=None,
        moment=moment,
    )
    model.transition(state, model.JobStatus.CANCELLED, moment)
    store.create_state(state)


class CountingEvents:
    def __init__(self, failures: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures = failures

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries[0])
        if len(self.calls) <= self.failures:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]}


def _notifier(aws: Aws, events: Any, claims: Any = None) -> Any:
    n = notify()
    store = JobStore(aws.s3, BUCKET)
    publisher = n.EventPublisher(events, n.EventSettings(bus_name="jobs-bus"), sleep=lambda _: None)
    return n.Notifier(store, JobQueue(aws.sqs, aws.queue_url), events=publisher, claims=claims)


def test_a_stale_claim_is_taken_over_and_a_fresh_one_waits(aws: Aws) -> None:
    job_id = model.new_job_id()
    events = CountingEvents()
    store = JobStore(aws.s3, BUCKET)
    _ended_state(store, job_id)
    n = notify()
    key = n.Claims.key(job_id, 0, "event")
    old = model.isoformat(model.now() - timedelta(minutes=5))
    store.put_json(key, {"state": "claimed", "claimed_at": old})
    # a claim left by a worker that died before publishing: taken over, published
    _notifier(aws, events).handle(n.NotifyRef(job_id, 0))
    assert len(events.calls) == 1 and events.calls[0]["EventBusName"] == "jobs-bus"
    assert store.get_json(key)["state"] == "done"
    # a claim being published right now: the duplicate waits, then leaves it to SQS
    store.put_json(key, {"state": "claimed", "claimed_at": model.isoformat(model.now())})
    quick = n.Claims(store, wait_seconds=0.2, sleep=lambda _: None)
    with pytest.raises(n.NotificationBusy):
        _notifier(aws, events, quick).handle(n.NotifyRef(job_id, 0))
    assert len(events.calls) == 1


def test_put_events_failures_are_retried_and_a_persistent_one_releases_the_claim(aws: Aws) -> None:
    job_id = model.new_job_id()
    store = JobStore(aws.s3, BUCKET)
    _ended_state(store, job_id)
    n = notify()
    flaky = CountingEvents(failures=2)
    _notifier(aws, flaky).handle(n.NotifyRef(job_id, 0))
    assert len(flaky.calls) == 3
    other = model.new_job_id()
    _ended_state(store, other)
    broken = CountingEvents(failures=99)
    with pytest.raises(n.PublishFailed):
        _notifier(aws, broken).handle(n.NotifyRef(other, 0))
    assert store.get_json(n.Claims.key(other, 0, "event")) is None  # the redelivery publishes


def test_a_notification_of_a_job_that_runs_again_is_dropped(aws: Aws) -> None:
    job_id = model.new_job_id()
    store = JobStore(aws.s3, BUCKET)
    _ended_state(store, job_id)
    events = CountingEvents()
    _notifier(aws, events).handle(notify().NotifyRef(job_id, 1))  # a retry's attempt the state is not at
    assert events.calls == []


def test_the_request_is_signed_with_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: dict[str, Any] = {}

    class FakeResponse:
        status = 204

        def read(self, size: int) -> bytes:
            return b""

    class FakeConnection:
        def __init__(self, host: str, port: int, address: str, context: Any, timeout: float) -> None:
            sent.update(host=host, port=port, address=address, timeout=timeout)

        def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
            sent.update(method=method, path=path, body=body, headers=headers)

        def getresponse(self) -> FakeResponse:
            return FakeResponse()

        def cut(self) -> None:
            return None

        def close(self) -> None:
            return None

    monkeypatch.setattr(callbacks, "_PinnedHTTPSConnection", FakeConnection)
    monkeypatch.setattr(callbacks, "resolve", lambda host, port, allow_private: "203.0.113.9")
    client = CallbackClient(
        secret=lambda: b"key", allowed_hosts=["hooks.example.com"], clock=lambda: 1_700_000_000
    )
    outcome = client.deliver("https://hooks.example.com/p?q=1", b'{"a":1}', "job:0")
    assert outcome.outcome == "delivered"
    assert (sent["method"], sent["path"], sent["address"]) == ("POST", "/p?q=1", "203.0.113.9")
    headers = sent["headers"]
    assert headers["Async-Jobs-Event-Id"] == "job:0"
    signature = headers["Async-Jobs-Signature"]
    assert verify_signature(b"key", b'{"a":1}', signature, "job:0", now=1_700_000_001)
    # a host taken off the allow-list since submit is not called
    assert client.deliver("https://gone.example.com/p", b"{}", "job:0").outcome == "failed"


def test_the_errors_link_an_ending_carries_lives_errors_url_ttl_seconds(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the worker configured as the status function is (ERRORS_URL_TTL_SECONDS)
    from async_jobs.config import WorkerConfig  # noqa: PLC0415
    from async_jobs.wiring.worker import notifier  # noqa: PLC0415

    monkeypatch.setenv("ERRORS_URL_TTL_SECONDS", "120")
    store = JobStore(aws.s3, BUCKET)
    notifying = notifier(WorkerConfig.from_env().notify, store, JobQueue(aws.sqs, aws.queue_url))
    # WHEN the resource of an ended job with an errors report is rendered for its event/callback
    job_id = model.new_job_id()
    _ended_state(store, job_id)
    state = {**store.get_json(f"jobs/{job_id}/state.json"), "errors_report": "written"}
    signed_at = time.time()
    link = notifying.resource(state)["links"]["errors"]
    # THEN its errors link is signed for that long, not a constant of its own
    expires = int(parse_qs(urlsplit(link).query)["Expires"][0])
    assert signed_at + 110 <= expires <= signed_at + 130


def test_an_event_carries_no_presigned_link_and_no_callback_url(aws: Aws) -> None:
    # GIVEN an ended job with an errors report and a callback
    job_id = model.new_job_id()
    store = JobStore(aws.s3, BUCKET)
    _ended_state(store, job_id)
    store.put_json(Keys.errors(job_id), {"report": True})

    def with_report_and_callback(current: dict[str, Any]) -> bool:
        current["errors_report"] = "written"
        current["callback"] = {"url": HOOK, "status": "delivered", "attempts": 1}
        return True

    store.update_state(job_id, with_report_and_callback)
    events = CountingEvents()
    n = notify()
    notifier = _notifier(aws, events)
    # the owner's resource has both
    owned = notifier.resource(store.get_state(job_id)[0])
    assert owned["links"]["errors"] and owned["callback"]["url"] == HOOK
    # WHEN its event is published THEN the detail carries neither: anyone who may put rules on
    # the bus receives it
    notifier.handle(n.NotifyRef(job_id, 0))
    detail = json.loads(events.calls[0]["Detail"])
    assert detail["job_id"] == job_id and detail["links"]["errors"] is None
    assert "url" not in detail["callback"] and detail["callback"]["status"] == "delivered"
    assert HOOK not in events.calls[0]["Detail"] and "Signature" not in events.calls[0]["Detail"]
