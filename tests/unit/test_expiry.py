"""Upload slots that expire: the expire message writes the ending and it is notified once.

Through the handlers (moto: S3, SQS, EventBridge); the clock is injected where the delay or the
due time matters (the shipped wiring's Expiry, or one built here on the same moto).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from async_jobs import model
from async_jobs.messaging import JobQueue, fair_group
from async_jobs.store import JobStore

from .conftest import ALICE, BUCKET, MAX_RECEIVE_COUNT, Api, Aws, Worker
from .test_api_listing import list_jobs
from .test_dead_letters import dead_letter, dl_worker, queued  # noqa: F401 - dl_worker: fixture
from .test_notifications import Bus, Recorder, bus, recorder, refuse_first_notify  # noqa: F401 - fixtures

HOOK = "https://hooks.example.com/jobs/ended"


@dataclass
class RecordingSqs:
    """The moto SQS client, with every SendMessage's parameters kept."""

    sqs: Any
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send_message(self, **kwargs: Any) -> Any:
        self.sent.append(kwargs)
        return self.sqs.send_message(**kwargs)

    def expires(self) -> list[dict[str, Any]]:
        return [s for s in self.sent if json.loads(s["MessageBody"])["kind"] == "expire"]


def expiry() -> Any:
    """async_jobs.expiry, imported once the environment is set (Powertools reads it at import)."""
    import async_jobs.expiry as module  # noqa: PLC0415

    return module


def open_slot(api: Api, headers: dict[str, str] | None = None) -> str:
    reply = api.request(
        "POST", "/jobs/uploads", "{}", {"Content-Type": "application/json", **(headers or {})}
    )
    assert reply.status == 201, reply.body
    return str(reply.body["job_id"])


def delayed(aws: Aws) -> int:
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


MARGIN = model.UPLOAD_LANDING_MARGIN_SECONDS


def past_due(aws: Aws, job_id: str, seconds: float = MARGIN + 1.0) -> None:
    """The slot's landing deadline moved to just behind us (the TTL is at least 60 s)."""
    state = aws.state(job_id)
    state["expires_at"] = model.isoformat(model.now() - timedelta(seconds=seconds))
    aws.put_json(f"jobs/{job_id}/state.json", state)


def expire_message(job_id: str) -> dict[str, Any]:
    return {"kind": "expire", "job_id": job_id}


# -- submit -----------------------------------------------------------------------------------
def test_a_slot_queues_its_expiry_delayed_up_to_expires_at(api: Api, aws: Aws, worker: Worker) -> None:
    # GIVEN / WHEN an upload slot is opened (UPLOAD_URL_TTL_SECONDS 900)
    open_slot(api)
    # THEN one message waits on the queue, delayed: nothing is receivable now
    assert delayed(aws) == 1 and queued(aws) == []


def _submit_service(aws: Aws, sqs: Any, ttl: int, moment: datetime, *, fifo: bool = False) -> Any:
    from async_jobs.service import JobViews, SubmitService  # noqa: PLC0415

    store = JobStore(aws.s3, BUCKET)
    queue = JobQueue(sqs, aws.queue_url if not fifo else _fifo_queue(aws), fifo=fifo)
    views = JobViews(store, retry_after_seconds=2, clock=lambda: moment)
    return SubmitService(
        store,
        queue,
        views,
        authorization="AWS_IAM",
        max_records_per_job=100,
        max_body_bytes=10_000,
        upload_url_ttl_seconds=ttl,
        clock=lambda: moment,
    )


def _fifo_queue(aws: Aws) -> str:
    return str(aws.sqs.create_queue(QueueName="jobs.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"])


@pytest.mark.parametrize(("ttl", "delay"), [(60, 60 + MARGIN), (600, 600 + MARGIN), (3600, 900)])
def test_the_expire_message_is_delayed_to_expires_at_plus_the_landing_margin_at_most_900(
    aws: Aws, ttl: int, delay: int
) -> None:
    sqs = RecordingSqs(aws.sqs)
    moment = model.parse_time("2026-01-01T00:00:00.250Z")
    outcome = _submit_service(aws, sqs, ttl, moment).create_upload(
        owner=ALICE, body=b"", content_type=None, url_for=lambda job: f"https://api/jobs/{job}"
    )
    [sent] = sqs.expires()
    assert json.loads(sent["MessageBody"]) == {"kind": "expire", "job_id": outcome.body["job_id"]}
    # standard queue: the job's fair-sharing group (its caller) and the delay
    assert sent["DelaySeconds"] == delay
    assert sent["MessageGroupId"] == fair_group(ALICE, outcome.body["job_id"])


def test_on_a_fifo_queue_the_expire_message_has_no_delay_and_its_own_group(aws: Aws) -> None:
    sqs = RecordingSqs(aws.sqs)
    moment = model.now()
    outcome = _submit_service(aws, sqs, 600, moment, fifo=True).create_upload(
        owner=ALICE, body=b"", content_type=None, url_for=lambda job: f"https://api/jobs/{job}"
    )
    job_id = outcome.body["job_id"]
    [sent] = sqs.expires()
    assert "DelaySeconds" not in sent  # SQS refuses a per-message delay on a FIFO queue
    assert (sent["MessageGroupId"], sent["MessageDeduplicationId"]) == (
        f"{job_id}:expire",
        f"{job_id}:expire",
    )
    # AND the worker that receives it early leaves it to come back (visibility timeout)
    store = JobStore(aws.s3, BUCKET)
    queue = JobQueue(sqs, sent["QueueUrl"], fifo=True)
    early = expiry().Expiry(store, queue, clock=lambda: moment + timedelta(seconds=30))
    with pytest.raises(expiry().ExpiryNotDue):
        early.handle(expiry().ExpireRef(job_id))
    assert len(sqs.expires()) == 1 and aws.state(job_id)["status"] == "awaiting_upload"
    # AND once due it expires the slot
    early = expiry().Expiry(store, queue, clock=lambda: moment + timedelta(seconds=601))
    with pytest.raises(expiry().ExpiryNotDue):  # past expires_at, within the landing margin
        early.handle(expiry().ExpireRef(job_id))
    late = expiry().Expiry(store, queue, clock=lambda: moment + timedelta(seconds=601 + MARGIN))
    late.handle(expiry().ExpireRef(job_id))
    assert aws.state(job_id)["status"] == "expired"


def test_a_slot_whose_expiry_cannot_be_queued_is_not_created(
    api: Api, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(self: JobQueue, message: dict[str, Any], **kwargs: Any) -> None:
        raise ConnectionError("SQS unreachable")

    monkeypatch.setattr(JobQueue, "send_expire", refused)
    reply = api.request("POST", "/jobs/uploads")
    # THEN a 5xx problem, no URL, and nothing stored (no state, no index entry)
    assert reply.status == 500 and reply.headers["content-type"] == "application/problem+json"
    assert "upload" not in reply.body
    assert aws.keys() == []


# -- worker -----------------------------------------------------------------------------------
def test_a_due_slot_expires_once_and_is_notified_once_though_every_message_comes_twice(
    bus: Bus,  # noqa: F811
    recorder: Recorder,  # noqa: F811
    api: Api,
    aws: Aws,
    worker: Worker,
) -> None:
    # GIVEN a slot with a callback whose expiry has passed, nothing uploaded
    job_id = open_slot(api, {"Callback-Url": HOOK})
    past_due(aws, job_id)
    # WHEN its expire message is delivered twice
    for _ in range(2):
        assert worker.deliver(expire_message(job_id)) == {"batchItemFailures": []}
    # THEN the state is written expired, with its finished_at
    state = aws.state(job_id)
    assert state["status"] == "expired" and state["finished_at"]
    # AND exactly one notify message was queued
    notifies = queued(aws)
    assert notifies == [{"kind": "notify", "job_id": job_id, "attempt": 0, "delivery": 1}]
    # WHEN the notify message is delivered twice
    for message in notifies * 2:
        worker.deliver(message)
    # THEN one Job Ended event with status expired, and one callback
    events = bus.events()
    assert [(e["detail-type"], e["detail"]["status"]) for e in events] == [("Job Ended", "expired")]
    assert [(call[1]["status"], call[2]) for call in recorder.calls] == [("expired", f"{job_id}:0")]
    # AND the listing and the job agree: expired
    assert api.get(job_id).body["status"] == "expired"
    listed = list_jobs(api, {"status": "expired"}).body
    assert [job["job_id"] for job in listed["items"]] == [job_id]


@pytest.mark.usefixtures("bus")
def test_a_crash_between_the_expiry_and_its_notify_is_repaired_by_the_redelivery(
    api: Api, aws: Aws, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = open_slot(api)
    past_due(aws, job_id)
    failures = refuse_first_notify(monkeypatch)
    # WHEN the first delivery writes the expiry and dies sending the notify message
    assert worker.deliver(expire_message(job_id))["batchItemFailures"] and failures
    assert aws.state(job_id)["notify"] == model.NOTIFY_PENDING
    # THEN the redelivery queues it, once
    assert worker.deliver(expire_message(job_id)) == {"batchItemFailures": []}
    assert aws.state(job_id)["notify"] == model.NOTIFY_QUEUED
    assert [m["kind"] for m in queued(aws)] == ["notify"]


def _shipped_expiry(worker: Worker) -> Any:
    return worker.module.runtime().engine.expiry


def test_an_expire_message_that_comes_early_is_sent_again_with_the_remaining_delay(
    api: Api, aws: Aws, worker: Worker
) -> None:
    job_id = open_slot(api)
    queued(aws)
    expires_at = model.parse_time(aws.state(job_id)["expires_at"])
    shipped = _shipped_expiry(worker)
    sqs = RecordingSqs(aws.sqs)
    shipped.queue.sqs = sqs
    # WHEN it comes 2,000 s early (a TTL of up to 3600 s outlasts one 900 s delay), then 300.4 s
    for before, delay in ((2000.0, 900), (300.4, 301 + MARGIN)):
        shipped.clock = lambda before=before: expires_at - timedelta(seconds=before)
        # the body says nothing the worker believes beyond the job id
        body = {**expire_message(job_id), "expires_at": "2000-01-01T00:00:00.000Z"}
        assert worker.deliver(body) == {"batchItemFailures": []}
        # THEN it is sent again with the remaining delay (at most 900 s), in the job's group
        sent = sqs.expires()[-1]
        assert json.loads(sent["MessageBody"]) == expire_message(job_id)
        assert sent["DelaySeconds"] == delay
        assert sent["MessageGroupId"] == fair_group(ALICE, job_id)
    assert aws.state(job_id)["status"] == "awaiting_upload" and len(sqs.sent) == 2


def test_an_upload_that_landed_first_wins_and_a_late_expiry_does_nothing(
    api: Api, aws: Aws, worker: Worker
) -> None:
    from .test_worker import upload_event  # noqa: PLC0415

    # GIVEN a slot whose upload landed and was announced: the job runs and ends
    job_id = open_slot(api)
    aws.s3.put_object(Bucket=BUCKET, Key=f"jobs/{job_id}/upload.ndjson", Body=b'{"a": 1}\n{"a": 2}\n')
    worker.deliver(upload_event(job_id, model.isoformat(model.now())))
    worker.drain()
    before = aws.state(job_id)
    assert before["status"] == "succeeded"
    # WHEN its expire message comes due afterwards
    _shipped_expiry(worker).clock = lambda: model.now() + timedelta(hours=2)
    assert worker.deliver(expire_message(job_id)) == {"batchItemFailures": []}
    # THEN nothing changes and nothing is queued
    after = aws.state(job_id)
    assert after["status"] == "succeeded" and after["finished_at"] == before["finished_at"]
    assert queued(aws) == []


def test_a_slot_due_while_its_upload_is_not_yet_announced_starts_from_the_upload(
    api: Api, aws: Aws, worker: Worker
) -> None:
    # GIVEN an object that landed in time, whose S3 notification has not been handled (or was lost)
    job_id = open_slot(api)
    queued(aws)
    aws.s3.put_object(Bucket=BUCKET, Key=f"jobs/{job_id}/upload.ndjson", Body=b'{"a": 1}\n')
    expires_at = model.parse_time(aws.state(job_id)["expires_at"])
    # WHEN the expire message comes due
    _shipped_expiry(worker).clock = lambda: expires_at + timedelta(seconds=MARGIN + 5)
    assert worker.deliver(expire_message(job_id)) == {"batchItemFailures": []}
    # THEN the upload starts the job (it landed before expires_at) instead of expiring it
    assert aws.state(job_id)["status"] == "queued"
    worker.drain()
    assert aws.state(job_id)["status"] == "succeeded"


def test_expire_messages_are_read_like_the_others(aws: Aws, worker: Worker) -> None:
    # a job id that is not a UUID: unreadable, retried, never a job's
    assert worker.deliver({"kind": "expire", "job_id": "../state"})["batchItemFailures"]
    # an unknown job: dropped
    assert worker.deliver(expire_message(model.new_job_id())) == {"batchItemFailures": []}
    assert aws.keys() == []


def test_a_dead_lettered_expire_message_expires_the_slot_and_never_fails_it(
    api: Api,
    aws: Aws,
    dl_worker: Worker,  # noqa: F811
) -> None:
    job_id = open_slot(api)
    past_due(aws, job_id)
    reply = dl_worker.invoke([dead_letter(json.dumps(expire_message(job_id)))])
    assert reply == {"batchItemFailures": []}
    state = aws.state(job_id)
    assert state["status"] == "expired" and state["reason"] is None
    # AND the dead letter is kept in its job, as every other
    assert len(aws.keys(f"jobs/{job_id}/dead-letters/")) == 1


def test_an_upload_handled_between_the_expiry_read_and_its_write_wins(api: Api, aws: Aws) -> None:
    # GIVEN a due slot whose upload notification is handled while the expiry looks for the object
    job_id = open_slot(api)
    store = JobStore(aws.s3, BUCKET)
    expires_at = model.parse_time(aws.state(job_id)["expires_at"])

    def started_meanwhile(job: str) -> bool:
        def start(current: dict[str, Any]) -> bool:
            model.transition(current, model.JobStatus.QUEUED, model.now())
            return True

        store.update_state(job, start)
        return False  # the object was not there yet when it looked

    racing = expiry().Expiry(
        store,
        JobQueue(aws.sqs, aws.queue_url),
        landed=started_meanwhile,
        clock=lambda: expires_at + timedelta(seconds=MARGIN + 5),
    )
    # WHEN the expiry writes THEN its compare-and-swap finds the job started and writes nothing
    racing.handle(expiry().ExpireRef(job_id))
    state = aws.state(job_id)
    assert state["status"] == "queued" and state["notify"] is None


def test_an_expire_message_failing_on_its_last_receive_leaves_the_slot_to_the_dead_letter_queue(
    api: Api, aws: Aws, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = open_slot(api)
    past_due(aws, job_id)

    def unreachable(self: JobStore, key: str) -> None:
        raise ConnectionError("S3 unreachable")

    monkeypatch.setattr(JobStore, "head_landed", unreachable)
    # WHEN the expiry fails on the message's last receive
    assert worker.deliver(expire_message(job_id), receive_count=MAX_RECEIVE_COUNT)["batchItemFailures"]
    # THEN the slot is not failed for it (the dead-letter queue applies the expiry)
    assert aws.state(job_id)["status"] == "awaiting_upload"
