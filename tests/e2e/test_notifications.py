"""e2e: completion events and signed callbacks on the local stack.

examples/local applied to a moto server with callbacks allowed to `localhost` and a local HTTPS
receiver (its own CA, trusted by the worker through `callbacks.ca_bundle_pem`, never with TLS
verification off). Every worker message, notifications included, is delivered twice
concurrently (FaultPlan duplicate_rate = 1): a terminal job still yields exactly one event in the
local event log (logs/events.ndjson) and one callback whose signature the receiver verifies with
the secret read from Secrets Manager.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from async_jobs.callbacks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from async_jobs_local import JobsClient, LocalDeployment
from async_jobs_local.faults import FaultPlan

from ..tls import certificates
from .conftest import TERMINAL, start_stack, wait_for

pytestmark = pytest.mark.slow


# -- a local HTTPS receiver with its own CA (tests/tls.py) ------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each path with its scripted statuses (then 200) and keeps every request."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    secret: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        verified = None
        if self.secret is not None:
            verified = verify_signature(
                self.secret,
                body,
                headers.get(SIGNATURE_HEADER.lower(), ""),
                headers.get(EVENT_ID_HEADER.lower(), ""),
            )
        with self.lock:
            self.received.append(Received(path, headers, body, verified))
            statuses = self.script.get(path) or []
            if statuses:
                return statuses.pop(0)
        return 200 if verified is not False else 401

    def for_job(self, job_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.json().get("job_id") == job_id]


def _serve(receiver: Receiver, cert: Path, key: Path) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver.answer(self.path, body, headers)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    receiver.port = int(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Setup:
    stack: LocalDeployment
    receiver: Receiver
    client: JobsClient
    # an upload slot opened as the stack starts, left to expire while the other tests run
    expiring: str = ""

    def duplicates_dropped(self, job_id: str, channel: str) -> int:
        """Worker log lines of a notify delivery that found its channel already sent."""
        log = self.stack.log_dir / f"{self.stack.outputs['worker_function_name']}.log"
        lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
        return sum(
            1
            for entry in map(json.loads, lines)
            if entry.get("job_id") == job_id
            and entry.get("channel") == channel
            and entry.get("message", "").startswith("notification already sent")
        )

    def events(self, job_id: str) -> list[dict[str, Any]]:
        lines = self.stack.events_log.read_text().splitlines() if self.stack.events_log.is_file() else []
        return [e for e in map(json.loads, lines) if e["detail"].get("job_id") == job_id]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    ca_pem, cert, key = certificates(tmp_path_factory.mktemp("receiver"))
    receiver = Receiver()
    server = _serve(receiver, cert, key)
    variables = {
        # the port is part of the allow-list: the receiver's own, not 443
        "callback_allowed_hosts": [f"localhost:{receiver.port}"],
        "callback_ca_bundle_pem": ca_pem,
        "chunk_size": 5,
        "upload_url_ttl_seconds": 60,  # the module's minimum: the slot below expires during the module
    }
    try:
        for stack in start_stack("local", variables=variables, faults=FaultPlan(duplicate_rate=1.0, seed=7)):
            secret_arn = stack.outputs["callback_secret_arn"]
            secret = stack.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
            receiver.secret = secret.encode()
            client = JobsClient(stack.url)
            yield Setup(stack, receiver, client, _open_slot(client, receiver.url("/hooks/expired")))
    finally:
        server.shutdown()


def _open_slot(client: JobsClient, callback: str) -> str:
    reply = client.request(
        "POST", "/jobs/uploads", "{}", {"Content-Type": "application/json", "Callback-Url": callback}
    )
    assert reply.status == 201, reply.body
    return str(reply.json()["job_id"])


def _submit(setup: Setup, records: int, callback: str | None) -> str:
    headers = {"Callback-Url": callback} if callback else {}
    reply = setup.client.submit([{"n": i} for i in range(records)], **headers)
    assert reply.status == 202, reply.body
    return str(reply.json()["job_id"])


def _ended(setup: Setup, job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job = setup.client.get(job_id).json()
        return job if job["status"] in TERMINAL else None

    return dict(wait_for(probe, timeout=90, what=f"job {job_id} to end"))


def _delivered(setup: Setup, job_id: str, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job = setup.client.get(job_id).json()
        return job if job["callback"] and job["callback"]["status"] != "pending" else None

    return dict(wait_for(probe, timeout=timeout, what=f"callback of {job_id}"))


def test_the_second_plan_is_empty(setup: Setup) -> None:
    # first, right after the apply: the plan reads dist/*.zip, which a concurrent build may change
    # the signing secret's value is write-only: nothing in state for a plan to find changed
    assert not setup.stack.plan_has_changes()
    state = (setup.stack.work_dir / "terraform.tfstate").read_text()
    assert setup.receiver.secret is not None and setup.receiver.secret.decode() not in state


def test_a_job_ends_with_one_event_and_one_signed_callback(setup: Setup) -> None:
    # GIVEN a job of three chunks with a callback; every message is delivered twice
    job_id = _submit(setup, 12, setup.receiver.url("/hooks/ok"))
    # WHEN it ends
    job = _ended(setup, job_id)
    assert job["status"] == "succeeded"
    final = _delivered(setup, job_id)
    time.sleep(6)  # the duplicates of the notify message have come and gone (claim wait 6 s)
    # THEN exactly one event on the default bus, the job resource as its detail
    events = setup.events(job_id)
    assert len(events) == 1, events
    event = events[0]
    assert (event["source"], event["detail-type"], event["event-bus-name"]) == (
        "async-jobs",
        "Job Ended",
        "default",
    )
    assert event["detail"]["status"] == "succeeded"
    assert event["detail"]["succeeded_records"] == 12
    assert event["detail"]["links"]["self"].endswith(f"/jobs/{job_id}")
    # AND exactly one callback, whose signature verifies with the secret from Secrets Manager
    calls = setup.receiver.for_job(job_id)
    assert len(calls) == 1, [c.headers for c in calls]
    assert calls[0].verified is True
    assert calls[0].headers[EVENT_ID_HEADER.lower()] == f"{job_id}:0"
    assert calls[0].json()["status"] == "succeeded"
    # AND the duplicate deliveries of the notify message did reach the worker and sent nothing
    assert setup.duplicates_dropped(job_id, "event") >= 1
    assert setup.duplicates_dropped(job_id, "callback") >= 1
    # AND the job resource shows the delivery
    assert final["callback"]["status"] == "delivered"
    assert final["callback"]["attempts"] == 1
    assert final["callback"]["last_status"] == 200


def test_a_callback_answered_503_is_retried_and_delivered(setup: Setup) -> None:
    # GIVEN a receiver that answers 503 first
    setup.receiver.script["/hooks/flaky"] = [503]
    job_id = _submit(setup, 3, setup.receiver.url("/hooks/flaky"))
    # WHEN the job ends THEN the first attempt is pending retry, the second (15 s later) delivers
    assert _ended(setup, job_id)["status"] == "succeeded"
    final = _delivered(setup, job_id, timeout=90)
    assert final["callback"]["status"] == "delivered"
    assert final["callback"]["attempts"] == 2
    calls = setup.receiver.for_job(job_id)
    assert len(calls) == 2 and all(c.verified for c in calls)
    assert len(setup.events(job_id)) == 1


def test_a_cancelled_job_yields_one_event(setup: Setup) -> None:
    # GIVEN a job the worker has not started (the event source paused)
    setup.stack.pause_event_source()
    try:
        job_id = _submit(setup, 3, None)
        # WHEN it is cancelled (the submit function ends it)
        reply = setup.client.cancel(job_id)
        assert reply.status == 202 and reply.json()["status"] == "cancelled", reply.body
    finally:
        setup.stack.resume_event_source()
    # THEN exactly one event says so
    wait_for(lambda: setup.events(job_id), timeout=60, what="the cancelled job's event")
    time.sleep(8)
    events = setup.events(job_id)
    assert len(events) == 1 and events[0]["detail"]["status"] == "cancelled"


def test_a_callback_url_outside_the_rules_is_refused(setup: Setup) -> None:
    for url, why in (
        (setup.receiver.url("/x").replace("https:", "http:"), "https"),
        (f"https://attacker.example:{setup.receiver.port}/x", "not in the allowed callback hosts"),
    ):
        reply = setup.client.submit([{"n": 1}], **{"Callback-Url": url})
        assert reply.status == 400, reply.body
        problem = reply.json()
        assert reply.headers["content-type"] == "application/problem+json"
        assert problem["errors"][0]["parameter"] == "Callback-Url"
        assert why in problem["detail"]


def test_an_upload_slot_with_nothing_uploaded_expires_with_one_event_and_one_callback(setup: Setup) -> None:
    # GIVEN the slot opened with the stack (60 s TTL), nothing uploaded; its expire message and
    # the notify message are each delivered twice
    job_id = setup.expiring
    # WHEN its expiry comes (last in this module: the wait overlaps the tests above)
    final = _delivered(setup, job_id, timeout=120)
    time.sleep(6)  # the duplicates of the notify message have come and gone (claim wait 6 s)
    # THEN the state was written expired (the job resource says so, with its finished_at)
    assert final["status"] == "expired" and final["finished_at"] is not None
    # AND exactly one Job Ended event with status expired, and one signed callback
    events = setup.events(job_id)
    assert [(e["detail-type"], e["detail"]["status"]) for e in events] == [("Job Ended", "expired")]
    calls = setup.receiver.for_job(job_id)
    assert len(calls) == 1 and calls[0].verified is True
    assert calls[0].json()["status"] == "expired"
    assert final["callback"]["status"] == "delivered"
