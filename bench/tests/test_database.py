"""bench.database on a small load: the figures exist and show what the pattern is for."""

from __future__ import annotations

import pytest

from bench.database import CLIENTS, WORKERS, measure

pytestmark = pytest.mark.slow


def test_async_path_holds_worker_connections_and_loses_nothing() -> None:
    records = 5_000
    result = measure(records)
    sync, async_ = result["sync"], result["async"]
    # 4 workers hold at most 4 connections and every record lands, with no error
    assert 1 <= async_["peak_connections"] <= WORKERS
    assert (async_["errors"], async_["records_written"]) == (0, records)
    # 50 clients against 20 connections: the server is full and refuses some requests
    assert sync["peak_connections"] > WORKERS
    assert sync["errors"] > 0 and sync["records_written"] < records
    assert sync["records_written"] == (CLIENTS - sync["errors"]) * (records // CLIENTS)
    assert all(mode["seconds"] > 0 for mode in (sync, async_))
