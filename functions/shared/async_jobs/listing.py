"""GET /jobs: the caller's own jobs, newest first, from an owner-scoped index.

Submit writes one small object per job under `index/{sha256(owner)}/` whose key sorts newest
first (`{inverted epoch ms}-{job_id}.json`), so a page is one ListObjectsV2 of the caller's
prefix and never touches another caller's keys. The status of each listed job is read from its
state, so the index is written once and never updated: a status change costs no extra write.
An entry whose state is gone, belongs to someone else or was created at another moment (a
takeover of a stale idempotent submit) is skipped, so a listing shows only what GET
/jobs/{job_id} would show the caller.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from async_jobs import model, parameters
from async_jobs.index import ENTRY as _ENTRY
from async_jobs.index import entry_name, inverted, owner_prefix
from async_jobs.service import JobViews, Outcome, UrlFor

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# States read for one page at most: a status filter that matches little answers a short page
# with a `next` link instead of reading the caller's whole history in one request.
MAX_SCANNED = 300
_STATUSES = {status.value for status in model.JobStatus}


def _time(params: dict[str, str], name: str) -> datetime | None:
    value = params.get(name)
    return None if value is None else parameters.date_time(value, name)


def encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(value: str) -> str:
    try:
        name = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise parameters.invalid("cursor", "is not a cursor this API issued") from None
    # Only an entry name: a cursor can never move the listing out of the caller's prefix.
    if not _ENTRY.match(name):
        raise parameters.invalid("cursor", "is not a cursor this API issued")
    return name


class Query:
    """The validated query string of GET /jobs."""

    def __init__(self, params: dict[str, str]) -> None:
        unknown = sorted(set(params) - {"status", "created_after", "created_before", "limit", "cursor"})
        if unknown:
            raise parameters.invalid(unknown[0], "is not a parameter of GET /jobs")
        raw_limit = params.get("limit")
        self.limit = DEFAULT_LIMIT
        if raw_limit is not None:
            self.limit = parameters.integer(raw_limit, "limit", minimum=1, maximum=MAX_LIMIT)
        status = params.get("status")
        self.status = None if status is None else parameters.choice(status, "status", _STATUSES)
        self.created_after = _time(params, "created_after")
        self.created_before = _time(params, "created_before")
        self.cursor = decode_cursor(params["cursor"]) if "cursor" in params else None
        kept = ("status", "created_after", "created_before")
        self.filters: dict[str, str] = {k: params[k] for k in kept if k in params}
        if raw_limit is not None:
            self.filters["limit"] = str(self.limit)

    def start_after(self) -> str | None:
        bounds = []
        if self.cursor:
            bounds.append(self.cursor)
        if self.created_before:
            # `~` sorts after every job id character: all entries of that millisecond are skipped.
            bounds.append(f"{inverted(self.created_before):013d}-~")
        return max(bounds) if bounds else None

    def past_range(self, entry_inverted: int) -> bool:
        """True once entries are at or before created_after (keys only get older from here)."""
        return self.created_after is not None and entry_inverted >= inverted(self.created_after)


class ListingService:
    def __init__(self, views: JobViews, authorization: str, *, max_scanned: int = MAX_SCANNED) -> None:
        self.views = views
        self.authorization = authorization
        self.max_scanned = max_scanned

    def list(
        self, params: dict[str, str], caller: str | None, url_for: UrlFor, list_url: Callable[[str], str]
    ) -> Outcome:
        query = Query(params)
        prefix = owner_prefix(None if self.authorization == "NONE" else caller)
        items: list[dict[str, Any]] = []
        last: str | None = None
        scanned = 0
        more = True
        start_after = query.start_after()
        store = self.views.store
        moment = self.views.clock()
        while more and len(items) < query.limit and scanned < self.max_scanned:
            page_size = min(1000, self.max_scanned - scanned)
            kwargs: dict[str, Any] = {
                "Bucket": self.views.store.bucket,
                "Prefix": prefix,
                "MaxKeys": page_size,
            }
            if start_after:
                kwargs["StartAfter"] = prefix + start_after
            answer = store.s3.list_objects_v2(**kwargs)
            names = [obj["Key"][len(prefix) :] for obj in answer.get("Contents", [])]
            more = bool(answer.get("IsTruncated"))
            for position, name in enumerate(names):
                matched = _ENTRY.match(name)
                if matched is None:
                    continue
                if query.past_range(int(matched.group(1))):
                    more = False
                    break
                scanned += 1
                last = start_after = name
                state = self._visible(matched.group(2), name, caller)
                if state is not None and (
                    query.status is None or model.effective_status(state, moment) == query.status
                ):
                    items.append(self.views.render(state, url_for))
                if len(items) == query.limit or scanned >= self.max_scanned:
                    more = more or position + 1 < len(names)
                    break
        body: dict[str, Any] = {"items": items, "next": None}
        headers = {"Cache-Control": "no-cache"}
        if more and last is not None:
            body["next"] = list_url(urlencode({**query.filters, "cursor": encode_cursor(last)}))
            headers["Link"] = f'<{body["next"]}>; rel="next"'
        return Outcome(200, body, headers)

    def _visible(self, job_id: str, name: str, caller: str | None) -> dict[str, Any] | None:
        found = self.views.store.get_state(job_id)
        if found is None:
            return None
        state = found[0]
        if self.authorization != "NONE" and state.get("owner") != caller:
            return None
        return state if entry_name(state) == name else None
