"""RFC 9457 problem details: the only error shape the API returns."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://async-jobs.dev/problems/"


class ProblemError(Exception):
    """Raised by domain code to end a request with a problem response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        slug: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.errors = errors
        self.headers = headers or {}
        self.slug = slug or self.title.lower().replace(" ", "-")

    def to_dict(self) -> dict[str, Any]:
        return problem_body(self.status, self.detail, title=self.title, errors=self.errors, slug=self.slug)


def problem_body(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    slug: str | None = None,
) -> dict[str, Any]:
    title = title or HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_json(status: int, detail: str, **kwargs: Any) -> str:
    return json.dumps(problem_body(status, detail, **kwargs))


def bad_request(
    detail: str, *, errors: list[dict[str, Any]] | None = None, slug: str = "bad-request"
) -> ProblemError:
    return ProblemError(400, detail, errors=errors, slug=slug)


def not_found(detail: str = "No job with this id.") -> ProblemError:
    return ProblemError(404, detail, slug="not-found")
