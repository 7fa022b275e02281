"""CloudWatch played locally: the metrics AWS would publish, alarms evaluated, notifications delivered.

``metrics`` (what Lambda, SQS, API Gateway and the functions' EMF logs publish),
``evaluation`` (an alarm's state from its datapoints, as CloudWatch computes it),
``delivery`` (an alarm action published to its SNS topic, if the topic's key lets CloudWatch
use it), ``history`` (the deployment's ``logs/alarms.log``), ``runtime`` (the tick that ties
them to a local deployment).
"""

from __future__ import annotations

from .delivery import Delivery, Notifier, cloudwatch_may_use_key
from .evaluation import Alarm, evaluate, statistic
from .history import AlarmHistory
from .metrics import MetricStore, emf_datapoints
from .runtime import LocalCloudWatch

__all__ = [
    "Alarm",
    "AlarmHistory",
    "Delivery",
    "LocalCloudWatch",
    "MetricStore",
    "Notifier",
    "cloudwatch_may_use_key",
    "emf_datapoints",
    "evaluate",
    "statistic",
]
