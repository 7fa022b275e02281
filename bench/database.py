"""What the pattern protects a database from: ``python -m bench.database [--records N] [--out FILE]``.

examples/postgres is applied to a local moto server, its RDS endpoint answered by one real
PostgreSQL (async_jobs_local.postgres: TLS only, max_connections 20, like a small RDS instance
shared with other applications; async_jobs_local.databases routes the endpoint and plays RDS IAM
authentication). 50 concurrent HTTP clients send the same records two ways:

- ``sync``: ``POST /sync/db/jobs``, the design this project replaces (bench/sync_database_handler.py,
  run with the worker's package, role and configuration): each request opens its own connection
  and inserts its records one statement at a time while the client waits;
- ``async``: ``POST /jobs`` of the deployed module (``worker_maximum_concurrency = 4``, the
  ``postgres`` sink): ``202`` at once, then the worker COPYs and upserts chunk by chunk.

Each mode reports ``peak_connections`` (client backends in ``pg_stat_activity``, sampled every
10 ms, the sampler's own excluded), ``errors`` (requests not answered 2xx, and for ``async`` jobs
that did not succeed), ``records_written`` (rows the mode added), ``seconds`` (first request to
last row written) and the requests' latency (``p50_s``, ``p95_s``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from async_jobs_local import JobsClient, LocalDeployment
from async_jobs_local.local_functions import LocalFunction
from async_jobs_local.postgres import PostgresServer, start_server
from async_jobs_local.postgres_example import DATABASE, postgres_deployment, set_up_database

from .stats import percentile
from .workload import TERMINAL, job_state, post, record

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 50
WORKERS = 4
MAX_CONNECTIONS = 20
SYNC_ROUTE = "POST /sync/db/jobs"
SYNC_FUNCTION = "async-jobs-bench-sync-db"


class Sampler(threading.Thread):
    """Peak of client connections, from a connection opened before the load starts."""

    def __init__(self, server: PostgresServer, dbname: str = DATABASE) -> None:
        super().__init__(daemon=True)
        self._conn = psycopg.connect(**server.settings(dbname=dbname), autocommit=True)  # type: ignore[arg-type]
        self._done = threading.Event()
        self.peak = 0

    def run(self) -> None:
        while not self._done.is_set():
            row = self._conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
            self.peak = max(self.peak, int(row[0]) if row else 0)
            time.sleep(0.01)

    def finish(self) -> int:
        self._done.set()
        self.join()
        self._conn.close()
        return self.peak


def rows(server: PostgresServer) -> int:
    with psycopg.connect(**server.settings(dbname=DATABASE)) as conn:  # type: ignore[arg-type]
        row = conn.execute("SELECT count(*) FROM job_records").fetchone()
        return int(row[0]) if row else 0


def concurrently(clients: int, request: Callable[[int], None]) -> None:
    """``request(n)`` for each client at once, released together as a burst."""
    burst = threading.Barrier(clients)

    def client(number: int) -> None:
        burst.wait()
        request(number)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def warm(stack: LocalDeployment, function_name: str, count: int) -> None:
    """Up to ``count`` environments of the function started, a few at a time: warm, as a busy API's
    are (50 cold starts at once on two cores exceed Lambda's 10 s init limit, and the run would
    measure that instead of the database)."""
    pool = stack.pools[function_name]
    for started in range(4, count + 4, 4):
        pool.warm(min(started, count))


def summary(peak: int, errors: int, written: int, seconds: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "peak_connections": peak,
        "errors": errors,
        "records_written": written,
        "seconds": round(seconds, 3),
        "requests": len(latencies),
        "p50_s": round(percentile(latencies, 50), 4) if latencies else None,
        "p95_s": round(percentile(latencies, 95), 4) if latencies else None,
    }


def sync_mode(stack: LocalDeployment, server: PostgresServer, records: int, clients: int) -> dict[str, Any]:
    api = JobsClient(stack.stage_url, access_key=stack.admin_credentials()[0], timeout=120)
    per_client = records // clients
    payload = json.dumps({"records": [record(i) for i in range(per_client)]}).encode()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def request(_: int) -> None:
        status, seconds, document = post(api, "/sync/db/jobs", payload)
        with lock:
            latencies.append(seconds)
            if status != 200:
                errors.append(str((document or {}).get("detail") or status))

    warm(stack, SYNC_FUNCTION, clients)
    before = rows(server)
    sampler = Sampler(server)
    sampler.start()
    started = time.perf_counter()
    concurrently(clients, request)
    seconds = time.perf_counter() - started
    result = summary(sampler.finish(), len(errors), rows(server) - before, seconds, latencies)
    # what the server answered, once each ("too many clients already", reserved slots)
    result["refusals"] = sorted({error.split("FATAL:")[-1].strip()[:80] for error in errors})[:3]
    return result


def async_mode(
    stack: LocalDeployment, server: PostgresServer, records: int, clients: int, timeout: float = 600
) -> dict[str, Any]:
    api = JobsClient(stack.stage_url, access_key=stack.admin_credentials()[0], timeout=120)
    per_client = records // clients
    payload = json.dumps({"records": [record(i) for i in range(per_client)]}).encode()
    latencies: list[float] = []
    job_ids: list[str] = []
    errors = [0]
    lock = threading.Lock()

    def request(_: int) -> None:
        status, seconds, document = post(api, "/jobs", payload)
        with lock:
            latencies.append(seconds)
            if status == 202 and document:
                job_ids.append(document["job_id"])
            else:
                errors[0] += 1

    warm(stack, stack.outputs["api_routes"]["POST /jobs"], clients)
    before = rows(server)
    sampler = Sampler(server)
    sampler.start()
    started = time.perf_counter()
    concurrently(clients, request)
    deadline = time.monotonic() + timeout
    pending = list(job_ids)
    while pending and time.monotonic() < deadline:
        time.sleep(0.2)
        pending = [job for job in pending if job_state(stack, job)["status"] not in TERMINAL]
    seconds = time.perf_counter() - started
    failed = sum(1 for job in job_ids if job_state(stack, job)["status"] != "succeeded")
    return summary(sampler.finish(), errors[0] + failed, rows(server) - before, seconds, latencies)


def measure(records: int = 50_000, clients: int = CLIENTS) -> dict[str, Any]:
    """The ``database`` object of the bench results."""
    server = start_server(max_connections=MAX_CONNECTIONS)
    if server is None:
        raise SystemExit("PostgreSQL is not installed (no initdb): apt-get install -y postgresql")
    sync = LocalFunction(
        SYNC_FUNCTION,
        "sync_database_handler.handler",
        ROOT / "bench" / "sync_database_handler.py",
        "worker",
        concurrency=clients,  # the replaced API scales with its callers, as Lambda does
    )
    # No terraform destroy: the stack goes with its moto server.
    stack = postgres_deployment(
        server, {"worker_concurrency": WORKERS}, extra_routes={SYNC_ROUTE: sync}, destroy_on_stop=False
    )
    try:
        stack.start()
        set_up_database(server)
        return {
            "max_connections": MAX_CONNECTIONS,
            "clients": clients,
            "workers": WORKERS,
            "records": records,
            "sync": sync_mode(stack, server, records, clients),
            "async": async_mode(stack, server, records, clients),
        }
    finally:
        stack.stop()
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = {"database": measure(args.records)}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
