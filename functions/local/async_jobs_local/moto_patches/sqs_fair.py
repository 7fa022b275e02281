"""SQS fair queues on moto: a standard queue delivers the messages of quiet groups first.

On AWS every standard queue is a fair queue: the MessageGroupId of a message names its tenant,
and when one tenant takes a disproportionate share of the consumers (its messages in flight, or
its share of the processing time), receives return other tenants' messages first, for as long as
any are waiting; the noisy tenant's messages are neither dropped nor throttled, only later. A
message without a group is a tenant of its own. moto 5.2 stores the group of a standard queue's
message but delivers in sent order whatever the groups, so one caller's backlog would hold back
every other caller here, as it never does on AWS.

The emulation orders the visible messages of a standard queue by their group's load, lightest
first, then by sent order: the load is the group's messages in flight, then its deliveries of the
last seconds (decaying with a half-life of ``HALF_LIFE_SECONDS``, standing in for its share of the
processing time). AWS flags a noisy tenant only above thresholds (more than 10 % of the messages
in flight and at least 30 of them, or more than 10 % of the recent processing time); a tenant
working off a backlog next to a quiet one crosses the processing-time threshold at once, so for
that case the order is the one AWS gives; the emulation is stricter only between tenants of
similar load. Without groups, or on FIFO queues (whose groups order messages instead), delivery
is as before.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.sqs.models import Queue, SQSBackend

from ._patch import MotoPatch, Target

HALF_LIFE_SECONDS = 10.0
_SUSPENDED = threading.Event()


class _RecentDeliveries:
    """A queue's deliveries per group, decaying with a half-life: who was served lately."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[float, float]] = {}  # group -> (weight, as of monotonic time)

    def add(self, group: str, count: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._groups[group] = (self._at(group, now) + count, now)

    def weights(self) -> dict[str, float]:
        with self._lock:
            now = time.monotonic()
            return {group: self._at(group, now) for group in self._groups}

    def _at(self, group: str, now: float) -> float:
        weight, since = self._groups.get(group, (0.0, now))
        return float(weight * 0.5 ** ((now - since) / HALF_LIFE_SECONDS))


def _recent(queue: Any) -> _RecentDeliveries:
    recent = queue.__dict__.get("_fair_recent_deliveries")
    if recent is None:
        recent = queue.__dict__.setdefault("_fair_recent_deliveries", _RecentDeliveries())
    return recent


def _fair_messages_factory(original: Any) -> Any:
    # Why: moto's ReceiveMessage takes the first visible messages of `Queue.messages` in sent
    # order; handing it the fair order makes every receive (and the local event source mapping's
    # pollers through it) deliver as a fair queue does.
    def messages(self: Any) -> list[Any]:
        visible: list[Any] = original.fget(self)
        if self.fifo_queue or _SUSPENDED.is_set() or not any(m.group_id for m in visible):
            return visible
        in_flight = Counter(m.group_id for m in self._messages if m.group_id and not m.visible)
        recent = _recent(self).weights()

        def load(message: Any) -> tuple[int, float]:
            group = message.group_id
            return (in_flight[group], recent.get(group, 0.0)) if group else (0, 0.0)

        # sorted() is stable: within the same load, sent order stays
        return sorted(visible, key=load)

    return property(messages)


def _receive_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Records which groups a receive served, for the load of the next ones.
    @functools.wraps(original)
    def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        result = original(self, queue_name, *args, **kwargs)
        queue = self.get_queue(queue_name)
        if result and not queue.fifo_queue:
            for group, count in Counter(m.group_id for m in result if m.group_id).items():
                _recent(queue).add(group, count)
        return result

    return receive_message


def _targets() -> list[Target]:
    return [
        (Queue, "messages", _fair_messages_factory),
        (SQSBackend, "receive_message", _receive_factory),
    ]


_FAIR_QUEUES = MotoPatch("sqs-fair-queues", _targets)


def fair_queues() -> MotoPatch:
    """Standard queues deliver the messages of the groups with the fewest in flight, then the fewest
    recent deliveries, first (fair queues)."""
    return _FAIR_QUEUES.start()


@contextmanager
def fair_queues_suspended() -> Iterator[None]:
    """Within the block, standard queues deliver in sent order whatever the groups: SQS as it was
    before fair queues, to measure what fairness buys."""
    _SUSPENDED.set()
    try:
        yield
    finally:
        _SUSPENDED.clear()
