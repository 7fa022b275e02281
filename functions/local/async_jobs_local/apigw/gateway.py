"""API Gateway in front of the local functions: route, authorize, build the event, invoke, map the result.

Plays the deployed API as described by the Terraform outputs: ``api_routes`` (route key →
function name), ``api_type`` (REST proxy events v1 or HTTP API payload 2.0), ``api_stage_name``
and ``api_authorization``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..sandbox import FunctionThrottled, FunctionTimeout, InvocationError
from .auth import Authorizer
from .events import build_event
from .gateway_responses import GatewayResponses
from .request import Api, ApiError, Request, Route
from .responses import Response, from_integration

log = logging.getLogger("async_jobs_local")

# Lambda refuses a synchronous invocation whose payload (the proxy event as JSON) is larger
# (RequestEntityTooLargeException), before the function runs.
LAMBDA_MAX_PAYLOAD_BYTES = 6_291_456


class ApiGateway:
    """Turns requests into proxy events for the functions and their results into responses."""

    def __init__(
        self,
        outputs: Mapping[str, Any],
        invoke: Callable[[str, dict[str, Any]], Any],
        api_key_lookup: Callable[[str], str | None] | None = None,
        region: str = "us-east-1",
        gateway_responses: GatewayResponses | None = None,
    ) -> None:
        api_type = str(outputs.get("api_type") or "rest").lower()
        routes = outputs.get("api_routes") or {}
        if not routes:
            raise ValueError("the Terraform outputs have no api_routes")
        self.api = Api(
            api_type=api_type,
            stage=str(outputs.get("api_stage_name") or ("$default" if api_type == "http" else "local")),
            api_id=str(outputs.get("api_id") or "local"),
            routes=tuple(Route.from_key(key, function) for key, function in routes.items()),
        )
        self.authorizer = Authorizer(str(outputs.get("api_authorization") or "NONE"), api_key_lookup)
        self._invoke = invoke
        self.region = region
        # a REST API's gateway responses (an HTTP API has none: its errors stay {"message"})
        self.gateway_responses = gateway_responses if api_type == "rest" else None
        # called with (status, latency ms) of each response: API Gateway's metrics
        self.observer: Callable[[int, float], None] | None = None

    @property
    def authorization(self) -> str:
        return self.authorizer.authorization

    @property
    def stage(self) -> str:
        return self.api.stage

    @property
    def api_type(self) -> str:
        return self.api.api_type

    def handle(self, request: Request) -> Response:
        started = time.monotonic()
        # What API Gateway's front end adds; the scheme is http here (Location, links).
        request = request.with_headers(
            {
                "X-Forwarded-For": request.source_ip,
                "X-Forwarded-Port": request.host.rpartition(":")[2] or "80",
                "X-Forwarded-Proto": "http",
            }
        )
        try:
            response = self._integrate(request)
        except ApiError as exc:
            response = self.error_response(exc)
        response.headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
        if self.observer is not None:
            self.observer(response.status, (time.monotonic() - started) * 1000)
        log.info(
            "%s %s -> %d (%.0f ms)",
            request.method,
            request.target,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    def error_response(self, error: ApiError) -> Response:
        """API Gateway's own answer to `error`, as the deployed API shapes it."""
        return Response.gateway_error(error, self.gateway_responses)

    def _integrate(self, request: Request) -> Response:
        route, params = self.api.match(request.method, self.api.strip_stage(request.path))
        caller = self.authorizer.authenticate(request)
        event = build_event(self.api, request, route, params, caller)
        if len(json.dumps(event).encode()) > LAMBDA_MAX_PAYLOAD_BYTES:
            # the function never sees it: the client gets API Gateway's 413, not the module's answer
            raise ApiError(413, "Request Too Long")
        try:
            result = self._invoke(route.function, event)
        except FunctionTimeout:
            raise ApiError(504, "Endpoint request timed out") from None
        except FunctionThrottled:
            # Lambda's TooManyRequestsException: the function is at its concurrency limit.
            raise ApiError(429, "Too Many Requests") from None
        except InvocationError as exc:
            log.error("%s %s: %s failed: %s", request.method, request.target, route.function, exc)
            raise ApiError(502, "Internal server error") from None
        return from_integration(self.api.api_type, result)
