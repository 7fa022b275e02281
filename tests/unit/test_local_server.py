"""The local API server takes a burst of connections without resetting any, and answers every
method and every malformed request as API Gateway does, never with an HTML page."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from async_jobs_local.apigw import ApiGateway, ApiServer, GatewayResponses

CLIENTS = 100


def test_a_hundred_simultaneous_connections_are_all_answered() -> None:
    # GIVEN the server in front of a function that takes a moment
    def slow(function: str, event: dict[str, Any]) -> Any:
        time.sleep(0.2)
        return {"statusCode": 200, "body": "{}"}

    server = ApiServer(("127.0.0.1", 0), ApiGateway({"api_routes": {"GET /jobs/{job_id}": "status"}}, slow))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    start = threading.Barrier(CLIENTS)
    results: list[Any] = [None] * CLIENTS

    def call(index: int) -> None:
        start.wait()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", f"/jobs/{index}")
            results[index] = connection.getresponse().status
        except OSError as exc:
            results[index] = repr(exc)
        finally:
            connection.close()

    # WHEN 100 clients connect at the same moment
    clients = [threading.Thread(target=call, args=(index,)) for index in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    # THEN every one is answered, none reset
    assert [r for r in results if r != 200] == []


# -- every method and every malformed request answered as API Gateway answers -----------------
PROBLEM_TEMPLATE = (
    '{"type":"https://async-jobs.dev/problems/%s","title":"%s","status":%d,'
    '"detail":$context.error.messageString}'
)
# The gateway responses the REST submodule configures (modules/rest-api/main.tf), as
# GetGatewayResponses returns them; the plan tests hold the module to this shape.
REST_RESPONSES = GatewayResponses.from_api(
    [
        {
            "responseType": kind,
            "statusCode": str(status),
            "responseParameters": {"gatewayresponse.header.Content-Type": "'application/problem+json'"},
            "responseTemplates": {"application/json": PROBLEM_TEMPLATE % (slug, title, status)},
        }
        for kind, status, title, slug in (
            ("MISSING_AUTHENTICATION_TOKEN", 403, "Forbidden", "forbidden"),
            ("DEFAULT_4XX", 400, "Bad Request", "bad-request"),
            ("DEFAULT_5XX", 502, "Bad Gateway", "bad-gateway"),
        )
    ]
)
METHODS = ["TRACE", "CONNECT", "PROPFIND", "MKCOL", "LOCK", "FOO", "M-SEARCH", "get", "PATCH", "OPTIONS"]


@contextlib.contextmanager
def serving(api_type: str) -> Iterator[int]:
    def ok(function: str, event: dict[str, Any]) -> Any:
        return {"statusCode": 200, "body": "{}"}

    outputs = {"api_type": api_type, "api_routes": {"GET /jobs/{job_id}": "status", "POST /jobs": "submit"}}
    server = ApiServer(("127.0.0.1", 0), ApiGateway(outputs, ok, gateway_responses=REST_RESPONSES))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one raw request, read until the server closes or the body ends."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body[: int(headers.get("content-length", len(body)))]


@pytest.mark.parametrize("method", METHODS)
def test_any_method_on_a_rest_api_is_its_gateway_response_as_problem_json(method: str) -> None:
    with serving("rest") as port:
        target = "127.0.0.1:443" if method == "CONNECT" else "/jobs/0b6f8f0e-1d5a-4c4e-9a57-3f7d2c1e9b10"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(method, target, headers={"Host": "127.0.0.1"})
        response = connection.getresponse()
        body = response.read()
        connection.close()
    # a REST API answers a method no route has with 403 Missing Authentication Token, which the
    # module's gateway response turns into a problem
    assert response.status == 403, body
    assert response.getheader("content-type") == "application/problem+json"
    assert json.loads(body) == {
        "type": "https://async-jobs.dev/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "Missing Authentication Token",
    }


@pytest.mark.parametrize("method", METHODS)
def test_any_method_on_an_http_api_is_its_404(method: str) -> None:
    with serving("http") as port:
        status, headers, body = raw_exchange(
            port, f"{method} /jobs/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
    assert (status, headers["content-type"], json.loads(body)) == (
        404,
        "application/json",
        {"message": "Not Found"},
    )


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",  # no target, no version
        b"GET /jobs HTTP/9.9\r\nHost: x\r\n\r\n",  # an HTTP version the server does not speak
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",  # a request line too long
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: \xc2\xb2\r\n\r\n",  # "²"
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"0" * 5000 + b"1\r\n\r\nx",
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx",
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\xc2\xb2\r\nx\r\n0\r\n\r\n",
    ],
)
def test_a_malformed_request_is_a_problem_never_an_html_page(request_bytes: bytes) -> None:
    with serving("rest") as port:
        status, headers, body = raw_exchange(port, request_bytes)
    assert 400 <= status < 600, body
    assert headers["content-type"] == "application/problem+json", body
    assert json.loads(body)["status"] == status
