"""What arrives at the local API Gateway: one typed, immutable request, and the routes it matches."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

ACCOUNT_ID = "123456789012"


class ApiError(Exception):
    """An answer API Gateway itself gives, before or instead of the integration."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Request:
    """One HTTP request as the gateway received it (headers in arrival order, repeats kept)."""

    method: str
    target: str  # path and query string, as on the request line
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    lowered: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lowered: dict[str, str] = {}
        for name, value in self.headers:
            key = name.lower()
            lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
        object.__setattr__(self, "lowered", lowered)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def query_pairs(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def header(self, name: str, default: str = "") -> str:
        return self.lowered.get(name.lower(), default)

    @property
    def host(self) -> str:
        return self.header("host", "127.0.0.1")

    def with_headers(self, extra: dict[str, str]) -> Request:
        """This request with ``extra`` headers appended, those it already has left as they are."""
        added = tuple((name, value) for name, value in extra.items() if name.lower() not in self.lowered)
        return Request(self.method, self.target, self.headers + added, self.body, self.source_ip)


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

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    def path_parameters(self, path: str) -> dict[str, str] | None:
        match = self.pattern.match(path)
        if match is None:
            return None
        return {name: unquote(value) for name, value in match.groupdict().items()}


@dataclass(frozen=True)
class Api:
    """The deployed API the gateway plays: its kind, stage, id and routes."""

    api_type: str  # "rest" (proxy events v1) or "http" (payload 2.0)
    stage: str
    api_id: str
    routes: tuple[Route, ...]

    def strip_stage(self, path: str) -> str:
        if self.stage not in ("", "$default"):
            prefix = f"/{self.stage}"
            if path == prefix:
                return "/"
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return path

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route in self.routes:
            params = route.path_parameters(path)
            if params is not None and route.method in (method, "ANY"):
                return route, params
        if self.api_type == "http":
            raise ApiError(404, "Not Found")
        # REST APIs answer an unknown resource or method with 403 (before any authorizer).
        raise ApiError(403, "Missing Authentication Token")
