"""openapi.yaml stays true: the real handlers, driven with REST and HTTP API events, answer only
what the document says (status, headers, body), and every documented operation is exercised."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from async_jobs import idempotency, model, normalize

from .conftest import BOB, BUCKET, MAX_RECEIVE_COUNT, Api, Aws, Reply, Worker, load_handler, records
from .test_api_listing import list_jobs, next_params

JSON = "application/json"

DOCUMENT = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
_REGISTRY: Registry = Registry().with_resource(  # type: ignore[call-arg]
    "urn:openapi", Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def check_schema(instance: Any, schema: dict[str, Any]) -> None:
    wrapped = {"$ref": "urn:openapi#"} if schema is DOCUMENT else schema
    validator = jsonschema.Draft202012Validator(
        _rebase(wrapped), registry=_REGISTRY, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(instance)


def _rebase(schema: Any) -> Any:
    """Local `#/components/...` references resolve inside the document."""
    if isinstance(schema, dict):
        return {
            k: ("urn:openapi" + v if k == "$ref" and v.startswith("#/") else _rebase(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]]:
    for template, item in DOCUMENT["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "/?$"
        if path == "/jobs/uploads" and template == "/jobs/{job_id}":
            continue  # a literal route wins over the template
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not in openapi.yaml")


class Checker:
    """Validates every reply against the document and remembers which responses were seen."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, str]] = set()

    def check(self, method: str, path: str, reply: Reply, *, documented_on: str | None = None) -> Reply:
        template, operation = operation_for(documented_on or method, path)
        status = str(reply.status)
        assert status in operation["responses"], f"{method} {path} answered {status}, not documented"
        response = resolve(operation["responses"][status])
        self.seen.add((template, (documented_on or method).lower(), status))
        for name, declared in (response.get("headers") or {}).items():
            header = resolve(declared)
            value = reply.headers.get(name.lower())
            if value is None:
                assert not header.get("required"), f"{method} {path} {status}: header {name} missing"
                continue
            check_schema(value, header["schema"])
        content = response.get("content")
        if content is None:
            assert reply.body in (None, ""), f"{status} documented without a body"
            return reply
        media = reply.headers.get("content-type", "").split(";")[0]
        assert media in content, f"{method} {path} {status}: {media} not documented"
        check_schema(reply.body, content[media]["schema"])
        return reply


@pytest.fixture(params=["rest", "http"])
def client(request: pytest.FixtureRequest, aws: Aws) -> Iterator[Api]:
    yield request.getfixturevalue("api" if request.param == "rest" else "http_api")


def test_the_document_is_valid_openapi_3_1() -> None:
    validate_spec(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


def test_every_response_matches_the_document(client: Api, aws: Aws) -> None:
    c = Checker()

    def post(body: str, headers: dict[str, str] | None = None) -> Reply:
        all_headers = {"Content-Type": JSON, **(headers or {})}
        return c.check("POST", "/jobs", client.request("POST", "/jobs", body, all_headers))

    # POST /jobs: accepted, replayed, and each kind of refusal
    accepted = post(json.dumps({"records": records(5), "metadata": {"m": 1}}), {"Idempotency-Key": "k"})
    assert accepted.status == 202
    assert (
        post(json.dumps({"records": records(5), "metadata": {"m": 1}}), {"Idempotency-Key": "k"}).status
        == 202
    )
    assert post(json.dumps({"records": records(1)}), {"Idempotency-Key": "k"}).status == 422
    assert post('{"records": [1]}').status == 400
    assert post('{"records": [{"a": 1e400}]}').status == 400
    assert post(json.dumps({"records": records(20_001)})).status == 413
    ndjson = client.request(
        "POST", "/jobs", b'{"a": 1}\n{"a": 2}\n', {"Content-Type": "application/x-ndjson"}
    )
    assert c.check("POST", "/jobs", ndjson).status == 202
    assert (
        c.check("POST", "/jobs", client.request("POST", "/jobs", "x", {"Content-Type": "text/csv"})).status
        == 415
    )
    anonymous = client.request(
        "POST", "/jobs", json.dumps({"records": records(1)}), {"Content-Type": JSON}, caller=None
    )
    assert c.check("POST", "/jobs", anonymous).status == 401
    # an Idempotency-Key whose first request is still running
    busy_body = json.dumps({"records": records(1)})
    body_hash = normalize.normalize(busy_body.encode(), "application/json", 10).body_hash
    claim = idempotency.IdempotencyRecord(model.new_job_id(), body_hash, model.isoformat(model.now()), False)
    aws.put_json(idempotency.record_key(client.caller, "busy"), claim.to_dict())
    assert post(busy_body, {"Idempotency-Key": "busy"}).status == 409

    # POST /jobs/uploads
    slot = client.request("POST", "/jobs/uploads", '{"metadata": {"a": 1}}', {"Content-Type": JSON})
    assert c.check("POST", "/jobs/uploads", slot).status == 201
    for body, ctype, status in (
        ("[1]", JSON, 400),
        ("{}", "text/plain", 415),
        ("{" + " " * 4_000_001 + "}", JSON, 413),
    ):
        reply = client.request("POST", "/jobs/uploads", body, {"Content-Type": ctype})
        assert c.check("POST", "/jobs/uploads", reply).status == status

    # GET /jobs/{job_id}: queued, terminal, 304, 404, 400, another caller
    job_id = accepted.body["job_id"]
    path = f"/jobs/{job_id}"
    first = c.check("GET", path, client.get(job_id))
    assert first.status == 200
    assert c.check("GET", path, client.get(job_id, {"If-None-Match": first.headers["etag"]})).status == 304
    assert c.check("GET", path, client.get(job_id, caller=BOB)).status == 404
    assert c.check("GET", "/jobs/not-a-uuid", client.get("not-a-uuid")).status == 400
    assert (
        c.check("GET", "/jobs/uploads", client.request("GET", "/jobs/uploads"), documented_on="POST").status
        == 405
    )
    worker = Worker(load_handler("worker"), aws)
    worker.drain()
    assert c.check("GET", path, client.get(job_id)).body["status"] == "succeeded"
    # DELETE /jobs/{job_id}: cancel, then conflict, 404, 400
    queued = post(json.dumps({"records": records(2)})).body["job_id"]
    assert c.check("DELETE", f"/jobs/{queued}", client.delete(queued)).status == 202
    assert c.check("DELETE", f"/jobs/{queued}", client.delete(queued)).status == 409
    unknown = "0b8f6c3e-6a9e-4f5e-9d1c-3d8c2c6f9a10"
    assert c.check("DELETE", f"/jobs/{unknown}", client.delete(unknown)).status == 404
    assert c.check("DELETE", "/jobs/bad", client.delete("bad")).status == 400
    # POST /jobs/{job_id}/retry: a job whose chunk failed on its last receive runs it again;
    # then not ended, a cancelled job (nothing failed), 404, 400
    failing = post(json.dumps({"records": records(3)})).body["job_id"]

    def take(kind: str) -> dict[str, Any]:
        """The failing job's message of `kind`; every other message is delivered."""
        for _ in range(20):
            for message in worker.receive():
                body = json.loads(message["Body"])
                aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
                if body.get("job_id") == failing and body["kind"] == kind:
                    return dict(body)
                worker.deliver(body)
        raise AssertionError(f"no {kind} message")

    worker.deliver(take("split"))
    aws.s3.delete_object(Bucket=BUCKET, Key=f"jobs/{failing}/input.ndjson")
    worker.deliver(take("chunk"), receive_count=MAX_RECEIVE_COUNT)
    assert client.get(failing).body["status"] == "failed"

    def retry(job: str) -> Reply:
        path = f"/jobs/{job}/retry"
        return c.check("POST", path, client.request("POST", path))

    assert retry(failing).status == 202
    assert retry(failing).status == 409  # running again: not ended
    assert retry(queued).status == 409  # cancelled: nothing failed
    assert retry(unknown).status == 404
    assert retry("bad").status == 400

    # GET /jobs: a page with a next link, the page it leads to, and refused queries
    first = c.check("GET", "/jobs", list_jobs(client, {"limit": "1"}))
    assert first.status == 200 and first.body["next"]
    assert c.check("GET", "/jobs", list_jobs(client, next_params(first))).status == 200
    for bad in ({"limit": "0"}, {"status": "x"}, {"cursor": "x"}, {"created_after": "now"}):
        assert c.check("GET", "/jobs", list_jobs(client, bad)).status == 400

    # THEN every documented operation was exercised with at least its success response
    for template, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            success = [s for s in operation["responses"] if s.startswith("2")]
            assert any((template, method, s) in c.seen for s in success), (template, method)
