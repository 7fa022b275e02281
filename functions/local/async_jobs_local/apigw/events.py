"""Proxy integration events, built from a ``Request``: REST API (v1) and HTTP API (payload 2.0).

The shapes follow what API Gateway sends a Lambda proxy integration; the unit tests compare
their key structure with the JSON fixtures the handlers are tested with.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from .auth import Caller
from .request import ACCOUNT_ID, Api, Request, Route

_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|x-ndjson|ndjson|xml|javascript|x-www-form-urlencoded|problem\+json)"
    r"|application/.*\+(json|xml))$"
)


def is_text(content_type: str) -> bool:
    if not content_type:
        return True
    return bool(_TEXT_TYPES.match(content_type.split(";", maxsplit=1)[0].strip().lower()))


def encode_body(request: Request) -> tuple[str | None, bool]:
    """The body as the event carries it: text, or base64 for binary media (isBase64Encoded)."""
    if not request.body:
        return None, False
    if is_text(request.header("content-type")):
        try:
            return request.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode("ascii"), True


def _domain_prefix(host: str) -> str:
    return host.split(".", maxsplit=1)[0].split(":", maxsplit=1)[0]


def build_event(
    api: Api, request: Request, route: Route, params: dict[str, str], caller: Caller
) -> dict[str, Any]:
    """The event the route's function receives, in the API's payload format."""
    if api.api_type == "http":
        return http_event(api, request, route, params, caller)
    return rest_event(api, request, route, params, caller)


def rest_event(
    api: Api, request: Request, route: Route, params: dict[str, str], caller: Caller
) -> dict[str, Any]:
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value if name not in headers else f"{headers[name]},{value}"
        multi_headers.setdefault(name, []).append(value)
    query_pairs = request.query_pairs()
    body, is_base64 = encode_body(request)
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    path = api.strip_stage(request.path)
    identity = {
        "cognitoIdentityPoolId": None,
        "accountId": ACCOUNT_ID if caller.user_arn else None,
        "cognitoIdentityId": None,
        "caller": caller.access_key,
        "sourceIp": request.source_ip,
        "principalOrgId": None,
        "accessKey": caller.access_key,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": caller.user_arn,
        "userAgent": request.header("user-agent") or None,
        "user": caller.access_key,
        "apiKey": caller.api_key,
        "apiKeyId": caller.api_key_id,
    }
    request_context: dict[str, Any] = {
        "resourceId": "local",
        "resourcePath": route.template,
        "httpMethod": request.method,
        "extendedRequestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "path": path if api.stage in ("", "$default") else f"/{api.stage}{path}",
        "accountId": ACCOUNT_ID,
        "protocol": "HTTP/1.1",
        "stage": api.stage,
        "domainPrefix": _domain_prefix(request.host),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "requestId": request_id,
        "identity": identity,
        "domainName": request.host,
        "apiId": api.api_id,
    }
    if caller.claims is not None:
        request_context["authorizer"] = {"claims": caller.claims}
    return {
        "resource": route.template,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in query_pairs.items()} or None,
        "multiValueQueryStringParameters": query_pairs or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _http_authorizer(caller: Caller) -> dict[str, Any] | None:
    if caller.user_arn:
        return {
            "iam": {
                "accessKey": caller.access_key,
                "accountId": ACCOUNT_ID,
                "callerId": caller.access_key,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": caller.user_arn,
                "userId": caller.access_key,
            }
        }
    if caller.claims is not None:
        return {"jwt": {"claims": caller.claims, "scopes": None}}
    return None


def http_event(
    api: Api, request: Request, route: Route, params: dict[str, str], caller: Caller
) -> dict[str, Any]:
    headers = dict(request.lowered)  # payload 2.0: lower-case names, repeats joined by commas
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    body, is_base64 = encode_body(request)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api.api_id,
            "domainName": request.host,
            "domainPrefix": _domain_prefix(request.host),
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.key,
            "stage": api.stage,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    query_pairs = request.query_pairs()
    if query_pairs:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query_pairs.items()}
    if params:
        event["pathParameters"] = params
    authorizer = _http_authorizer(caller)
    if authorizer:
        event["requestContext"]["authorizer"] = authorizer
    if body is not None:
        event["body"] = body
    return event
