"""Per-record validation (optional JSON Schema) and transform (optional user processor).

Both are built once at cold start: the schema is compiled with fastjsonschema, the processor
is imported from a "module:function" reference.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

import fastjsonschema

RecordCheck = Callable[[dict[str, Any]], str | None]
RecordTransform = Callable[[dict[str, Any]], dict[str, Any] | None]


def compile_schema(schema: dict[str, Any]) -> RecordCheck:
    """A check returning None for a valid record, else a short message naming the problem."""
    validate = fastjsonschema.compile(schema)

    def check(record: dict[str, Any]) -> str | None:
        try:
            validate(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            return f"schema: {exc.message}"
        return None

    return check


def load_processor(reference: str) -> RecordTransform:
    """Import `module:function`; the function takes a record and returns the record to store."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"RECORD_PROCESSOR {reference!r} is not a callable")
    return cast(RecordTransform, function)
