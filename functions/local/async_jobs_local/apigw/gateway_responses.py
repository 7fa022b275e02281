"""API Gateway's own answers, as the deployed REST API's gateway responses shape them.

A REST API answers its own errors (no route, no credentials, a body too large, a function that
timed out) through gateway responses: per response type a status code, header mappings and a
body template. The module configures every type as an RFC 9457 problem; the local gateway reads
what was applied (``GetGatewayResponses``) and renders the same answer. An HTTP API has no
gateway responses: its errors stay ``{"message": ...}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .request import ApiError

# The response type of each error the local gateway raises (by status and message), as API
# Gateway classifies them.
_TYPES: dict[tuple[int, str], str] = {
    (403, "Missing Authentication Token"): "MISSING_AUTHENTICATION_TOKEN",
    (403, "Forbidden"): "INVALID_API_KEY",
    (401, "Unauthorized"): "UNAUTHORIZED",
    (413, "Request Too Long"): "REQUEST_TOO_LARGE",
    (429, "Too Many Requests"): "THROTTLED",
    (504, "Endpoint request timed out"): "INTEGRATION_TIMEOUT",
}
# `$context.error.*` variables a template may use; anything else renders empty, as in VTL.
_VARIABLE = re.compile(r"\$context\.error\.(messageString|message|responseType)|\$[A-Za-z][\w.]*")


def response_type(error: ApiError) -> str:
    found = _TYPES.get((error.status, error.message))
    if found:
        return found
    return "DEFAULT_5XX" if error.status >= 500 else "DEFAULT_4XX"


@dataclass(frozen=True)
class GatewayResponse:
    """One configured gateway response: status, static headers and the JSON body template."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    template: str | None = None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> GatewayResponse:
        headers = []
        for name, value in (item.get("responseParameters") or {}).items():
            prefix = "gatewayresponse.header."
            text = str(value)
            # only static values ('...') are emulated; mapped request values are not
            if name.startswith(prefix) and len(text) >= 2 and text[0] == text[-1] == "'":
                headers.append((name[len(prefix) :], text[1:-1]))
        templates = item.get("responseTemplates") or {}
        status = item.get("statusCode")
        return cls(
            status=int(status) if status else None,
            headers=tuple(headers),
            template=templates.get("application/json"),
        )


@dataclass(frozen=True)
class GatewayResponses:
    """The gateway responses of a deployed REST API by type (empty: API Gateway's defaults)."""

    by_type: Mapping[str, GatewayResponse] = field(default_factory=dict)

    @classmethod
    def from_api(cls, items: list[Mapping[str, Any]]) -> GatewayResponses:
        return cls({str(item["responseType"]): GatewayResponse.from_api(item) for item in items})

    def render(self, error: ApiError) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) of API Gateway's answer to `error`."""
        kind = response_type(error)
        configured = self.by_type.get(kind) or self.by_type.get(
            "DEFAULT_5XX" if error.status >= 500 else "DEFAULT_4XX"
        )
        if configured is None or configured.template is None:
            # API Gateway's default gateway response
            return (
                error.status,
                [("Content-Type", "application/json")],
                json.dumps({"message": error.message}).encode(),
            )

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "messageString":
                return json.dumps(error.message)
            if name == "message":
                return error.message
            return kind if name == "responseType" else ""

        body = _VARIABLE.sub(value, configured.template).encode()
        headers = list(configured.headers)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return configured.status or error.status, headers, body
