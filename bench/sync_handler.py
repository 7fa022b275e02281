"""The design this project replaces, as the sync baseline of the benchmarks (never deployed).

``POST /sync/jobs`` with ``{"records": [...]}``: validate each record, transform it, write it to
the sink (one ``PutObject`` per record, into the same state bucket the async worker's S3 sink
writes), and save progress every 100 records, all inside the request. The client waits for all
of it. Runs in the local stack with the worker's package (for boto3) and role.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

import boto3

BUCKET = os.environ["STATE_BUCKET"]
STATE_EVERY = 100
s3 = boto3.client("s3")


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    try:
        records = json.loads(raw)["records"]
    except (ValueError, KeyError, TypeError):
        return _answer(400, {"title": 'body must be {"records": [...]}'})
    job_id = str(uuid.uuid4())
    failed = 0
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            failed += 1
            continue
        row = {"record_index": index, "record": {**record, "job_id": job_id}}
        s3.put_object(Bucket=BUCKET, Key=f"jobs/{job_id}/results/{index}.json", Body=json.dumps(row).encode())
        if (index + 1) % STATE_EVERY == 0:
            state = {"job_id": job_id, "processed_records": index + 1, "failed_records": failed}
            s3.put_object(Bucket=BUCKET, Key=f"jobs/{job_id}/state.json", Body=json.dumps(state).encode())
    return _answer(200, {"job_id": job_id, "total_records": len(records), "failed_records": failed})
