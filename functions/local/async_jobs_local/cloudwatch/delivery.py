"""An alarm's notification published to its SNS topics, refused where AWS would drop it.

CloudWatch publishes to an encrypted topic as ``cloudwatch.amazonaws.com``: the topic's KMS
key policy must allow that service ``kms:GenerateDataKey*`` and ``kms:Decrypt``. The AWS
managed ``alias/aws/sns`` key's policy allows only principals of the account, so alarms on
a topic encrypted with it change state and nobody hears of it. moto's SNS does not look at
the key at all; ``Notifier`` does, and logs and counts each refused delivery.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..moto_patches.conditions import statement_applies
from .evaluation import Alarm
from .history import NAME

log = logging.getLogger(NAME)

SERVICE = "cloudwatch.amazonaws.com"
REQUIRED_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _allows(statement: dict[str, Any], action: str, context: dict[str, str]) -> bool:
    principal = statement.get("Principal")
    services = _listed(principal.get("Service", [])) if isinstance(principal, dict) else _listed(principal)
    if SERVICE not in services and "*" not in services:
        return False
    if not any(
        fnmatch.fnmatchcase(action.lower(), pattern.lower())
        for pattern in _listed(statement.get("Action", []))
    ):
        return False
    return statement_applies(statement, context)


def cloudwatch_may_use_key(policy: dict[str, Any], alarm_arn: str, account: str) -> bool:
    """True if ``policy`` (a KMS key policy) lets CloudWatch, publishing for ``alarm_arn``, use the key."""
    context = {
        "aws:sourcearn": alarm_arn,
        "aws:sourceaccount": account,
        "aws:securetransport": "true",
    }  # keys as conditions.py looks them up
    statements = policy.get("Statement") or []
    statements = statements if isinstance(statements, list) else [statements]
    for action in REQUIRED_ACTIONS:
        if any(s.get("Effect") == "Deny" and _allows(s, action, context) for s in statements):
            return False
        if not any(s.get("Effect") == "Allow" and _allows(s, action, context) for s in statements):
            return False
    return True


@dataclass
class Delivery:
    alarm: str
    topic: str
    state: str
    delivered: bool
    reason: str = ""


@dataclass
class Notifier:
    """Publishes alarm state changes to SNS topics as CloudWatch does; keeps every attempt."""

    sns: Any
    kms: Any
    deliveries: list[Delivery] = field(default_factory=list)
    log: logging.Logger = log  # the deployment's alarm history (history.AlarmHistory)

    @property
    def refused(self) -> int:
        return sum(1 for d in self.deliveries if not d.delivered)

    def _refusal(self, topic: str, alarm: Alarm) -> str:
        key_id = self.sns.get_topic_attributes(TopicArn=topic)["Attributes"].get("KmsMasterKeyId")
        if not key_id:
            return ""
        if key_id.endswith("alias/aws/sns"):
            return "the topic is encrypted with alias/aws/sns, whose key policy CloudWatch may not use"
        account = alarm.arn.split(":")[4] if alarm.arn.count(":") >= 5 else ""
        policy = json.loads(self.kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        if not cloudwatch_may_use_key(policy, alarm.arn, account):
            return f"the key policy of {key_id} does not allow {SERVICE} kms:GenerateDataKey* and kms:Decrypt"
        return ""

    def notify(self, alarm: Alarm, old_state: str, new_state: str, reason: str) -> None:
        actions = (
            alarm.alarm_actions if new_state == "ALARM" else alarm.ok_actions if new_state == "OK" else ()
        )
        for topic in actions:
            if ":sns:" not in topic:
                continue
            refusal = self._refusal(topic, alarm)
            if refusal:
                self.log.error(
                    "alarm %s -> %s: not delivered to %s: %s", alarm.name, new_state, topic, refusal
                )
                self.deliveries.append(Delivery(alarm.name, topic, new_state, False, refusal))
                continue
            message = {
                "AlarmName": alarm.name,
                "AlarmArn": alarm.arn,
                "OldStateValue": old_state,
                "NewStateValue": new_state,
                "NewStateReason": reason,
                "Trigger": {"Namespace": alarm.namespace, "MetricName": alarm.metric_name},
            }
            self.sns.publish(
                TopicArn=topic, Subject=f'{new_state}: "{alarm.name}"'[:100], Message=json.dumps(message)
            )
            self.log.info("alarm %s -> %s: delivered to %s", alarm.name, new_state, topic)
            self.deliveries.append(Delivery(alarm.name, topic, new_state, True))
