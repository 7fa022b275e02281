"""A proxy integration's result mapped back to an HTTP response, as API Gateway maps it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from .gateway_responses import GatewayResponses
from .request import ApiError


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def gateway_error(cls, error: ApiError, responses: GatewayResponses | None = None) -> Response:
        """API Gateway's own answer: the API's gateway response for the error (a REST API's as the
        module configures them), else ``{"message": ...}`` as API Gateway's defaults give it."""
        status, headers, body = (responses or GatewayResponses()).render(error)
        headers = [*headers, *error.headers.items()]
        if error.status == 403 and error.message == "Missing Authentication Token":
            headers.append(("x-amzn-ErrorType", "MissingAuthenticationTokenException"))
        return cls(status, headers, body)


def from_integration(api_type: str, result: Any) -> Response:
    """Map a proxy integration result; a malformed one is API Gateway's 502."""
    if api_type == "http" and not (isinstance(result, dict) and "statusCode" in result):
        # payload 2.0 lets a function return a bare value: 200 + JSON
        return Response(200, [("Content-Type", "application/json")], json.dumps(result).encode())
    if not isinstance(result, dict) or "statusCode" not in result:
        raise ApiError(502, "Internal server error")
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        raise ApiError(502, "Internal server error") from None
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, values in (result.get("multiValueHeaders") or {}).items():
        seen.add(name.lower())
        headers += [(name, str(value)) for value in values]
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    for cookie in result.get("cookies") or []:
        headers.append(("Set-Cookie", cookie))
    body = result.get("body") or ""
    if not isinstance(body, str):
        body = json.dumps(body)
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return Response(status, headers, raw)
