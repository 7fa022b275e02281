"""Request bodies (JSON document or NDJSON) to normalized NDJSON, fully validated up front."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from async_jobs.problems import ProblemError, bad_request

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
MAX_METADATA_BYTES = 8 * 1024
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class NormalizedInput:
    ndjson: bytes
    total_records: int
    metadata: dict[str, Any] | None

    @property
    def body_hash(self) -> str:
        digest = hashlib.sha256(self.ndjson)
        digest.update(b"\x00metadata\x00")
        digest.update(_dump(self.metadata))
        return digest.hexdigest()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str | bytes) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False).encode("utf-8")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def too_many(limit: int) -> ProblemError:
    return ProblemError(
        413,
        f"A job holds at most {limit} records; use POST /jobs/uploads for larger inputs.",
        title="Too many records",
        slug="too-many-records",
    )


def normalize(body: bytes, content_type: str | None, max_records: int) -> NormalizedInput:
    kind = media_type(content_type)
    if kind in JSON_TYPES:
        return normalize_json(body, max_records)
    if kind in NDJSON_TYPES:
        return normalize_ndjson(body, max_records)
    raise ProblemError(
        415,
        'Send application/json ({"records": [...]}) or application/x-ndjson (one JSON object a line).',
        slug="unsupported-media-type",
    )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("The body is not valid UTF-8.", slug="malformed-body") from None


def normalize_json(body: bytes, max_records: int) -> NormalizedInput:
    try:
        document = _loads(_text(body))
    except ValueError as exc:
        raise bad_request(f"The body is not valid JSON: {exc}.", slug="malformed-json") from None
    if not isinstance(document, dict):
        raise bad_request('The body must be a JSON object with a "records" array.', slug="body-not-object")
    if "records" not in document:
        raise bad_request(
            '"records" is required.',
            errors=[{"pointer": "/records", "detail": "required"}],
            slug="invalid-records",
        )
    records = document["records"]
    if not isinstance(records, list):
        raise bad_request(
            '"records" must be an array of JSON objects.',
            errors=[{"pointer": "/records", "detail": "must be an array"}],
            slug="invalid-records",
        )
    if not records:
        raise bad_request(
            '"records" must hold at least one record.',
            errors=[{"pointer": "/records", "detail": "must not be empty"}],
            slug="invalid-records",
        )
    if len(records) > max_records:
        raise too_many(max_records)
    bad = [index for index, record in enumerate(records) if not isinstance(record, dict)]
    if bad:
        raise bad_request(
            f"Record at index {bad[0]} is not a JSON object"
            + (f" ({len(bad)} records are not)." if len(bad) > 1 else "."),
            errors=[
                {"pointer": f"/records/{i}", "detail": "must be a JSON object"}
                for i in bad[:MAX_LISTED_ERRORS]
            ],
            slug="invalid-records",
        )
    metadata = _metadata(document.get("metadata"))
    ndjson = b"".join(_dump(record) + b"\n" for record in records)
    return NormalizedInput(ndjson, len(records), metadata)


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(
            '"metadata" must be a JSON object.',
            errors=[{"pointer": "/metadata", "detail": "must be an object"}],
            slug="invalid-metadata",
        )
    if len(_dump(value)) > MAX_METADATA_BYTES:
        raise bad_request(
            f'"metadata" must be at most {MAX_METADATA_BYTES} bytes as JSON.',
            errors=[{"pointer": "/metadata", "detail": "too large"}],
            slug="invalid-metadata",
        )
    return value


def normalize_ndjson(body: bytes, max_records: int) -> NormalizedInput:
    text = _text(body)
    lines: list[bytes] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = _loads(line)
        except ValueError as exc:
            raise bad_request(
                f"Line {number} is not valid JSON: {exc}.",
                errors=[{"line": number, "detail": "not valid JSON"}],
                slug="malformed-ndjson",
            ) from None
        if not isinstance(record, dict):
            raise bad_request(
                f"Line {number} is not a JSON object.",
                errors=[{"line": number, "detail": "must be a JSON object"}],
                slug="malformed-ndjson",
            )
        if len(lines) == max_records:
            raise too_many(max_records)
        lines.append(_dump(record) + b"\n")
    if not lines:
        raise bad_request("The body holds no records.", slug="invalid-records")
    return NormalizedInput(b"".join(lines), len(lines), None)
