"""``LocalCloudWatch``: metrics published and alarms evaluated on a tick, next to a local deployment.

Time scale: CloudWatch's periods are real time (a 60 s alarm needs a minute). ``time_scale``
is the real seconds one alarm second takes here: 1.0 is CloudWatch's pace, 0.02 runs a 60 s
period in 1.2 s (tests; ``ASYNC_JOBS_LOCAL_ALARM_TIME_SCALE`` for ``make local``).

The history (``history_path``, the deployment's ``logs/alarms.log``) is open from construction
to ``stop()``: it says when evaluation starts and stops, and each state change and delivery.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..sandbox import FunctionThrottled, InvocationError
from . import sqs as sqs_metrics
from .delivery import Notifier
from .evaluation import Alarm, evaluate, evaluation_times
from .history import AlarmHistory
from .metrics import MetricStore, emf_datapoints


@dataclass(frozen=True)
class Transition:
    alarm: str
    old: str
    new: str
    at: float


class LocalCloudWatch:
    def __init__(
        self,
        client: Callable[[str], Any],
        *,
        region: str,
        api: dict[str, str] | None = None,
        log_dir: Path | None = None,
        history_path: Path | None = None,
        time_scale: float = 1.0,
        tick_seconds: float | None = None,
    ) -> None:
        self._client = client
        self.region = region
        self.api = dict(api or {})  # {"type": "rest"|"http", "name": ..., "id": ..., "stage": ...}
        self.log_dir = log_dir
        self.time_scale = time_scale
        # CloudWatch evaluates each minute; here a few times per (scaled) 60 s period, at most each second
        self.tick_seconds = (
            tick_seconds if tick_seconds is not None else max(0.2, min(1.0, 60 * time_scale / 4))
        )
        self.store = MetricStore()
        self.history = AlarmHistory(history_path)
        self.log = self.history.logger
        self.notifier = Notifier(client("sns"), client("kms"), log=self.log)
        self.transitions: list[Transition] = []
        self._previous_tick: float | None = None
        self._offsets: dict[Path, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counting = sqs_metrics.sqs_operation_counts()
        sqs_metrics.take_counts()  # what happened before start is not this deployment's

    # ------------------------------------------------------------------ sources

    def observe_invocation(self, function_name: str, call: Callable[[], Any]) -> Any:
        """Run one invocation; publish Invocations, Errors, Throttles, Duration as Lambda does."""
        dimensions = {"FunctionName": function_name}
        started = time.monotonic()
        try:
            result = call()
        except FunctionThrottled:
            self.store.put("AWS/Lambda", "Throttles", dimensions, 1, unit="Count")
            raise
        except InvocationError:
            self._invoked(dimensions, started, error=True)
            raise
        self._invoked(dimensions, started, error=False)
        return result

    def _invoked(self, dimensions: dict[str, str], started: float, *, error: bool) -> None:
        self.store.put("AWS/Lambda", "Invocations", dimensions, 1, unit="Count")
        self.store.put("AWS/Lambda", "Errors", dimensions, 1 if error else 0, unit="Count")
        self.store.put(
            "AWS/Lambda", "Duration", dimensions, (time.monotonic() - started) * 1000, unit="Milliseconds"
        )

    def observe_request(self, status: int, latency_ms: float) -> None:
        """One API response: Count, 4XX/5XX (0 or 1) and Latency with the API type's dimensions."""
        if self.api.get("type") == "http":
            dimensions = {"ApiId": self.api.get("id", ""), "Stage": self.api.get("stage", "$default")}
            names = ("4xx", "5xx")
        else:
            dimensions = {"ApiName": self.api.get("name", ""), "Stage": self.api.get("stage", "")}
            names = ("4XXError", "5XXError")
        self.store.put("AWS/ApiGateway", "Count", dimensions, 1, unit="Count")
        self.store.put("AWS/ApiGateway", names[0], dimensions, 1 if 400 <= status < 500 else 0, unit="Count")
        self.store.put("AWS/ApiGateway", names[1], dimensions, 1 if status >= 500 else 0, unit="Count")
        self.store.put("AWS/ApiGateway", "Latency", dimensions, latency_ms, unit="Milliseconds")

    def _sample_queues(self) -> None:
        for (queue, metric), count in sqs_metrics.take_counts().items():
            self.store.put("AWS/SQS", metric, {"QueueName": queue}, count, unit="Count")
        for queue, metric, value in sqs_metrics.queue_samples(self.region):
            unit = "Seconds" if metric == "ApproximateAgeOfOldestMessage" else "Count"
            self.store.put("AWS/SQS", metric, {"QueueName": queue}, value, unit=unit)

    def _read_emf(self) -> None:
        if not self.log_dir or not self.log_dir.is_dir():
            return
        for path in self.log_dir.glob("*.log"):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as stream:
                stream.seek(offset)
                chunk = stream.read()
            complete = chunk.rfind(b"\n") + 1  # a line still being written waits for the next tick
            self._offsets[path] = offset + complete
            for line in chunk[:complete].decode("utf-8", "replace").splitlines():
                for namespace, name, dimensions, value, unit, stamp in emf_datapoints(line):
                    self.store.put(namespace, name, dimensions, value, unit=unit, timestamp=stamp)

    # ------------------------------------------------------------------ evaluation

    def tick(self) -> None:
        self._sample_queues()
        self._read_emf()
        cloudwatch = self._client("cloudwatch")
        self.store.flush(cloudwatch)
        now = time.time()
        self.store.prune(now)
        previous, self._previous_tick = self._previous_tick, now
        for description in cloudwatch.describe_alarms().get("MetricAlarms", []):
            if "MetricName" not in description:
                continue  # metric math alarms are not evaluated locally
            try:
                self._evaluate(cloudwatch, Alarm.from_description(description), previous, now)
            except (KeyError, ValueError) as exc:  # one alarm not evaluable locally must not stop the others
                self.log.warning("alarm %s not evaluated: %s", description.get("AlarmName"), exc)

    def _evaluate(self, cloudwatch: Any, alarm: Alarm, previous: float | None, now: float) -> None:
        """The periods closed since the previous tick, then the open one; each state change set,
        recorded and notified."""
        seconds = alarm.period * self.time_scale
        datapoints = self.store.datapoints(alarm.key)
        for at in evaluation_times(previous, now, seconds):
            state = evaluate(alarm, datapoints, at, seconds)
            if state == alarm.state:
                continue
            reason = f"{alarm.statistic} of {alarm.metric_name} {alarm.comparison} {alarm.threshold} (local)"
            cloudwatch.set_alarm_state(AlarmName=alarm.name, StateValue=state, StateReason=reason)
            self.transitions.append(Transition(alarm.name, alarm.state, state, now))
            self.log.info("alarm %s: %s -> %s", alarm.name, alarm.state, state)
            self.notifier.notify(alarm, alarm.state, state, reason)
            alarm = dataclasses.replace(alarm, state=state)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one failed tick must not stop alarm evaluation
                self.log.exception("alarm evaluation tick failed")

    def start(self) -> LocalCloudWatch:
        self.log.info(
            "alarm evaluation started: every %.2f s, time scale %g (a 60 s period takes %.2f s)",
            self.tick_seconds,
            self.time_scale,
            60 * self.time_scale,
        )
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="local-cloudwatch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None
            self.log.info(
                "alarm evaluation stopped: %d state changes, %d deliveries, %d refused",
                len(self.transitions),
                len(self.notifier.deliveries) - self.notifier.refused,
                self.notifier.refused,
            )
        self._counting.stop()
        self.history.close()
