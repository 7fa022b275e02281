"""HTTP protocol of the job API: requests, authorization (SigV4, bearer token, API key), problems."""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from .contract import route
from .inputs import JSON, NDJSON, InputFile, inline_body, ndjson_copy

TERMINAL = frozenset({"succeeded", "completed_with_errors", "failed", "cancelled", "expired"})
# Blocks of the streamed upload: memory stays flat whatever the file size.
UPLOAD_BLOCK = 1 << 20
# Retry-After as delay-seconds (RFC 9110): ASCII digits only, bounded; anything else is ignored
# (`str.isdigit()` holds for "²", which float() refuses).
_DELAY_SECONDS = re.compile(r"[0-9]{1,6}")
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ByteSink(Protocol):
    def write(self, block: bytes, /) -> Any: ...


class ApiError(Exception):
    """A response the call did not expect; ``str()`` is ``title: detail`` of its problem+json."""

    def __init__(self, response: Response, what: str) -> None:
        self.response = response
        self.status = response.status
        title, detail = f"HTTP {response.status}", ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and ("title" in body or "detail" in body or "message" in body):
            title = str(body.get("title") or title)
            detail = str(body.get("detail") or body.get("message") or "")
        else:
            detail = response.body[:300].decode("utf-8", "replace").strip()
        self.title, self.detail = title, detail
        super().__init__(f"{title}: {detail}" if detail else f"{title} ({what})")


class SigV4:
    """Signs requests for ``execute-api`` with the caller's botocore credentials."""

    def __init__(
        self, region: str | None = None, profile: str | None = None, credentials: Any = None
    ) -> None:
        session = botocore.session.Session(profile=profile)
        credentials = credentials or session.get_credentials()
        if credentials is None:
            raise RuntimeError("--auth iam: no AWS credentials found (environment, profile or role)")
        self.credentials = credentials
        self.region = region or session.get_config_variable("region")

    @staticmethod
    def available(profile: str | None = None) -> bool:
        return botocore.session.Session(profile=profile).get_credentials() is not None

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        region = self.region
        if not region:
            match = _EXECUTE_API_HOST.search(urlsplit(url).hostname or "")
            region = match.group(1) if match else "us-east-1"
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        return dict(request.headers.items())


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    split = urlsplit(url)
    if split.scheme == "https":
        return http.client.HTTPSConnection(split.hostname or "", split.port, timeout=timeout)
    if split.scheme == "http":
        return http.client.HTTPConnection(split.hostname or "", split.port, timeout=timeout)
    raise ValueError(f"not an http(s) URL: {url!r}")


def _target(url: str) -> str:
    split = urlsplit(url)
    return (split.path or "/") + (f"?{split.query}" if split.query else "")


def send(
    method: str,
    url: str,
    *,
    body: bytes | IO[bytes] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    sink: ByteSink | None = None,
) -> Response:
    """One request on its own connection. A file body is streamed in blocks with its
    ``Content-Length`` (presigned S3 PUTs take no chunked encoding); with ``sink`` a 2xx body is
    copied there in blocks instead of being held."""
    connection = _connection(url, timeout)
    connection.blocksize = UPLOAD_BLOCK
    try:
        connection.request(method, _target(url), body=body, headers=headers or {})
        response = connection.getresponse()
        names = {k.lower(): v for k, v in response.getheaders()}
        if sink is not None and 200 <= response.status < 300:
            while block := response.read(UPLOAD_BLOCK):
                sink.write(block)
            return Response(response.status, names, b"")
        return Response(response.status, names, response.read())
    finally:
        connection.close()


class JobsApi:
    """The job API at ``base_url`` (the stage URL, e.g. ``https://id.execute-api.eu-west-1.amazonaws.com/v1``).

    Exactly one of ``sigv4``, ``token`` (``Authorization: Bearer``) or ``api_key`` (``x-api-key``)
    authorizes the calls, or none of them for an API without authorization.
    """

    def __init__(
        self,
        base_url: str,
        *,
        sigv4: SigV4 | None = None,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not urlsplit(base_url).scheme.startswith("http"):
            raise ValueError(f"the API URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.sigv4, self.token, self.api_key, self.timeout = sigv4, token, api_key, timeout

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        url = self.base_url + path
        all_headers = dict(headers or {})
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if self.api_key:
            all_headers["x-api-key"] = self.api_key
        if self.sigv4:
            all_headers = self.sigv4.sign(method, url, all_headers, body)
        return send(method, url, body=body, headers=all_headers, timeout=self.timeout)

    def _expect(self, response: Response, *statuses: int, what: str) -> dict[str, Any]:
        if response.status not in statuses:
            raise ApiError(response, what)
        body = response.json()
        return body if isinstance(body, dict) else {}

    def _operation(
        self,
        operation: str,
        status: int,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **params: str,
    ) -> dict[str, Any]:
        """Call the contract's route of ``operation``; anything but ``status`` is an ApiError."""
        target = route(operation)
        response = self.call(target.method, target.url_path(**params), body, headers)
        return self._expect(response, status, what=str(target))

    def submit_inline(
        self,
        source: InputFile,
        *,
        idempotency_key: str | None = None,
        metadata: dict[str, Any] | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """POST /jobs with the file as the body (with ``metadata``, as a JSON document)."""
        content_type, body = inline_body(source, metadata)
        headers = {"Content-Type": content_type}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if callback_url:
            headers["Callback-Url"] = callback_url
        return self._operation("submitJob", 202, body, headers)

    def create_upload(
        self, metadata: dict[str, Any] | None = None, callback_url: str | None = None
    ) -> dict[str, Any]:
        body = json.dumps({"metadata": metadata} if metadata else {}).encode()
        headers = {"Content-Type": "application/json"}
        if callback_url:
            headers["Callback-Url"] = callback_url
        return self._operation("createUpload", 201, body, headers)

    def upload(self, slot: dict[str, Any], ndjson_path: str, size: int) -> None:
        """PUT the file to the slot's presigned URL with exactly its headers, streamed."""
        upload = slot["upload"]
        headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
        headers.setdefault("Content-Type", NDJSON)
        headers["Content-Length"] = str(size)
        with open(ndjson_path, "rb") as stream:
            response = send(
                upload.get("method", "PUT"), upload["url"], body=stream, headers=headers, timeout=3600
            )
        if not 200 <= response.status < 300:
            raise ApiError(response, "upload PUT")

    def submit_file(
        self,
        source: InputFile,
        *,
        max_inline_bytes: int,
        idempotency_key: str | None = None,
        metadata: dict[str, Any] | None = None,
        callback_url: str | None = None,
        on_upload: Callable[[dict[str, Any], int], object] | None = None,
    ) -> dict[str, Any]:
        """Inline when the file fits in ``max_inline_bytes``, else through an upload slot (a JSON
        document is first copied to NDJSON, the only format an upload takes). ``metadata`` and
        ``callback_url`` go with the job either way."""
        if source.size <= max_inline_bytes:
            return self.submit_inline(
                source, idempotency_key=idempotency_key, metadata=metadata, callback_url=callback_url
            )
        ndjson = ndjson_copy(source) if source.content_type == JSON else source.path
        try:
            size = ndjson.stat().st_size
            slot = self.create_upload(metadata, callback_url)
            if on_upload:
                on_upload(slot, size)
            self.upload(slot, str(ndjson), size)
        finally:
            if ndjson != source.path:
                ndjson.unlink()
        return slot

    def get(self, job_id: str, etag: str | None = None) -> Response:
        target = route("getJob")
        headers = {"If-None-Match": etag} if etag else None
        return self.call(target.method, target.url_path(job_id=job_id), headers=headers)

    def status(self, job_id: str) -> dict[str, Any]:
        return self._expect(self.get(job_id), 200, what=str(route("getJob")))

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._operation("cancelJob", 202, job_id=job_id)

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._operation("retryJob", 202, b"", job_id=job_id)

    def list(self, **query: str) -> dict[str, Any]:
        """One page of GET /jobs; ``query`` takes status, created_after, created_before, limit
        and cursor."""
        target = route("listJobs")
        path = target.url_path() + (f"?{urlencode(query)}" if query else "")
        return self._expect(self.call(target.method, path), 200, what=str(target))

    def list_all(self, **query: str) -> Iterator[dict[str, Any]]:
        """Every job the filters select, following each page's ``next`` link to the end."""
        while True:
            page = self.list(**query)
            yield from page.get("items") or []
            following = page.get("next")
            if not following:
                return
            query = dict(parse_qsl(urlsplit(str(following)).query))

    def download_errors(self, job: dict[str, Any], sink: ByteSink) -> bool:
        """Copy the job's errors report (``links.errors``, a presigned GET) to ``sink``; False if
        the job has none. No authorization header: the URL carries its own signature."""
        url = (job.get("links") or {}).get("errors")
        if not url:
            return False
        response = send("GET", url, timeout=self.timeout, sink=sink)
        if not 200 <= response.status < 300:
            raise ApiError(response, "errors report GET")
        return True

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 3600.0,
        interval: float = 2.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any] | None:
        """Poll until the job is terminal (its resource) or ``timeout`` passes (None). Polls send
        the last ``ETag`` so an unchanged job costs a 304; ``Retry-After`` is honored up to
        ``interval`` times four."""
        deadline = clock() + timeout
        job: dict[str, Any] = {}
        etag: str | None = None
        while True:
            response = self.get(job_id, etag)
            delay = interval
            if response.status == 200:
                job = self._expect(response, 200, what=str(route("getJob")))
                etag = response.headers.get("etag")
                if on_poll:
                    on_poll(job)
                if job.get("status") in TERMINAL:
                    return job
            elif response.status != 304:
                raise ApiError(response, str(route("getJob")))
            retry_after = response.headers.get("retry-after", "")
            if _DELAY_SECONDS.fullmatch(retry_after):
                delay = min(max(float(retry_after), interval), interval * 4)
            remaining = deadline - clock()
            if remaining <= 0:
                return None
            sleep(min(delay, remaining))
