"""The local API Gateway, split as serverless-offline splits it.

``request`` (the typed ``Request``, routes, the deployed ``Api``), ``auth`` (authorization
types), ``events`` (REST v1 and HTTP v2 proxy events), ``responses`` (integration result →
HTTP), ``gateway_responses`` (a REST API's own errors as configured), ``gateway`` (the
pipeline) and ``server`` (the HTTP server).
"""

from __future__ import annotations

from .auth import Authorizer, Caller
from .events import build_event, http_event, rest_event
from .gateway import ApiGateway
from .gateway_responses import GatewayResponse, GatewayResponses
from .request import Api, ApiError, Request, Route
from .responses import Response
from .server import ApiServer

__all__ = [
    "Api",
    "ApiError",
    "ApiGateway",
    "ApiServer",
    "Authorizer",
    "GatewayResponse",
    "GatewayResponses",
    "Caller",
    "Request",
    "Response",
    "Route",
    "build_event",
    "http_event",
    "rest_event",
]
