"""The local API server takes a burst of connections without resetting any."""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any

from async_jobs_local.apigw import ApiGateway, ApiServer

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
