"""bench.database's instruments on a real PostgreSQL, and its report section (no deployment: fast).

The measurement itself needs examples/postgres applied (``python -m bench.database``, part of
``make bench``); here the pieces it is made of are checked against what they must see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from async_jobs_local.postgres import PostgresServer, start_server
from bench import report
from bench.database import DATABASE, Sampler, concurrently, summary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    found = start_server(max_connections=20)
    if found is None:
        pytest.fail("PostgreSQL is not installed (no initdb): `apt-get install -y postgresql`")
    found.create_database(DATABASE)
    try:
        yield found
    finally:
        found.stop()


def test_sampler_sees_the_peak_and_a_burst_past_max_connections_is_refused(server: PostgresServer) -> None:
    # GIVEN the sampler watching a 20-connection server
    sampler = Sampler(server)
    sampler.start()
    refused: list[str] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        # WHEN 50 clients arrive at once, each holding a connection as a sync request does
        try:
            with psycopg.connect(**server.settings(dbname=DATABASE), autocommit=True) as conn:  # type: ignore[arg-type]
                conn.execute("SELECT 1")
                time.sleep(0.5)
        except psycopg.OperationalError as error:
            with lock:
                refused.append(str(error))

    concurrently(50, client)
    peak = sampler.finish()
    # THEN the server was full (its reserved superuser slots aside) and refused the rest
    served = 50 - len(refused)
    assert refused and all("too many clients" in error or "reserved" in error for error in refused)
    assert 10 <= served < 20  # the sampler holds one of the 20
    assert peak == served


def test_summary_and_report_section() -> None:
    sync = summary(20, 30, 20_000, 3.2, [0.5, 1.0, 1.5, 2.0])
    async_ = summary(4, 0, 50_000, 40.0, [0.05] * 10)
    assert sync["p95_s"] == pytest.approx(1.925) and sync["requests"] == 4
    database = {"max_connections": 20, "clients": 50, "workers": 4, "records": 50_000}
    lines = report._database({"database": {**database, "sync": sync, "async": async_}})
    text = "\n".join(lines)
    assert "| sync | 20 | 30 | 20,000 | 3.2 s | 1,925 ms |" in text
    assert "| async | 4 | 0 | 50,000 | 40.0 s | 50 ms |" in text
    assert report._database({"database": None}) == []
