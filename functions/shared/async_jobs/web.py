"""HTTP plumbing shared by the API handlers: resolvers, bodies, responses, 404/405, problems."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from async_jobs import identity
from async_jobs.contract import contract, path_pattern
from async_jobs.observability import logger
from async_jobs.problems import PROBLEM_CONTENT_TYPE, ProblemError, bad_request, problem_json
from async_jobs.service import Outcome

JSON_CONTENT_TYPE = "application/json"
# A leading stage segment ("/prod/jobs") is tolerated, for clients that call the stage URL.
STAGE_PREFIX = re.compile(r"^/[^/]+(?=/jobs(?:/|$))")

Register = Callable[[ApiGatewayResolver], None]


def _api_routes() -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
    """Resource pattern -> methods, from the contract's routes; a literal path (/jobs/uploads)
    comes before a template it also matches (/jobs/{job_id})."""
    methods: dict[str, list[str]] = {}
    for route in contract().routes:
        methods.setdefault(route.path, []).append(route.method)
    paths = sorted(methods, key=lambda path: "{" in path)
    return [(path_pattern(path), tuple(methods[path])) for path in paths]


# The whole API: anything else is 404, a wrong method 405 (with Allow).
API_ROUTES = _api_routes()


def register_routes(app: ApiGatewayResolver, function: str, handlers: dict[str, Callable[..., Any]]) -> None:
    """Bind each of the contract's routes of ``function`` to its handler, by operation id; a
    route without a handler, or a handler without a route, is a packaging defect."""
    routes = contract().routes_of(function)
    unmatched = {route.operation for route in routes} ^ set(handlers)
    if unmatched:
        raise LookupError(f"{function}: routes and handlers differ on {sorted(unmatched)}")
    for route in routes:
        path = route.path.replace("{", "<").replace("}", ">")  # Powertools' <param> syntax
        app.route(path, method=route.method)(handlers[route.operation])


def api_kind(event: dict[str, Any]) -> str:
    """Payload format 2.0 is an HTTP API event; anything else is REST (v1) shaped."""
    return "http" if identity.is_http_api_event(event) else "rest"


def allowed_methods(path: str) -> tuple[str, ...] | None:
    path = STAGE_PREFIX.sub("", path)
    for pattern, methods in API_ROUTES:
        if pattern.match(path):
            return methods
    return None


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=JSON_CONTENT_TYPE,
        body=json.dumps(body) if body is not None else "",
        headers=headers or {},
    )


def outcome_response(outcome: Outcome) -> Response:
    if outcome.body is None:
        return Response(status_code=outcome.status_code, body="", headers=outcome.headers)
    return json_response(outcome.status_code, outcome.body, outcome.headers)


def problem_response(problem: ProblemError) -> Response:
    return Response(
        status_code=problem.status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(problem.to_dict()),
        headers=problem.headers,
    )


def raw_body(event: BaseProxyEvent) -> bytes:
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("The body is not valid base64.", slug="malformed-body") from None
    return body.encode("utf-8")


def url_builder(event: dict[str, Any]) -> Callable[[str], str]:
    def url_for(job_id: str) -> str:
        return identity.job_url(event, job_id)

    return url_for


def list_url_builder(event: dict[str, Any]) -> Callable[[str], str]:
    def list_url(query: str) -> str:
        return f"{identity.base_url(event)}/jobs?{query}"

    return list_url


def build_app(kind: str, register: Register) -> ApiGatewayResolver:
    app: ApiGatewayResolver
    if kind == "http":
        app = APIGatewayHttpResolver(strip_prefixes=[STAGE_PREFIX])
    else:
        app = APIGatewayRestResolver(strip_prefixes=[STAGE_PREFIX])
    register(app)

    @app.not_found
    def route_not_found(_: Exception) -> Response:
        event = app.current_event
        methods = allowed_methods(event.path)
        if methods is not None and event.http_method.upper() not in methods:
            problem = ProblemError(
                405,
                f"{event.http_method} is not allowed here; use {', '.join(methods)}.",
                headers={"Allow": ", ".join(methods)},
                slug="method-not-allowed",
            )
            return problem_response(problem)
        return problem_response(ProblemError(404, "No such resource.", slug="not-found"))

    @app.exception_handler(ProblemError)
    def handle_problem(problem: ProblemError) -> Response:
        return problem_response(problem)

    @app.exception_handler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        logger.exception("request failed")
        return Response(
            status_code=500,
            content_type=PROBLEM_CONTENT_TYPE,
            body=problem_json(500, "The request could not be completed; retry later.", slug="internal-error"),
        )

    return app


def build_apps(register: Register) -> dict[str, ApiGatewayResolver]:
    return {"rest": build_app("rest", register), "http": build_app("http", register)}
