"""The design this project replaces, writing to PostgreSQL: the database benchmark's sync baseline.

``POST /sync/db/jobs`` with ``{"records": [...]}``: open a connection to the same database the
worker writes (the worker's POSTGRES_* configuration, IAM token, TLS), insert the records one
statement at a time, answer when done. Each request in flight holds a connection, so the
database sees as many connections as there are clients; one it refuses (``too many clients``)
is a ``503`` and the request's records are lost to the caller. Runs in the local stack with the
worker's package (psycopg, boto3), role and configuration; never deployed.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import boto3
import psycopg

from async_jobs.config import WorkerConfig
from async_jobs.sinks.base import qualified_table
from async_jobs.sinks.postgres import connection_settings

CONFIG = WorkerConfig.from_env().postgres
rds = boto3.client("rds")


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    assert CONFIG is not None, "the worker's sink is not postgres"
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    try:
        records = json.loads(raw)["records"]
    except (ValueError, KeyError, TypeError):
        return _answer(400, {"title": 'body must be {"records": [...]}'})
    job_id = str(uuid.uuid4())
    table = qualified_table(CONFIG.schema, CONFIG.table)
    try:
        with psycopg.connect(**connection_settings(CONFIG, rds=rds), autocommit=True) as conn:
            for index, record in enumerate(records):
                conn.execute(
                    f"INSERT INTO {table} (job_id, record_index, record) VALUES (%s, %s, %s)",
                    (job_id, index, json.dumps(record)),
                )
    except psycopg.Error as error:
        return _answer(503, {"title": "database unavailable", "detail": str(error).strip()})
    return _answer(200, {"job_id": job_id, "total_records": len(records)})
