"""Query and header values: the one parser of every number, date-time and enumerated value the API
reads from a request.

Python's own parsers are wider than HTTP's grammar: `str.isdigit()` holds for `²` and other
digits `int()` refuses, `int()` reads Arabic-Indic or full-width digits, surrounding blanks, a sign
and underscores, and raises on more than 4,300 digits; `\\d` in a `str` regex matches any Unicode
digit. Every value is matched against an ASCII grammar of bounded length first, so a malformed
value is always a 400 problem naming it, never a 500 and never a value read differently from
how a client or a proxy reads it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime

from async_jobs import model
from async_jobs.problems import ProblemError, bad_request

# An integer: ASCII digits only, at most this many (a zero-padded value within it is read).
MAX_INTEGER_DIGITS = 10
_INTEGER = re.compile(rf"[0-9]{{1,{MAX_INTEGER_DIGITS}}}")
# RFC 3339 date-time: the offset is required (a bare local time is ambiguous); at most nanoseconds.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def invalid(name: str, detail: str, *, where: str = "query") -> ProblemError:
    """The 400 problem of one malformed value; `where` is "query" or "header"."""
    kind = "query parameter" if where == "query" else "header"
    return bad_request(
        f"The {kind} {name} is invalid: {detail}.",
        errors=[{"parameter": name, "detail": detail}],
        slug="invalid-query" if where == "query" else "invalid-header",
    )


def integer(value: str, name: str, *, minimum: int, maximum: int, where: str = "query") -> int:
    """A decimal integer from `minimum` to `maximum`, written with ASCII digits only."""
    if not _INTEGER.fullmatch(value) or not minimum <= int(value) <= maximum:
        raise invalid(name, f"must be an integer from {minimum} to {maximum}", where=where)
    return int(value)


def date_time(value: str, name: str, *, where: str = "query") -> datetime:
    """An RFC 3339 date-time with an offset (`2026-01-31T12:00:00Z`)."""
    if not _RFC3339.fullmatch(value):
        raise invalid(
            name, "must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T12:00:00Z", where=where
        )
    try:
        return model.parse_time(value.upper().replace(" ", "T"))
    except ValueError:  # a date that does not exist (February 30th) or an out-of-range offset
        raise invalid(name, "is not a valid date-time", where=where) from None


def choice(value: str, name: str, choices: Collection[str], *, where: str = "query") -> str:
    """One of `choices`, exactly as written there (case-sensitive)."""
    if value not in choices:
        raise invalid(name, "must be one of " + ", ".join(sorted(choices)), where=where)
    return value
