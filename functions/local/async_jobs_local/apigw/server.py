"""The HTTP server of the local API Gateway: a thread per connection and a listen backlog for bursts.

``ThreadingHTTPServer`` listens with a backlog of 5: a burst of clients beyond that gets its
connections reset before a thread ever accepts them. API Gateway takes thousands of connections
at once, so the server listens with a backlog of ``LISTEN_BACKLOG``; every accepted connection
gets its own thread, and the functions behind it throttle (or queue) as Lambda does.

Every method goes to the gateway, which answers it as the deployed API does (a REST API's
gateway response for a method no route has, an HTTP API's 404); ``BaseHTTPRequestHandler``
alone answers any method it has no ``do_`` handler for (TRACE, CONNECT, PROPFIND, ...) and any
request it cannot parse with an HTML page API Gateway never sends. The framing headers are
read strictly (ASCII digits, bounded), a malformed one is a 400 from the gateway.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .gateway import ApiGateway
from .request import ApiError, Request
from .responses import Response

log = logging.getLogger("async_jobs_local")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn
# Content-Length and chunk sizes: ASCII digits (hex for chunks), bounded (int() takes "²" as an
# error and " 1_0 " as ten)
_LENGTH = re.compile(rb"[0-9]{1,12}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")


def _bad_request() -> ApiError:
    return ApiError(400, "Bad Request")


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        log.debug("http: " + format, *args)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # handle_one_request dispatches to do_<METHOD>: every method is the gateway's to answer
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A request the HTTP layer refuses (malformed request line, headers too long, HTTP
        version) answered as API Gateway answers it: its own error, never an HTML page."""
        self.close_connection = True
        # the front end refuses what it cannot parse (an unknown HTTP version included) as a 4xx
        code = code if code < 500 else 400
        phrase = self.responses.get(code, ("Error",))[0]
        # a refused request line leaves the version unknown (HTTP/0.9 here, which writes no
        # status line): the answer is HTTP/1.1, as API Gateway's
        self.request_version = self.protocol_version
        self._write(self.server.gateway.error_response(ApiError(code, phrase)))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                text = self.rfile.readline(64).split(b";")[0].strip()
                if not _CHUNK_SIZE.fullmatch(text):
                    raise _bad_request()
                size = int(text, 16)
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
        values = self.headers.get_all("Content-Length") or []
        if len(values) > 1 or (values and not _LENGTH.fullmatch(values[0].encode("latin-1"))):
            raise _bad_request()
        length = int(values[0]) if values else 0
        if length > MAX_PAYLOAD_BYTES:
            raise ApiError(413, "Request Too Long")
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ApiError as exc:
            self.close_connection = True
            response = self.server.gateway.error_response(exc)
        else:
            request = Request(
                method=self.command,
                target=self.path,
                headers=tuple(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
            )
            response = self.server.gateway.handle(request)
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], gateway: ApiGateway) -> None:
        super().__init__(address, _Handler)
        self.gateway = gateway

    def server_bind(self) -> None:
        # Short bursts of many connections: no Nagle delay on small JSON answers.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()
