"""What the pattern protects a database from: ``python -m bench.database [--records N] [--out FILE]``.

One real PostgreSQL (async_jobs_local/postgres.py: TLS, max_connections 20, like a small RDS
instance shared with other applications) takes the same records two ways:

- ``sync``: 50 concurrent clients, each a synchronous bulk request that opens its own
  connection and writes its records one statement at a time (the API this project replaces);
- ``async``: the 50 clients' records queued as chunks and written by 4 workers (the worker's
  ``worker_maximum_concurrency``), each with one ``PostgresSink`` (COPY + upsert per chunk).
  The queue is in-process here: the figures are the database's side of the pattern.

Each mode reports ``peak_connections`` (client backends in ``pg_stat_activity``, sampled every
10 ms), ``errors`` (refused connections such as "too many clients", failed writes),
``records_written`` (rows in the table after the run) and ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from async_jobs.config import PostgresConfig
from async_jobs.sinks.postgres import PostgresSink
from async_jobs_local.postgres import DATABASE, USER, PostgresServer, start_server

CLIENTS = 50
WORKERS = 4
CHUNK_SIZE = 500
DDL = (
    "CREATE TABLE {table} (job_id text NOT NULL, record_index bigint NOT NULL, "
    "record jsonb NOT NULL, PRIMARY KEY (job_id, record_index))"
)


class Sampler(threading.Thread):
    """Peak of client connections, from a connection opened before the load starts."""

    def __init__(self, server: PostgresServer) -> None:
        super().__init__(daemon=True)
        self._conn = psycopg.connect(**server.settings(), autocommit=True)  # type: ignore[arg-type]
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


def _count(server: PostgresServer, table: str) -> int:
    with psycopg.connect(**server.settings()) as conn:  # type: ignore[arg-type]
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def _measure(server: PostgresServer, table: str, run: Callable[[list[int]], None]) -> dict[str, Any]:
    with psycopg.connect(**server.settings(), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(DDL.format(table=table))
    errors = [0]
    sampler = Sampler(server)
    sampler.start()
    started = time.perf_counter()
    run(errors)
    seconds = time.perf_counter() - started
    return {
        "peak_connections": sampler.finish(),
        "errors": errors[0],
        "records_written": _count(server, table),
        "seconds": round(seconds, 3),
    }


def sync_mode(server: PostgresServer, records: int) -> dict[str, Any]:
    per_client = records // CLIENTS
    lock = threading.Lock()
    burst = threading.Barrier(CLIENTS)  # the clients arrive together, as a burst does

    def client(number: int, errors: list[int]) -> None:
        burst.wait()
        try:
            with psycopg.connect(**server.settings(), autocommit=True) as conn:  # type: ignore[arg-type]
                for index in range(per_client):
                    conn.execute(
                        "INSERT INTO sync_records VALUES (%s, %s, %s)",
                        (f"client-{number}", index, json.dumps({"i": index})),
                    )
        except psycopg.Error:
            with lock:
                errors[0] += 1  # the request fails: its records are not written

    def run(errors: list[int]) -> None:
        threads = [threading.Thread(target=client, args=(n, errors)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return _measure(server, "sync_records", run)


def async_mode(server: PostgresServer, records: int) -> dict[str, Any]:
    per_client = records // CLIENTS
    chunks: queue.Queue[tuple[str, int, list[tuple[int, dict[str, Any]]]] | None] = queue.Queue()
    for number in range(CLIENTS):
        rows = [(index, {"i": index}) for index in range(per_client)]
        for chunk, start in enumerate(range(0, per_client, CHUNK_SIZE)):
            chunks.put((f"client-{number}", chunk, rows[start : start + CHUNK_SIZE]))
    config = PostgresConfig(
        host="127.0.0.1", port=server.port, database=DATABASE, user=USER, table="async_records", auth="secret"
    )
    lock = threading.Lock()

    def worker(errors: list[int]) -> None:
        sink = PostgresSink(lambda: psycopg.connect(**server.settings(), autocommit=True), config)  # type: ignore[arg-type]
        while (item := chunks.get()) is not None:
            job_id, chunk, rows = item
            try:
                sink.write(job_id, chunk, rows)
            except Exception:  # noqa: BLE001 - counted; SQS would redeliver the chunk
                with lock:
                    errors[0] += 1
                chunks.put(item)

    def run(errors: list[int]) -> None:
        threads = [threading.Thread(target=worker, args=(errors,)) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for _ in threads:
            chunks.put(None)
        for thread in threads:
            thread.join()

    return _measure(server, "async_records", run)


def measure(records: int = 50_000) -> dict[str, Any]:
    """The ``database`` object of the bench results."""
    server = start_server(max_connections=20)
    if server is None:
        raise SystemExit("PostgreSQL is not installed (no initdb): apt-get install -y postgresql")
    try:
        return {
            "max_connections": 20,
            "clients": CLIENTS,
            "workers": WORKERS,
            "sync": sync_mode(server, records),
            "async": async_mode(server, records),
        }
    finally:
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
