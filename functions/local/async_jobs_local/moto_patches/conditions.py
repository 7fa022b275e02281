"""IAM policy condition evaluation against the local request context.

moto evaluates conditions only in trust policies and bucket policies, and there only
``StringEquals``-like operators; a statement whose condition it cannot evaluate is treated as
matched (bucket policies) or as an explicit deny (identity policies). IAM's rule is: a
statement whose conditions are not all met does not apply. This module evaluates the common
operators so both patches (``s3.py``, ``iam.py``) can apply that rule.
"""

from __future__ import annotations

import fnmatch
from typing import Any

# What every request to the local moto server carries: the SDKs use HTTPS on AWS; plain HTTP to
# 127.0.0.1 stands in for it.
BASE_CONTEXT = {"aws:securetransport": "true"}


def condition_met(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    expected_values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists").split(":")[-1]  # ForAnyValue:StringLike -> StringLike
    actual = context.get(key.lower())
    if operator == "Null":
        return (actual is None) == (expected_values[0].lower() == "true")
    negated = "Not" in operator
    if actual is None:
        # IAM: a key the request does not carry matches no value, so a negated operator holds
        return if_exists or negated
    base = operator.replace("Not", "")
    if base == "Bool":
        matched = actual.lower() in (v.lower() for v in expected_values)
    elif base in ("StringEquals", "ArnEquals"):
        matched = actual in expected_values
    elif base == "StringEqualsIgnoreCase":
        matched = actual.lower() in (v.lower() for v in expected_values)
    elif base in ("StringLike", "ArnLike"):
        matched = any(fnmatch.fnmatchcase(actual, v) for v in expected_values)
    else:
        return False  # an operator not evaluated locally: the statement does not apply
    return matched != negated


def statement_applies(statement: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, expected in conditions.items():
            if not condition_met(operator, key, expected, context):
                return False
    return True
