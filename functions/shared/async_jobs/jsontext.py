"""Strict JSON: the one reader and writer for everything a client sends and the engine stores.

Python's json module accepts more than RFC 8259 JSON and more than the rest of the system can
carry: `NaN`/`Infinity`, numbers that overflow to `inf`, integers longer than Python will turn
into text again, lone UTF-16 surrogates (which cannot be encoded as UTF-8), and nesting deep
enough to exhaust the recursion limit of every later reader (copy, render, dump). Each of those
is refused here with a message meant for the client (no Python text), so what is accepted can be
stored, read back and emitted as valid JSON for ever.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 100
_DECODER_ERRORS = (ValueError, RecursionError)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class JsonProblem(ValueError):
    """Why a JSON text or value is refused; `pointer` is an RFC 6901 pointer inside the value."""

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


def _reject_constant(name: str) -> Any:
    raise JsonProblem(f"{name} is not a JSON number")


def _number(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonProblem(f"a number has more than {MAX_NUMBER_CHARS} characters")


def _parse_int(text: str) -> int:
    _number(text)
    return int(text)


def _parse_float(text: str) -> float:
    _number(text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonProblem("a number is too large for a 64-bit float")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float)


def _decode_error(exc: Exception) -> JsonProblem:
    if isinstance(exc, JsonProblem):
        return exc
    if isinstance(exc, RecursionError):
        return JsonProblem(f"nesting is deeper than {MAX_DEPTH} levels")
    if isinstance(exc, json.JSONDecodeError):
        return JsonProblem(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    if isinstance(exc, UnicodeDecodeError):
        return JsonProblem("not valid UTF-8")
    return JsonProblem("not valid JSON")


def _decode(text: str | bytes) -> Any:
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return _DECODER.decode(text)
    except _DECODER_ERRORS as exc:
        raise _decode_error(exc) from None


def loads(text: str | bytes) -> Any:
    """Parse one JSON text under the rules above, then check the value."""
    value = _decode(text)
    check(value)
    return value


def raw_decode(text: str, index: int) -> tuple[Any, int]:
    """One JSON value starting at `index` (after whitespace); the value and the index after it."""
    index = skip_whitespace(text, index)
    try:
        return _DECODER.raw_decode(text, index)
    except _DECODER_ERRORS as exc:
        raise _decode_error(exc) from None


def skip_whitespace(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of a value that passes `check`; JsonProblem otherwise.

    The fast path needs no walk: the encoder refuses non-finite numbers, UTF-8 refuses lone
    surrogates, and a text with at most MAX_DEPTH brackets cannot nest deeper than that.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        data = text.encode("utf-8")
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        check(value)  # names the place when it can
        raise JsonProblem("not representable as JSON") from None
    if data.count(b"{") + data.count(b"[") > MAX_DEPTH:
        check(value)
    return data


def loads_record(text: str | bytes) -> tuple[Any, bytes]:
    """Parse one record's JSON text: the value and its normalized bytes (one pass each)."""
    value = _decode(text)
    return value, dumps(value)


def check(value: Any) -> None:
    """Depth, string and number rules over a parsed (or produced) value, without recursion.

    Cheap for the common case: only containers and strings are visited, one pass, and the JSON
    pointer of a place is spelled out only when a rule fails there (a worker checks every
    record of a job through here).
    """
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, (), 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise JsonProblem(f"nesting is deeper than {MAX_DEPTH} levels", _pointer(path))
            for key, child in item.items():
                if not isinstance(key, str):
                    raise JsonProblem("an object key is not a string", _pointer(path))
                _require_encodable(key, (*path, key))
                if isinstance(child, dict | list | str | float):
                    stack.append((child, (*path, key), depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise JsonProblem(f"nesting is deeper than {MAX_DEPTH} levels", _pointer(path))
            for position, child in enumerate(item):
                if isinstance(child, dict | list | str | float):
                    stack.append((child, (*path, position), depth + 1))
        elif isinstance(item, str):
            _require_encodable(item, path)
        elif isinstance(item, float) and not math.isfinite(item):
            raise JsonProblem("a number is not finite", _pointer(path))


def _require_encodable(text: str, path: tuple[str | int, ...]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        message = "a string holds a lone UTF-16 surrogate (not valid Unicode)"
        raise JsonProblem(message, _pointer(path)) from None


def _pointer(path: tuple[str | int, ...]) -> str:
    return "".join(f"/{_escape(part) if isinstance(part, str) else part}" for part in path)


def _escape(key: str) -> str:
    # A pointer is echoed to the client, so a bad key appears escaped, never as a bad string.
    safe = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe.replace("~", "~0").replace("/", "~1")
