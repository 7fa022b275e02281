"""The owner-scoped job index: one small object per job whose key sorts newest first.

`index/{sha256(owner)}/{inverted epoch ms}-{job_id}.json`: ListObjectsV2 returns keys in
ascending order, so inverting the creation time lists the newest job first, and hashing the
owner keeps the prefix a fixed-length, URL-safe name that reveals nothing of the identity.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from async_jobs import model
from async_jobs.owners import owner_digest

INDEX_PREFIX = "index/"
# Under authorization NONE there is no owner: every job is listed under one shared prefix.
SHARED_OWNER = "_"
# 13 digits hold every epoch millisecond until the year 2286.
MAX_MS = 9_999_999_999_999
ENTRY = re.compile(r"^(\d{13})-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.json$")


def owner_prefix(owner: str | None) -> str:
    scope = SHARED_OWNER if owner is None else owner_digest(owner)
    return f"{INDEX_PREFIX}{scope}/"


def inverted(moment: datetime) -> int:
    # Clamped: a filter bound before 1970 or after 2286 still sorts as 13 digits.
    return min(MAX_MS, max(0, MAX_MS - int(moment.timestamp() * 1000)))


def entry_name(state: dict[str, Any]) -> str:
    return f"{inverted(model.parse_time(state['created_at'])):013d}-{state['job_id']}.json"


def entry_key(state: dict[str, Any]) -> str:
    return owner_prefix(state.get("owner")) + entry_name(state)
