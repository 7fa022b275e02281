"""A worked RECORD_PROCESSOR (`record_processors:normalize_contact`), shipped in the worker package.

A processor takes one record (a JSON object, already checked against RECORD_SCHEMA_KEY if one
is set) and returns the record to store. Raising ValueError fails that record alone: it is
counted as failed and listed in the job's errors with the message. Raising
async_jobs.engine.RetryChunk instead retries the whole chunk (a downstream refusal that may
pass later). The result must be strict JSON; it replaces the record in the sink.

Write your own next to this file (functions/worker/*.py ship at the root of the worker zip)
and name it in `record_processor`.
"""

from __future__ import annotations

from typing import Any

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a path


def normalize_contact(record: dict[str, Any]) -> dict[str, Any]:
    """Validate a contact and return it normalized: trimmed lowercase email, its domain apart.

    Schema checks say an email looks like one; this says what the database may hold (one
    spelling per address, so the same person is not stored twice under two cases).
    """
    email = record.get("email")
    if not isinstance(email, str):
        raise ValueError("email must be a string")
    email = email.strip().lower()
    local, separator, domain = email.rpartition("@")
    if not separator or not local or "." not in domain.strip("."):
        raise ValueError(f"email {email!r} has no user@domain.tld form")
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValueError(f"email is {len(email)} characters, more than {MAX_EMAIL_LENGTH}")
    # a new dict: the input record is the engine's, never changed in place
    return {**record, "email": email, "email_domain": domain}
