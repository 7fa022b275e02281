"""moto's EventBridge, with every accepted PutEvents entry appended to the local event log.

Why: moto keeps no record of the events it accepts (only rules' targets see them), and the
local stack has no AWS account to look in. The log is the local stand-in for "what went out on
the bus": one JSON line per accepted entry, as EventBridge would deliver it to a rule target
(`id`, `source`, `detail-type`, `time`, `region`, `resources`, `detail`) plus `event-bus-name`.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.events.models import EventsBackend

from ._patch import MotoPatch, Target


class EventLog:
    """Where accepted events go: `path` is set by the deployment (logs/events.ndjson)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._lock = threading.Lock()

    def append(self, line: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self._lock, self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(line, separators=(",", ":")) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


EVENT_LOG = EventLog()


def _put_events_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = original(self, events)
        for event, result in zip(events, results, strict=False):
            if "EventId" not in result:
                continue  # refused entries (FailedEntryCount) never reach the bus
            EVENT_LOG.append(
                {
                    "id": result["EventId"],
                    "source": event["Source"],
                    "detail-type": event["DetailType"],
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "region": self.region_name,
                    "account": self.account_id,
                    "resources": event.get("Resources", []),
                    "event-bus-name": event.get("EventBusName") or "default",
                    "detail": json.loads(event["Detail"]),
                }
            )
        return results

    return put_events


def _targets() -> list[Target]:
    return [(EventsBackend, "put_events", _put_events_factory)]


_EVENT_LOG_PATCH = MotoPatch("events-log", _targets)


def events_logged() -> MotoPatch:
    return _EVENT_LOG_PATCH.start()
