"""An alarm's state from its metric's datapoints, computed as CloudWatch does.

The last ``EvaluationPeriods`` periods (the current one included, as CloudWatch evaluates
data as it arrives) each get the alarm's statistic; a period breaches if the statistic
compares with the threshold as the operator says. ``DatapointsToAlarm`` breaching periods
make ALARM. Periods without data count as ``TreatMissingData`` says: ``notBreaching`` and
``breaching`` as such, ``ignore`` keeps the current state if every period is missing,
``missing`` makes INSUFFICIENT_DATA if every period is missing.

Each tick evaluates the open period as data arrives, and first every period that closed since
the previous tick, complete (``evaluation_times``): a datapoint that lands after a period's
last tick still counts in it, as CloudWatch counts every datapoint of a period it evaluates.

Not like CloudWatch: no metric math, no anomaly detection, no evaluation delay for late
data; percentiles are nearest-rank over the raw values (CloudWatch estimates them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OPERATORS = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


def statistic(values: Sequence[float], name: str) -> float:
    """``Sum``, ``Average``, ``Minimum``, ``Maximum``, ``SampleCount`` or a percentile ``pNN(.N)``."""
    if not values:
        raise ValueError("a statistic of no values")
    if name == "Sum":
        return float(sum(values))
    if name == "Average":
        return float(sum(values)) / len(values)
    if name == "Minimum":
        return float(min(values))
    if name == "Maximum":
        return float(max(values))
    if name == "SampleCount":
        return float(len(values))
    if name.startswith("p"):
        rank = float(name[1:])
        if not 0 <= rank <= 100:
            raise ValueError(f"percentile out of range: {name}")
        ordered = sorted(values)
        index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
        return float(ordered[index])
    raise ValueError(f"unknown statistic {name!r}")


Key = tuple[str, str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Alarm:
    """The parts of a metric alarm (DescribeAlarms' MetricAlarms entry) that decide its state."""

    name: str
    arn: str
    namespace: str
    metric_name: str
    dimensions: frozenset[tuple[str, str]]
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str
    state: str
    alarm_actions: tuple[str, ...]
    ok_actions: tuple[str, ...]

    @classmethod
    def from_description(cls, alarm: Mapping[str, Any]) -> Alarm:
        evaluation_periods = int(alarm.get("EvaluationPeriods") or 1)
        return cls(
            name=alarm["AlarmName"],
            arn=alarm.get("AlarmArn", ""),
            namespace=alarm["Namespace"],
            metric_name=alarm["MetricName"],
            dimensions=frozenset((d["Name"], d["Value"]) for d in alarm.get("Dimensions") or []),
            statistic=alarm.get("ExtendedStatistic") or alarm.get("Statistic") or "Average",
            period=int(alarm.get("Period") or 60),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or evaluation_periods),
            threshold=float(alarm["Threshold"]),
            comparison=alarm["ComparisonOperator"],
            treat_missing_data=alarm.get("TreatMissingData") or "missing",
            state=alarm.get("StateValue") or "INSUFFICIENT_DATA",
            alarm_actions=tuple(alarm.get("AlarmActions") or ()),
            ok_actions=tuple(alarm.get("OKActions") or ()),
        )

    @property
    def key(self) -> Key:
        return (self.namespace, self.metric_name, self.dimensions)


def evaluate(
    alarm: Alarm, datapoints: Sequence[tuple[float, float]], now: float, seconds_per_period: float
) -> str:
    """The state ``alarm`` has at ``now`` given ``(timestamp, value)`` datapoints of its metric.

    ``seconds_per_period`` is the alarm's period on this clock (``Period`` times the time
    scale): the tests run a 60 s period in a fraction of a second.
    """
    compare = OPERATORS.get(alarm.comparison)
    if compare is None:
        raise ValueError(f"{alarm.name}: comparison {alarm.comparison} is not evaluated locally")
    current = math.floor(now / seconds_per_period)
    breaching = missing = 0
    for bucket in range(current - alarm.evaluation_periods + 1, current + 1):
        start, end = bucket * seconds_per_period, (bucket + 1) * seconds_per_period
        values = [value for stamp, value in datapoints if start <= stamp < end]
        if not values:
            missing += 1
            if alarm.treat_missing_data == "breaching":
                breaching += 1
            continue
        if compare(statistic(values, alarm.statistic), alarm.threshold):
            breaching += 1
    if missing == alarm.evaluation_periods:
        if alarm.treat_missing_data == "ignore":
            return alarm.state
        if alarm.treat_missing_data == "missing":
            return "INSUFFICIENT_DATA"
    return "ALARM" if breaching >= alarm.datapoints_to_alarm else "OK"


MAX_CLOSED_PERIODS = 10  # a tick late by more periods than this evaluates only the last ones


def evaluation_times(previous: float | None, now: float, seconds_per_period: float) -> list[float]:
    """When to evaluate an alarm on a tick at ``now`` after one at ``previous``: just before the end
    of each period that closed in between (so it is evaluated with all its data), then ``now``."""
    if previous is None:
        return [now]
    first = math.floor(previous / seconds_per_period) + 1  # the first period end after previous
    last = math.floor(now / seconds_per_period)  # the end of the last closed period
    epsilon = seconds_per_period * 1e-6
    ends = range(max(first, last - MAX_CLOSED_PERIODS + 1), last + 1)
    return [end * seconds_per_period - epsilon for end in ends] + [now]
