"""Caller identity (the job owner) and public URLs, read from the API Gateway event."""

from __future__ import annotations

from typing import Any

from async_jobs.problems import ProblemError


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


# (event version, authorization) -> where the identity lives; None = try every known place.
_REST_PATHS: dict[str, list[tuple[str, ...]]] = {
    "AWS_IAM": [("identity", "userArn")],
    "COGNITO": [("authorizer", "claims", "sub")],
    "JWT": [("authorizer", "claims", "sub"), ("authorizer", "jwt", "claims", "sub")],
    "API_KEY": [("identity", "apiKeyId")],
}
_HTTP_PATHS: dict[str, list[tuple[str, ...]]] = {
    "AWS_IAM": [("authorizer", "iam", "userArn")],
    "JWT": [("authorizer", "jwt", "claims", "sub")],
    "COGNITO": [("authorizer", "jwt", "claims", "sub")],
    "API_KEY": [],
}


def is_http_api_event(event: dict[str, Any]) -> bool:
    return event.get("version") == "2.0"


def unauthenticated() -> ProblemError:
    return ProblemError(
        401,
        "The request carries no caller identity; sign it (or send the credentials) the API requires.",
        slug="unauthenticated",
    )


def owner_from_event(event: dict[str, Any], authorization: str) -> str | None:
    """The identity stored with a job and compared on GET and DELETE; None only under `NONE`.

    Under any other authorization an event without an identity fails closed with a 401: an
    ownerless job would be readable by nobody, or by everybody, depending on the reader.
    """
    if authorization == "NONE":
        return None
    context = event.get("requestContext") or {}
    table = _HTTP_PATHS if is_http_api_event(event) else _REST_PATHS
    candidates = table.get(authorization)
    if candidates is None:
        candidates = [path for paths in table.values() for path in paths]
    for path in candidates:
        value = _dig(context, *path)
        if isinstance(value, str) and value:
            return value
    raise unauthenticated()


def may_see(owner_in_state: str | None, caller: str | None, authorization: str) -> bool:
    if authorization == "NONE":
        return True
    return owner_in_state == caller


def base_url(event: dict[str, Any]) -> str:
    """`{scheme}://{domain}[/{stage}]` of the API the request came through."""
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    scheme = str(headers.get("x-forwarded-proto") or "https").split(",")[0].strip() or "https"
    host = context.get("domainName") or headers.get("host") or "localhost"
    stage = context.get("stage") or ""
    prefix = "" if stage in ("", "$default") else f"/{stage}"
    return f"{scheme}://{host}{prefix}"


def job_url(event: dict[str, Any], job_id: str) -> str:
    return f"{base_url(event)}/jobs/{job_id}"
