"""How much each profile measures. ``full`` is ``make bench`` (under 15 minutes on 2 cores)."""

from __future__ import annotations

from typing import Any

FULL: dict[str, Any] = {
    # examples/postgres deployed: 50 clients, sync (one connection each) and async (4 workers)
    "database": {"records": 50_000},
    "latency": {
        "async": {"10": 30, "1000": 20, "10000": 10, "largest": 5},
        # A sync request of 10,000 records or more runs into API Gateway's 29 s: one try shows it.
        "sync": {"10": 10, "1000": 3, "10000": 1, "largest": 1},
        "floor": {"10": 30, "1000": 20, "10000": 10, "largest": 5},
    },
    "throughput": {"clients": [1, 8, 50], "requests": {"1": 6, "8": 2, "50": 1}, "records": 100},
    "scaling": {"concurrency": [1, 2, 4, 8, 16], "records": 6400, "sink_latency_s": 0.05},
    "contention": {
        "records": 100_000,
        "chunk_records": 100,
        "concurrency": [1, 10, 25, 50],
        "window_s": 8,
        "s3_latency_s": 0.025,
    },
    "fairness": {
        "small_records": 300,
        "big_records": 30_000,
        "worker_concurrency": 2,
        "sink_latency_s": 0.05,
    },
    "cost": {"sizes": [1000, 10_000, 100_000], "sync_records": 300, "worker_concurrency": 8},
    "cold_start_runs": 5,
    "design": {
        "submit": {"records": 10_000, "latency_s": 0.025, "samples": 5},
        "cost": {"records": 10_000, "latency_s": 0.025, "sync_records_per_request": 1000},
        "scaling": {"latency_s": 0.025, "chunks_per_worker": 16, "workers": [1, 8, 10, 50, 200]},
        "chaos": {
            "latency_s": 0.005,
            "workers": 20,
            "chunks": 60,
            "kill": 0.15,
            "duplicate": 0.2,
            "cancel_after_s": 0.3,
        },
    },
}

QUICK: dict[str, Any] = {
    "database": {"records": 5_000},
    "latency": {
        "async": {"10": 3, "1000": 3, "10000": 2, "largest": 1},
        "sync": {"10": 2, "1000": 1},
        "floor": {"10": 3, "1000": 3, "10000": 2, "largest": 1},
    },
    "throughput": {"clients": [1, 8], "requests": {"1": 2, "8": 1}, "records": 100},
    "scaling": {"concurrency": [1, 2], "records": 1000, "sink_latency_s": 0.05},
    "contention": {
        "records": 100_000,
        "chunk_records": 100,
        "concurrency": [1, 4],
        "window_s": 4,
        "s3_latency_s": 0.025,
    },
    "fairness": {
        "small_records": 100,
        "big_records": 10_000,
        "worker_concurrency": 2,
        "sink_latency_s": 0.05,
    },
    "cost": {"sizes": [1000], "sync_records": 200, "worker_concurrency": 2},
    "cold_start_runs": 1,
    "design": {
        "submit": {"records": 10_000, "latency_s": 0.025, "samples": 2},
        "cost": {"records": 10_000, "latency_s": 0.025, "sync_records_per_request": 1000},
        "scaling": {"latency_s": 0.025, "chunks_per_worker": 16, "workers": [1, 8, 50]},
        "chaos": {
            "latency_s": 0.005,
            "workers": 10,
            "chunks": 30,
            "kill": 0.15,
            "duplicate": 0.2,
            "cancel_after_s": 0.2,
        },
    },
}

# The design layer's smoke: every measurement, small (a few seconds each), figures not quoted.
SMOKE: dict[str, Any] = {
    "floor": {10: 3, 1000: 3},
    "cold_start_runs": 2,
    "design": {
        "submit": {"records": 1000, "latency_s": 0.005, "samples": 1},
        "cost": {"records": 10_000, "latency_s": 0.005, "sync_records_per_request": 1000},
        "scaling": {"latency_s": 0.005, "chunks_per_worker": 16, "workers": [1, 8]},
        "chaos": {
            "latency_s": 0.002,
            "workers": 4,
            "chunks": 12,
            "kill": 0.15,
            "duplicate": 0.2,
            "cancel_after_s": 0.05,
        },
    },
}

PROFILES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}
