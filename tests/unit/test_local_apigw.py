"""The local API Gateway: its proxy events have the shape of the fixtures the handlers are tested with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from async_jobs_local.apigw import Api, ApiError, ApiGateway, Authorizer, Request, Route, build_event
from async_jobs_local.sandbox import FunctionThrottled

EVENTS = Path(__file__).parent / "events"


def missing_keys(fixture: Any, event: Any, path: str = "") -> list[str]:
    """Keys of ``fixture`` (recursively) that ``event`` lacks, or holds with another JSON type."""
    problems: list[str] = []
    if isinstance(fixture, dict):
        if not isinstance(event, dict):
            return [f"{path or '<root>'}: object expected, got {type(event).__name__}"]
        for key, value in fixture.items():
            if key not in event:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += missing_keys(value, event[key], f"{path}.{key}")
    elif fixture is not None and event is not None and type(fixture) is not type(event):
        problems.append(f"{path}: {type(fixture).__name__} expected, got {type(event).__name__}")
    return problems


def api(api_type: str, stage: str) -> Api:
    routes = {"POST /jobs": "submit", "GET /jobs/{job_id}": "status"}
    return Api(api_type, stage, "abc123", tuple(Route.from_key(k, f) for k, f in routes.items()))


REQUEST = Request(
    method="POST",
    target="/jobs",
    headers=(("Host", "127.0.0.1:8080"), ("Content-Type", "application/json"), ("User-Agent", "curl/8")),
    body=b'{"records": [{"id": 1}]}',
    source_ip="127.0.0.1",
)


@pytest.mark.parametrize(
    ("api_type", "stage", "fixture"),
    [("rest", "prod", "rest_request.json"), ("http", "$default", "http_request.json")],
)
def test_emulated_event_has_the_fixture_structure(api_type: str, stage: str, fixture: str) -> None:
    # GIVEN the local gateway of an IAM-authorized API (the fixtures carry an IAM caller)
    events: list[dict[str, Any]] = []

    def invoke(function: str, event: dict[str, Any]) -> Any:
        events.append(event)
        return {"statusCode": 202, "body": "{}"}

    outputs = {
        "api_type": api_type,
        "api_stage_name": stage,
        "api_authorization": "AWS_IAM",
        "api_routes": {"POST /jobs": "submit"},
    }
    gateway = ApiGateway(outputs, invoke)
    signed = Request(
        REQUEST.method,
        REQUEST.target if stage == "$default" else f"/{stage}{REQUEST.target}",
        (*REQUEST.headers, ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDALICE0000000/x")),
        REQUEST.body,
    )
    # WHEN a request goes through it
    assert gateway.handle(signed).status == 202
    # THEN the function's event has every key of the handlers' fixture, with the same JSON type
    expected = json.loads((EVENTS / fixture).read_text())
    assert missing_keys(expected, events[0]) == []
    assert json.loads(json.dumps(events[0])) == events[0]  # JSON-serialisable, as Lambda's payload is


def test_structure_check_fails_on_a_missing_key() -> None:
    fixture = json.loads((EVENTS / "rest_request.json").read_text())
    event = json.loads(json.dumps(fixture))
    del event["requestContext"]["identity"]["userArn"]
    event["isBase64Encoded"] = "no"
    assert missing_keys(fixture, event) == [
        ".requestContext.identity.userArn: missing",
        ".isBase64Encoded: bool expected, got str",
    ]


def test_request_is_frozen_and_reads_headers_case_insensitively() -> None:
    request = Request("GET", "/prod/jobs/1?limit=2&limit=3", (("X-A", "1"), ("x-a", "2")))
    assert request.header("X-a") == "1,2"
    assert request.query_pairs() == {"limit": ["2", "3"]}
    assert request.path == "/prod/jobs/1"
    with pytest.raises(AttributeError):
        request.method = "POST"  # type: ignore[misc]


def test_rest_event_strips_the_stage_and_keeps_it_in_the_context() -> None:
    the_api = api("rest", "prod")
    request = Request("GET", "/prod/jobs/abc?x=1", (("Host", "h:1"),))
    route, params = the_api.match("GET", the_api.strip_stage(request.path))
    event = build_event(the_api, request, route, params, Authorizer("NONE").authenticate(request))
    assert (event["path"], event["requestContext"]["path"]) == ("/jobs/abc", "/prod/jobs/abc")
    assert event["pathParameters"] == {"job_id": "abc"}
    assert event["queryStringParameters"] == {"x": "1"}


def test_binary_bodies_are_base64_encoded() -> None:
    request = Request("POST", "/jobs", (("Content-Type", "application/octet-stream"),), b"\x00\xff")
    the_api = api("http", "$default")
    route, params = the_api.match("POST", "/jobs")
    event = build_event(the_api, request, route, params, Authorizer("NONE").authenticate(request))
    assert (event["body"], event["isBase64Encoded"]) == ("AP8=", True)


def test_unknown_route_answers_as_each_api_type_does() -> None:
    with pytest.raises(ApiError) as rest:
        api("rest", "prod").match("PUT", "/jobs")
    with pytest.raises(ApiError) as http:
        api("http", "$default").match("PUT", "/jobs")
    assert (rest.value.status, http.value.status) == (403, 404)


def test_a_throttled_function_answers_429() -> None:
    def throttled(function: str, event: dict[str, Any]) -> Any:
        raise FunctionThrottled(function, 1)

    gateway = ApiGateway({"api_routes": {"POST /jobs": "submit"}}, throttled)
    response = gateway.handle(REQUEST)
    assert response.status == 429
    assert json.loads(response.body) == {"message": "Too Many Requests"}
