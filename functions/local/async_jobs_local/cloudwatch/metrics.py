"""The datapoints AWS services publish, kept for evaluation and put into moto's CloudWatch.

Lambda: ``Invocations``, ``Errors``, ``Throttles``, ``Duration`` per ``FunctionName``
(``Errors`` is 0 on a success, as Lambda publishes it, so ``Sum`` counts failures).
API Gateway: ``Count``, ``4XXError``/``5XXError`` (REST, ``ApiName`` + ``Stage``) or
``4xx``/``5xx`` (HTTP API, ``ApiId`` + ``Stage``), ``Latency``. SQS: sampled on each tick.
The functions' own metrics: EMF lines in their logs.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from .evaluation import Key

Datapoint = tuple[float, float]  # (unix time, value)


def key_of(namespace: str, name: str, dimensions: Mapping[str, str]) -> Key:
    return (namespace, name, frozenset((str(k), str(v)) for k, v in dimensions.items()))


class MetricStore:
    """Datapoints by metric; ``flush`` puts what arrived since the last flush into moto."""

    def __init__(self, retention_seconds: float = 3600.0) -> None:
        self.retention_seconds = retention_seconds
        self._points: dict[Key, list[Datapoint]] = defaultdict(list)
        self._pending: list[tuple[Key, Datapoint, str]] = []
        self._lock = threading.Lock()

    def put(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        value: float,
        *,
        unit: str = "None",
        timestamp: float | None = None,
    ) -> None:
        key = key_of(namespace, name, dimensions)
        point = (time.time() if timestamp is None else timestamp, float(value))
        with self._lock:
            self._points[key].append(point)
            self._pending.append((key, point, unit))

    def datapoints(self, key: Key) -> list[Datapoint]:
        with self._lock:
            return list(self._points.get(key, ()))

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._points)

    def prune(self, now: float) -> None:
        with self._lock:
            for key, points in self._points.items():
                self._points[key] = [p for p in points if now - p[0] <= self.retention_seconds]

    def flush(self, cloudwatch: Any) -> int:
        """PutMetricData (20 datapoints a call, grouped by namespace), with their timestamps."""
        with self._lock:
            pending, self._pending = self._pending, []
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (namespace, name, dimensions), (stamp, value), unit in pending:
            by_namespace[namespace].append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions)],
                    "Timestamp": datetime.fromtimestamp(stamp, tz=UTC),
                    "Value": value,
                    "Unit": unit,
                }
            )
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), 20):
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])
        return len(pending)


def emf_datapoints(line: str) -> Iterator[tuple[str, str, dict[str, str], float, str, float | None]]:
    """(namespace, metric, dimensions, value, unit, timestamp) of one log line in Embedded Metric Format."""
    start = line.find("{")
    if start < 0 or '"_aws"' not in line:
        return
    try:
        document = json.loads(line[start:])
    except ValueError:
        return
    if not isinstance(document, dict) or not isinstance(document.get("_aws"), dict):
        return
    meta = document["_aws"]
    stamp = meta.get("Timestamp")
    timestamp = float(stamp) / 1000 if isinstance(stamp, (int, float)) else None
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = str(directive.get("Namespace") or "")
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = {str(name): str(document.get(name, "")) for name in dimension_set}
            for metric in directive.get("Metrics") or []:
                name = metric.get("Name")
                values = document.get(name)
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        yield namespace, name, dimensions, float(value), metric.get("Unit", "None"), timestamp
