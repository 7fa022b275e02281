"""What a submitted file holds: a JSON document ``{"records": [...]}`` or NDJSON (one object a line)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON = "application/json"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class InputFile:
    path: Path
    content_type: str
    size: int

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> InputFile:
        file = Path(path)
        return cls(file, detect_content_type(file), file.stat().st_size)


def detect_content_type(path: Path) -> str:
    """By extension (``.ndjson``/``.jsonl``, ``.json``); otherwise by sniffing the first line: a
    whole JSON object that is not a ``{"records": ...}`` document, or one followed by more
    lines, makes NDJSON; anything else is a JSON document."""
    suffix = path.suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return NDJSON
    if suffix == ".json":
        return JSON
    with path.open("rb") as stream:
        first_line = stream.readline(1 << 20)
        more = any(line.strip() for line in (stream.readline(1 << 20),))
    try:
        first = json.loads(first_line)
    except ValueError:
        return JSON  # the first line is not a whole value: a pretty-printed document
    if isinstance(first, dict) and ("records" not in first or more):
        return NDJSON
    return JSON


def ndjson_copy(source: InputFile, directory: str | None = None) -> Path:
    """An NDJSON file of a JSON document's records, for an upload (uploads take NDJSON only).

    The JSON document is parsed whole (the standard library has no streaming JSON parser); the
    copy is written record by record so only the parsed document is held once.
    """
    with source.path.open("rb") as stream:
        document = json.load(stream)
    records = document.get("records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise ValueError(f'{source.path}: expected a JSON object with a list under "records"')
    handle, name = tempfile.mkstemp(suffix=".ndjson", dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")))
            out.write("\n")
    return Path(name)


def inline_body(source: InputFile, metadata: dict[str, Any] | None = None) -> tuple[str, bytes]:
    """(content type, body) of a POST /jobs carrying the file inline.

    Without metadata, the file as it is. With metadata, a JSON document: an NDJSON file's lines
    become its ``records`` as they are written (blank lines skipped; the API checks each is an
    object), a JSON document gets ``metadata`` set (replacing any it had), since NDJSON has no
    place for metadata.
    """
    data = source.path.read_bytes()
    if metadata is None:
        return source.content_type, data
    encoded = json.dumps(metadata, separators=(",", ":")).encode()
    if source.content_type == NDJSON:
        lines = (line.strip() for line in data.splitlines())
        records = b",".join(line for line in lines if line)
        return JSON, b'{"records":[' + records + b'],"metadata":' + encoded + b"}"
    document = json.loads(data)
    if not isinstance(document, dict):
        raise ValueError(f'{source.path}: expected a JSON object with a list under "records"')
    document["metadata"] = metadata
    return JSON, json.dumps(document, separators=(",", ":")).encode()
