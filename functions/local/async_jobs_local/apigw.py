"""API Gateway in front of the local functions: HTTP request → proxy event → HTTP response.

Plays the deployed API as described by the Terraform outputs: ``api_routes`` (route key →
function name), ``api_type`` (REST proxy events v1 or HTTP API payload 2.0), ``api_stage_name``
and ``api_authorization``. Authentication is emulated, not enforced cryptographically:

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
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .sandbox import FunctionTimeout, InvocationError

log = logging.getLogger("async_jobs_local")

ACCOUNT_ID = "123456789012"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
INTEGRATION_TIMEOUT = 29.0  # seconds; API Gateway's default integration timeout

_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|x-ndjson|ndjson|xml|javascript|x-www-form-urlencoded|problem\+json)"
    r"|application/.*\+(json|xml))$"
)
_SIGV4 = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([A-Z0-9]{16,128})/", re.IGNORECASE)


class ApiError(Exception):
    """An answer API Gateway itself gives, before or instead of the integration."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/jobs/{job_id}"
    function: str
    pattern: re.Pattern[str]

    @classmethod
    def from_key(cls, key: str, function: str) -> Route:
        method, _, template = key.strip().partition(" ")
        regex = "^"
        for part in re.split(r"(\{[^}]+\})", template):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if name.endswith("+"):
                    regex += f"(?P<{name[:-1]}>.+)"
                else:
                    regex += f"(?P<{name}>[^/]+)"
            else:
                regex += re.escape(part)
        return cls(method.upper(), template, function, re.compile(regex + "/?$"))

    def path_parameters(self, path: str) -> dict[str, str] | None:
        match = self.pattern.match(path)
        if match is None:
            return None
        return {name: unquote(value) for name, value in match.groupdict().items()}


def _is_text(content_type: str) -> bool:
    if not content_type:
        return True
    return bool(_TEXT_TYPES.match(content_type.split(";", maxsplit=1)[0].strip().lower()))


def _jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError, binascii.Error):
        raise ApiError(401, "Unauthorized") from None
    if not isinstance(claims, dict):
        raise ApiError(401, "Unauthorized")
    return claims


@dataclass
class Caller:
    """Who is calling, as API Gateway would put it into the event."""

    access_key: str | None = None
    user_arn: str | None = None
    api_key: str | None = None
    api_key_id: str | None = None
    claims: dict[str, Any] | None = None


class ApiGateway:
    """Turns HTTP requests into proxy events for the function pools and back."""

    def __init__(
        self,
        outputs: Mapping[str, Any],
        invoke: Callable[[str, dict[str, Any]], Any],
        api_key_lookup: Callable[[str], str | None] | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.api_type = str(outputs.get("api_type") or "rest").lower()
        self.authorization = str(outputs.get("api_authorization") or "NONE").upper()
        self.stage = str(
            outputs.get("api_stage_name") or ("$default" if self.api_type == "http" else "local")
        )
        self.api_id = str(outputs.get("api_id") or "local")
        routes = outputs.get("api_routes") or {}
        if not routes:
            raise ValueError("the Terraform outputs have no api_routes")
        self.routes = [Route.from_key(key, function) for key, function in routes.items()]
        self._invoke = invoke
        self._api_key_lookup = api_key_lookup
        self.region = region

    # ------------------------------------------------------------------ routing

    def strip_stage(self, path: str) -> str:
        if self.stage not in ("", "$default"):
            prefix = f"/{self.stage}"
            if path == prefix:
                return "/"
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return path

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        path_exists = False
        for route in self.routes:
            params = route.path_parameters(path)
            if params is None:
                continue
            path_exists = True
            if route.method in (method, "ANY"):
                return route, params
        if self.api_type == "http":
            raise ApiError(404, "Not Found")
        # REST APIs answer an unknown resource or method with 403 (or 401 via authorizers).
        del path_exists
        raise ApiError(403, "Missing Authentication Token")

    # ------------------------------------------------------------------ authorization

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        auth = self.authorization
        if auth == "NONE":
            return Caller()
        if auth == "AWS_IAM":
            match = _SIGV4.match(headers.get("authorization", "").strip())
            if match is None:
                raise ApiError(403, "Missing Authentication Token")
            access_key = match.group(1)
            return Caller(access_key=access_key, user_arn=f"arn:aws:iam::{ACCOUNT_ID}:user/{access_key}")
        if auth == "API_KEY":
            key = headers.get("x-api-key", "")
            key_id = self._api_key_lookup(key) if (key and self._api_key_lookup) else None
            if key_id is None:
                raise ApiError(403, "Forbidden")
            return Caller(api_key=key, api_key_id=key_id)
        if auth in ("JWT", "COGNITO"):
            value = headers.get("authorization", "").strip()
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                value = token.strip()
            elif auth == "JWT" or " " in value:
                raise ApiError(401, "Unauthorized")  # HTTP API JWT authorizers want "Bearer <token>"
            if not value:
                raise ApiError(401, "Unauthorized")
            return Caller(claims=_jwt_claims(value))
        raise ApiError(500, f"authorization {auth} is not emulated locally")

    # ------------------------------------------------------------------ events

    def build_event(
        self,
        *,
        method: str,
        raw_path: str,
        route: Route,
        params: dict[str, str],
        header_pairs: list[tuple[str, str]],
        body: bytes,
        caller: Caller,
        source_ip: str,
    ) -> dict[str, Any]:
        split = urlsplit(raw_path)
        query_pairs = parse_qs(split.query, keep_blank_values=True)
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in header_pairs:
            headers[name] = value if name not in headers else f"{headers[name]},{value}"
            multi_headers.setdefault(name, []).append(value)
        lowered = {name.lower(): value for name, value in headers.items()}
        content_type = lowered.get("content-type", "")
        text_body: str | None = None
        is_base64 = False
        if body:
            if _is_text(content_type):
                try:
                    text_body = body.decode("utf-8")
                except UnicodeDecodeError:
                    text_body, is_base64 = base64.b64encode(body).decode("ascii"), True
            else:
                text_body, is_base64 = base64.b64encode(body).decode("ascii"), True
        host = lowered.get("host", "127.0.0.1")
        now = datetime.now(UTC)
        request_id = str(uuid.uuid4())
        path = self.strip_stage(split.path)
        if self.api_type == "http":
            return self._http_event(
                method=method,
                split=split,
                route=route,
                params=params,
                headers=headers,
                query_pairs=query_pairs,
                text_body=text_body,
                is_base64=is_base64,
                caller=caller,
                source_ip=source_ip,
                host=host,
                now=now,
                request_id=request_id,
            )
        stage_path = path if self.stage in ("", "$default") else f"/{self.stage}{path}"
        identity = {
            "cognitoIdentityPoolId": None,
            "accountId": ACCOUNT_ID if caller.user_arn else None,
            "cognitoIdentityId": None,
            "caller": caller.access_key,
            "sourceIp": source_ip,
            "principalOrgId": None,
            "accessKey": caller.access_key,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": caller.user_arn,
            "userAgent": lowered.get("user-agent"),
            "user": caller.access_key,
            "apiKey": caller.api_key,
            "apiKeyId": caller.api_key_id,
        }
        request_context: dict[str, Any] = {
            "resourceId": "local",
            "resourcePath": route.template,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": stage_path,
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": self.stage,
            "domainPrefix": host.split(".")[0].split(":")[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": identity,
            "domainName": host,
            "apiId": self.api_id,
        }
        if caller.claims is not None:
            request_context["authorizer"] = {"claims": caller.claims}
        return {
            "resource": route.template,
            "path": path,
            "httpMethod": method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in query_pairs.items()} or None,
            "multiValueQueryStringParameters": query_pairs or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": request_context,
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    def _http_event(
        self,
        *,
        method: str,
        split: Any,
        route: Route,
        params: dict[str, str],
        headers: dict[str, str],
        query_pairs: dict[str, list[str]],
        text_body: str | None,
        is_base64: bool,
        caller: Caller,
        source_ip: str,
        host: str,
        now: datetime,
        request_id: str,
    ) -> dict[str, Any]:
        lowered = {name.lower(): value for name, value in headers.items()}
        cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
        authorizer: dict[str, Any] | None = None
        if caller.user_arn:
            authorizer = {
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
        elif caller.claims is not None:
            authorizer = {"jwt": {"claims": caller.claims, "scopes": None}}
        route_key = f"{route.method} {route.template}"
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": split.path,
            "rawQueryString": split.query,
            "headers": lowered,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": self.api_id,
                "domainName": host,
                "domainPrefix": host.split(".", maxsplit=1)[0].split(":", maxsplit=1)[0],
                "http": {
                    "method": method,
                    "path": split.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": lowered.get("user-agent", ""),
                },
                "requestId": request_id,
                "routeKey": route_key,
                "stage": self.stage,
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": is_base64,
        }
        if cookies:
            event["cookies"] = cookies
        if query_pairs:
            event["queryStringParameters"] = {k: ",".join(v) for k, v in query_pairs.items()}
        if params:
            event["pathParameters"] = params
        if authorizer:
            event["requestContext"]["authorizer"] = authorizer
        if text_body is not None:
            event["body"] = text_body
        return event

    # ------------------------------------------------------------------ responses

    def to_http(self, result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        """Map a proxy integration result to (status, headers, body) as API Gateway does."""
        if self.api_type == "http" and not (isinstance(result, dict) and "statusCode" in result):
            # payload 2.0 lets a function return a bare value: 200 + JSON
            return 200, [("Content-Type", "application/json")], json.dumps(result).encode()
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
        return status, headers, raw

    def handle(
        self, method: str, raw_path: str, header_pairs: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        started = time.monotonic()
        path = self.strip_stage(urlsplit(raw_path).path)
        headers = {name.lower(): value for name, value in header_pairs}
        # What API Gateway's front end adds; the scheme is http here (Location, links).
        forwarded = {
            "X-Forwarded-For": source_ip,
            "X-Forwarded-Port": headers.get("host", "").rpartition(":")[2] or "80",
            "X-Forwarded-Proto": "http",
        }
        header_pairs = [*header_pairs, *((k, v) for k, v in forwarded.items() if k.lower() not in headers)]
        try:
            route, params = self.match(method, path)
            caller = self.authenticate(headers)
            event = self.build_event(
                method=method,
                raw_path=raw_path,
                route=route,
                params=params,
                header_pairs=header_pairs,
                body=body,
                caller=caller,
                source_ip=source_ip,
            )
            try:
                result = self._invoke(route.function, event)
            except FunctionTimeout:
                raise ApiError(504, "Endpoint request timed out") from None
            except InvocationError as exc:
                log.error("%s %s: %s failed: %s", method, raw_path, route.function, exc)
                raise ApiError(502, "Internal server error") from None
            status, out_headers, out_body = self.to_http(result)
        except ApiError as exc:
            status = exc.status
            out_headers = [("Content-Type", "application/json"), *exc.headers.items()]
            out_body = json.dumps({"message": exc.message}).encode()
            if exc.status == 403 and exc.message == "Missing Authentication Token":
                out_headers.append(("x-amzn-ErrorType", "MissingAuthenticationTokenException"))
        out_headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
        log.info("%s %s -> %d (%.0f ms)", method, raw_path, status, (time.monotonic() - started) * 1000)
        return status, out_headers, out_body


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        log.debug("http: " + format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    raise ApiError(413, "Request Too Long")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            raise ApiError(413, "Request Too Long")
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        gateway = self.server.gateway
        header_pairs = [(name, value) for name, value in self.headers.items()]
        try:
            body = self._read_body()
        except ApiError as exc:
            self.close_connection = True
            status, headers, payload = (
                exc.status,
                [("Content-Type", "application/json")],
                json.dumps({"message": exc.message}).encode(),
            )
        else:
            status, headers, payload = gateway.handle(
                self.command, self.path, header_pairs, body, self.client_address[0]
            )
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: ApiGateway) -> None:
        super().__init__(address, _Handler)
        self.gateway = gateway
