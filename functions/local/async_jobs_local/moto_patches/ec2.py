"""moto's EC2, made to keep the description of a security group rule that references a group.

AWS returns a rule's ``Description`` whatever its peer (CIDR, prefix list or security group);
moto keeps it only for CIDR rules, so ``aws_vpc_security_group_{ingress,egress}_rule`` with
``referenced_security_group_id`` and a description (what checkov asks of every rule) would show
a change on every plan after apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.ec2.models.security_groups import SecurityGroupRule

from ._patch import MotoPatch, Target


def _description_factory(original: Callable[..., Any]) -> property:
    def description(self: Any) -> str | None:
        return self.ip_range.get("Description") or self.source_group.get("Description")

    return property(description)


def _targets() -> list[Target]:
    return [(SecurityGroupRule, "description", _description_factory)]


_RULE_DESCRIPTIONS = MotoPatch("ec2-referenced-group-rule-descriptions", _targets)


def referenced_group_rule_descriptions() -> MotoPatch:
    """A rule that references a security group keeps its description, as on AWS."""
    return _RULE_DESCRIPTIONS.start()
