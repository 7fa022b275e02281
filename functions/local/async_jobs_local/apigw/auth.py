"""Authorization as API Gateway applies it before the integration; identities are read, not verified.

* ``AWS_IAM``: a SigV4 ``Authorization`` header is required and its access key id becomes the
  caller (``arn:aws:iam::123456789012:user/<access key id>``). The signature is NOT verified.
* ``API_KEY``: the ``x-api-key`` header must hold the value of an API key known to the API
  (moto's API keys); its id becomes ``identity.apiKeyId``.
* ``JWT`` / ``COGNITO``: a token is required (``Authorization: Bearer <jwt>``; the Cognito
  authorizer also takes the bare token); its claims are decoded, NOT verified.
* ``NONE``: no identity.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .request import ACCOUNT_ID, ApiError, Request

_SIGV4 = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([A-Z0-9]{16,128})/", re.IGNORECASE)


@dataclass(frozen=True)
class Caller:
    """Who is calling, as API Gateway puts it into the event."""

    access_key: str | None = None
    user_arn: str | None = None
    api_key: str | None = None
    api_key_id: str | None = None
    claims: dict[str, Any] | None = None


def jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError, binascii.Error):
        raise ApiError(401, "Unauthorized") from None
    if not isinstance(claims, dict):
        raise ApiError(401, "Unauthorized")
    return claims


class Authorizer:
    """The API's authorization type applied to a request: the caller, or the gateway's 401/403."""

    def __init__(self, authorization: str, api_key_lookup: Callable[[str], str | None] | None = None) -> None:
        self.authorization = authorization.upper()
        self._api_key_lookup = api_key_lookup

    def authenticate(self, request: Request) -> Caller:
        auth = self.authorization
        if auth == "NONE":
            return Caller()
        if auth == "AWS_IAM":
            match = _SIGV4.match(request.header("authorization").strip())
            if match is None:
                raise ApiError(403, "Missing Authentication Token")
            access_key = match.group(1)
            return Caller(access_key=access_key, user_arn=f"arn:aws:iam::{ACCOUNT_ID}:user/{access_key}")
        if auth == "API_KEY":
            key = request.header("x-api-key")
            key_id = self._api_key_lookup(key) if (key and self._api_key_lookup) else None
            if key_id is None:
                raise ApiError(403, "Forbidden")
            return Caller(api_key=key, api_key_id=key_id)
        if auth in ("JWT", "COGNITO"):
            value = request.header("authorization").strip()
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                value = token.strip()
            elif auth == "JWT" or " " in value:
                raise ApiError(401, "Unauthorized")  # HTTP API JWT authorizers want "Bearer <token>"
            if not value:
                raise ApiError(401, "Unauthorized")
            return Caller(claims=jwt_claims(value))
        raise ApiError(500, f"authorization {auth} is not emulated locally")
