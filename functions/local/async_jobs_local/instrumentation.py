"""Measurement hooks of the local stack, for benchmarks: nothing here changes what the functions do.

Each execution environment started with ``FunctionSpec(instruments=...)`` counts the AWS
operations its function makes (botocore ``before-call``, inside the function's process, see
``runtime_loop.Instruments``) and the error answers (``after-call``: a 412 is a lost
compare-and-swap race), times its init and each invocation, and sleeps before the AWS calls
that the current latency rules match, standing in for a slower S3 or sink than moto's. The
figures come back with each invocation's result and are added up here, per function.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter, defaultdict
from typing import Any


class Instruments:
    """Counters and latency rules shared by every environment of a deployment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency: dict[str, list[dict[str, Any]]] = {}
        self.requests: dict[str, Counter[str]] = {}
        self.invocations: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.gb_seconds: defaultdict[str, float] = defaultdict(float)
        self.init_seconds: dict[str, list[float]] = {}
        self.clients: dict[str, list[str]] = {}

    def set_latency(self, function_name: str, rules: list[dict[str, Any]]) -> None:
        """Rules ``{"service", "operation", "key_contains", "seconds"}`` (omitted = any) for
        ``function_name`` (``"*"``: every function), applied from its next invocation on."""
        with self._lock:
            self._latency[function_name] = copy.deepcopy(rules)

    def latency_rules(self, function_name: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._latency.get(function_name, []) + self._latency.get("*", [])

    def record_init(self, spec: Any, measured: dict[str, Any]) -> None:
        with self._lock:
            self.init_seconds.setdefault(spec.name, []).append(float(measured.get("init_seconds", 0)))
            self.clients[spec.name] = list(measured.get("clients") or [])
            self.requests.setdefault(spec.name, Counter()).update(measured.get("requests") or {})

    def record(self, spec: Any, measured: dict[str, Any]) -> None:
        seconds = float(measured.get("seconds", 0))
        with self._lock:
            self.invocations[spec.name] += 1
            self.seconds[spec.name] += seconds
            self.gb_seconds[spec.name] += seconds * spec.memory_mb / 1024
            self.requests.setdefault(spec.name, Counter()).update(measured.get("requests") or {})

    def snapshot(self) -> dict[str, Any]:
        """Totals so far: ``{"requests": {function: {"s3.PutObject": n, ...}}, "invocations", ...}``."""
        with self._lock:
            return {
                "requests": {name: dict(counts) for name, counts in self.requests.items()},
                "invocations": dict(self.invocations),
                "seconds": dict(self.seconds),
                "gb_seconds": dict(self.gb_seconds),
            }
