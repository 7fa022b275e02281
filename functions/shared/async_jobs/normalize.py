"""Request bodies (JSON document or NDJSON) to normalized NDJSON, fully validated up front."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from async_jobs import jsontext
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


def _dump(value: Any) -> bytes:
    return jsontext.dumps(value)


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
    raise unsupported_media_type(
        'Send application/json ({"records": [...]}) or application/x-ndjson (one JSON object a line).'
    )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"The body is not valid UTF-8 (byte {exc.start}).", slug="malformed-body") from None


def _malformed(problem: jsontext.JsonProblem, pointer: str = "") -> ProblemError:
    where = pointer + problem.pointer
    return bad_request(
        f"The body is not valid JSON: {problem.message}" + (f" at {where}." if where else "."),
        errors=[{"pointer": where, "detail": problem.message}],
        slug="malformed-json",
    )


def _expect(text: str, index: int, char: str, what: str) -> int:
    index = jsontext.skip_whitespace(text, index)
    if text[index : index + 1] != char:
        raise _malformed(jsontext.JsonProblem(f"expected {what} at character {index}"))
    return index + 1


class _Document:
    """The top-level object of a JSON body, read member by member so that `records` is consumed
    one element at a time: a record is checked and normalized as soon as it is read, and the
    record limit fires before the rest of the body becomes objects in memory."""

    def __init__(self, text: str, max_records: int) -> None:
        self.text = text
        self.max_records = max_records
        self.records: list[bytes] | None = None
        self.metadata: Any = None

    def read(self) -> None:
        text = self.text
        index = jsontext.skip_whitespace(text, 0)
        if text[index : index + 1] != "{":
            self._not_object()
        index = jsontext.skip_whitespace(text, index + 1)
        seen: set[str] = set()
        if text[index : index + 1] == "}":
            index += 1
        else:
            while True:
                index = jsontext.skip_whitespace(text, index)
                if text[index : index + 1] != '"':
                    raise _malformed(jsontext.JsonProblem(f"expected a member name at character {index}"))
                name, index = self._value(index, "")
                if name in seen:
                    raise _malformed(jsontext.JsonProblem(f'"{name}" appears twice'), "/" + name)
                seen.add(name)
                index = _expect(text, index, ":", '":"')
                value_at = jsontext.skip_whitespace(text, index)
                if name == "records" and text[value_at : value_at + 1] == "[":
                    index = self._records(value_at + 1)
                else:
                    value, index = self._value(index, "/" + name)
                    if name == "records":
                        self._records_not_list()
                    elif name == "metadata":
                        self.metadata = value
                index = jsontext.skip_whitespace(text, index)
                if text[index : index + 1] == ",":
                    index += 1
                    continue
                index = _expect(text, index, "}", '"," or "}"')
                break
        if jsontext.skip_whitespace(text, index) != len(text):
            raise _malformed(jsontext.JsonProblem(f"extra data after the object at character {index}"))

    def _value(self, index: int, pointer: str) -> tuple[Any, int]:
        try:
            value, end = jsontext.raw_decode(self.text, index)
            jsontext.check(value)
        except jsontext.JsonProblem as problem:
            raise _malformed(problem, pointer) from None
        return value, end

    def _records(self, index: int) -> int:
        text = self.text
        records: list[bytes] = []
        index = jsontext.skip_whitespace(text, index)
        if text[index : index + 1] == "]":
            self.records = records
            return index + 1
        not_objects: list[int] = []
        position = -1
        while True:
            position += 1
            pointer = f"/records/{position}"
            if position == self.max_records:
                raise too_many(self.max_records)
            try:
                record, index = jsontext.raw_decode(text, index)
                if not isinstance(record, dict):
                    # keep reading: the problem lists every record that is not an object
                    not_objects.append(position)
                elif not not_objects:
                    records.append(jsontext.dumps(record) + b"\n")
            except jsontext.JsonProblem as problem:
                raise bad_request(
                    f"Record at index {position} is not valid: {problem.message}.",
                    errors=[{"pointer": pointer + problem.pointer, "detail": problem.message}],
                    slug="invalid-records",
                ) from None
            index = jsontext.skip_whitespace(text, index)
            if text[index : index + 1] == ",":
                index += 1
                continue
            index = _expect(text, index, "]", '"," or "]"')
            if not_objects:
                _not_objects(not_objects)
            self.records = records
            return index

    @staticmethod
    def _not_object() -> None:
        raise bad_request('The body must be a JSON object with a "records" array.', slug="body-not-object")

    @staticmethod
    def _records_not_list() -> None:
        raise bad_request(
            '"records" must be an array of JSON objects.',
            errors=[{"pointer": "/records", "detail": "must be an array"}],
            slug="invalid-records",
        )


def _not_objects(positions: list[int]) -> None:
    raise bad_request(
        f"Record at index {positions[0]} is not a JSON object"
        + (f" ({len(positions)} records are not)." if len(positions) > 1 else "."),
        errors=[
            {"pointer": f"/records/{i}", "detail": "must be a JSON object"}
            for i in positions[:MAX_LISTED_ERRORS]
        ],
        slug="invalid-records",
    )


def normalize_json(body: bytes, max_records: int) -> NormalizedInput:
    text = _text(body)
    start = jsontext.skip_whitespace(text, 0)
    if text[start : start + 1] != "{":
        # Any other JSON value: say whether it is JSON at all, then that it is not an object.
        try:
            jsontext.loads(text)
        except jsontext.JsonProblem as problem:
            raise _malformed(problem) from None
    document = _Document(text, max_records)
    document.read()
    if document.records is None:
        raise bad_request(
            '"records" is required.',
            errors=[{"pointer": "/records", "detail": "required"}],
            slug="invalid-records",
        )
    if not document.records:
        raise bad_request(
            '"records" must hold at least one record.',
            errors=[{"pointer": "/records", "detail": "must not be empty"}],
            slug="invalid-records",
        )
    metadata = validate_metadata(document.metadata)
    return NormalizedInput(b"".join(document.records), len(document.records), metadata)


def validate_metadata(value: Any) -> dict[str, Any] | None:
    """The `metadata` member of either submit route: an object of at most MAX_METADATA_BYTES."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(
            '"metadata" must be a JSON object.',
            errors=[{"pointer": "/metadata", "detail": "must be an object"}],
            slug="invalid-metadata",
        )
    try:
        size = len(jsontext.dumps(value))
    except jsontext.JsonProblem as problem:
        raise _malformed(problem, "/metadata") from None
    if size > MAX_METADATA_BYTES:
        raise bad_request(
            f'"metadata" must be at most {MAX_METADATA_BYTES} bytes as JSON.',
            errors=[{"pointer": "/metadata", "detail": "too large"}],
            slug="invalid-metadata",
        )
    return value


def normalize_upload_request(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """POST /jobs/uploads: an empty body, or a JSON object with optional `metadata`."""
    if not body.strip():
        return None
    if media_type(content_type) not in JSON_TYPES:
        raise unsupported_media_type('Send application/json ({"metadata": {...}}) or no body.')
    try:
        document = jsontext.loads(_text(body))
    except jsontext.JsonProblem as problem:
        raise _malformed(problem) from None
    if not isinstance(document, dict):
        raise bad_request("The body must be a JSON object.", slug="body-not-object")
    unknown = sorted(set(document) - {"metadata"})
    if unknown:
        raise bad_request(
            f'Unknown member "{unknown[0]}"; only "metadata" is accepted here.',
            errors=[{"pointer": f"/{unknown[0]}", "detail": "unknown member"}],
            slug="invalid-body",
        )
    return validate_metadata(document.get("metadata"))


def unsupported_media_type(detail: str) -> ProblemError:
    return ProblemError(415, detail, slug="unsupported-media-type")


def parse_line(line: bytes) -> dict[str, Any]:
    """One NDJSON record line (uploaded or submitted): the record, or JsonProblem saying why not.

    The same rules as `parse_line_encoded` (`jsontext.check` is what its encoding enforces),
    without encoding the record again: a worker reads every record of a job through here."""
    record = jsontext.loads(line)
    if not isinstance(record, dict):
        raise jsontext.JsonProblem("not a JSON object")
    return record


def parse_line_encoded(line: bytes) -> tuple[dict[str, Any], bytes]:
    record, encoded = jsontext.loads_record(line)
    if not isinstance(record, dict):
        raise jsontext.JsonProblem("not a JSON object")
    return record, encoded


def iter_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line) of the non-blank lines, without splitting the whole body."""
    position, number, size = 0, 0, len(data)
    while position < size:
        newline = data.find(b"\n", position)
        stop = size if newline == -1 else newline
        number += 1
        line = data[position:stop]
        position = stop + 1
        if line.strip():
            yield number, line


def normalize_ndjson(body: bytes, max_records: int) -> NormalizedInput:
    lines: list[bytes] = []
    for number, line in iter_lines(body):
        if len(lines) == max_records:
            raise too_many(max_records)
        try:
            _, encoded = parse_line_encoded(line)
        except jsontext.JsonProblem as problem:
            raise bad_request(
                f"Line {number} is not a valid record: {problem.message}"
                + (f" at {problem.pointer}." if problem.pointer else "."),
                errors=[{"line": number, "pointer": problem.pointer, "detail": problem.message}],
                slug="malformed-ndjson",
            ) from None
        lines.append(encoded + b"\n")
    if not lines:
        raise bad_request("The body holds no records.", slug="invalid-records")
    return NormalizedInput(b"".join(lines), len(lines), None)
