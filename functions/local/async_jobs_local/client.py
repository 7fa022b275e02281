"""The job API's HTTP client for the demo and the e2e tests: the shipped client's transport and
``Response`` (``async_jobs_client.api``), with every answer returned as it came (tests assert
statuses and headers) and the local stack's stand-in authentication."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from async_jobs_client.api import Response, send

__all__ = ["JobsClient", "Response"]


class JobsClient:
    """Talks to ``base_url`` (``http://127.0.0.1:8080`` or ``.../<stage>``) over real HTTP.

    ``access_key`` adds a SigV4-shaped ``Authorization`` header (the local stack reads the
    caller from it; it does not verify signatures), ``api_key`` an ``x-api-key`` header,
    ``bearer`` a ``Bearer`` token.
    """

    def __init__(
        self,
        base_url: str,
        *,
        access_key: str | None = None,
        api_key: str | None = None,
        bearer: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        split = urlsplit(base_url)
        self.host = split.hostname or "127.0.0.1"
        self.port = split.port or 80
        self.prefix = split.path.rstrip("/")
        self.access_key = access_key
        self.api_key = api_key
        self.bearer = bearer
        self.timeout = timeout

    def _auth_headers(self) -> dict[str, str]:
        headers = {}
        if self.access_key:
            headers["Authorization"] = (
                f"AWS4-HMAC-SHA256 Credential={self.access_key}/20250101/us-east-1/execute-api/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
            )
            headers["X-Amz-Date"] = "20250101T000000Z"
        if self.api_key:
            headers["x-api-key"] = self.api_key
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        return headers

    def request(
        self, method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        target = path if path.startswith("http") else self.prefix + path
        if target.startswith("http"):
            split = urlsplit(target)
            target = split.path + (f"?{split.query}" if split.query else "")
        all_headers = {**self._auth_headers(), **(headers or {})}
        payload = body.encode() if isinstance(body, str) else body
        url = f"http://{self.host}:{self.port}{target}"
        return send(method, url, body=payload, headers=all_headers, timeout=self.timeout)

    def submit(self, records: list[Any], metadata: dict[str, Any] | None = None, **headers: str) -> Response:
        document: dict[str, Any] = {"records": records}
        if metadata is not None:
            document["metadata"] = metadata
        return self.request(
            "POST", "/jobs", json.dumps(document), {"Content-Type": "application/json", **headers}
        )

    def submit_ndjson(self, body: str | bytes, **headers: str) -> Response:
        return self.request("POST", "/jobs", body, {"Content-Type": "application/x-ndjson", **headers})

    def get(self, job_id: str, **headers: str) -> Response:
        return self.request("GET", f"/jobs/{job_id}", headers=headers)

    def cancel(self, job_id: str) -> Response:
        return self.request("DELETE", f"/jobs/{job_id}")
