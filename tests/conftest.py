"""Fixtures shared by every test tier: a real PostgreSQL server for the database sinks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from async_jobs_local.postgres import PostgresServer, start_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL per test session, TLS only, max_connections 20 so overload shows."""
    server = start_server(max_connections=20)
    if server is None:
        pytest.fail(
            "PostgreSQL is not installed (no initdb): `apt-get install -y postgresql` "
            "(.ci/run does this on a fresh machine)"
        )
    try:
        yield server
    finally:
        server.stop()
