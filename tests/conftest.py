"""Fixtures shared by every test tier: a real PostgreSQL server for the database sinks.

Under pytest-xdist (`make test`) each worker is its own session: it starts its own server, on a
port of its own, in a directory of its own.
"""

from __future__ import annotations

import os

# The functions' Powertools singletons (observability.py) read their namespace when first
# imported, which in a test worker may be by any module: set it before any of them loads.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AsyncJobs")

from collections.abc import Iterator
from pathlib import Path

import pytest

from async_jobs_local.postgres import PostgresServer, start_server

from .layer_report import LayerReport


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


E2E = Path(__file__).resolve().parent / "e2e"


def pytest_configure(config: pytest.Config) -> None:
    """The time per layer at the end of the session, in the process that prints (not on xdist workers)."""
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(LayerReport.from_environment(), "layer-report")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On parallel workers, the e2e modules and those with a slow test go first, in collection order.

    The workers hand out whole modules in collection order (--dist loadscope
    --no-loadscope-reorder): the long stack applies start at once and the many quick modules
    fill in around them, instead of a long module starting last and running alone.
    """
    if not hasattr(config, "workerinput"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow") or item.path.is_relative_to(E2E)}
    items.sort(key=lambda item: item.path not in slow)  # stable: order kept within each group
