"""SQS's per-queue metrics, from moto's in-process queues.

``NumberOfMessagesSent/Received/Deleted`` count moto's operations (batch calls go through
the single-message ones); ``ApproximateNumberOfMessagesVisible`` and
``ApproximateAgeOfOldestMessage`` are sampled on each tick, as SQS samples them.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from moto.sqs.models import SQSBackend, sqs_backends

from ..moto_patches._patch import MotoPatch, Target

COUNTS: Counter[tuple[str, str]] = Counter()  # (queue name, metric) -> count since the last take
_LOCK = threading.Lock()


def _count(metric: str, size: Callable[[Any], int]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            result = original(self, queue_name, *args, **kwargs)
            with _LOCK:
                COUNTS[(queue_name, metric)] += size(result)
            return result

        return wrapper

    return factory


def _targets() -> list[Target]:
    return [
        (SQSBackend, "send_message", _count("NumberOfMessagesSent", lambda _: 1)),
        (SQSBackend, "receive_message", _count("NumberOfMessagesReceived", len)),
        (SQSBackend, "delete_message", _count("NumberOfMessagesDeleted", lambda _: 1)),
    ]


_COUNTING = MotoPatch("sqs-metric-counts", _targets)


def sqs_operation_counts() -> MotoPatch:
    return _COUNTING.start()


def take_counts() -> dict[tuple[str, str], int]:
    with _LOCK:
        counts = dict(COUNTS)
        COUNTS.clear()
    return counts


def queue_samples(region: str) -> list[tuple[str, str, float]]:
    """(queue name, metric, value) of each queue in ``region`` now."""
    now_ms = time.time() * 1000
    samples: list[tuple[str, str, float]] = []
    for account in list(sqs_backends.keys()):
        backend = sqs_backends[account][region]
        for name, queue in list(backend.queues.items()):
            messages = list(queue._messages)
            samples.append(
                (name, "ApproximateNumberOfMessagesVisible", float(queue.approximate_number_of_messages))
            )
            sent = [float(m.sent_timestamp or 0) for m in messages if m.sent_timestamp]
            samples.append(
                (name, "ApproximateAgeOfOldestMessage", (now_ms - min(sent)) / 1000 if sent else 0.0)
            )
    return samples
