"""moto's RDS, made to describe a parameter group's own parameters as AWS does.

AWS answers ``DescribeDBParameters`` with each parameter's ``Source`` (``user`` for what was
set through ``ModifyDBParameterGroup``) and the provider keeps only ``user`` parameters in the
state; moto leaves ``Source`` out, so every ``parameter`` block of ``aws_db_parameter_group``
(``rds.force_ssl``) would show as a change on every plan after apply.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from moto.rds.models import DBParameterGroup

from ._patch import MotoPatch, Target


def _update_parameters_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_parameters(self: Any, new_parameters: Iterable[dict[str, Any]]) -> None:
        new_parameters = list(new_parameters)
        original(self, new_parameters)
        for parameter in new_parameters:
            self.parameters[parameter["ParameterName"]].setdefault("Source", "user")

    return update_parameters


def _targets() -> list[Target]:
    return [(DBParameterGroup, "update_parameters", _update_parameters_factory)]


_USER_PARAMETERS = MotoPatch("rds-user-parameters-have-a-source", _targets)


def user_parameters_have_a_source() -> MotoPatch:
    """Parameters set on a group are described with ``Source: user``, as on AWS."""
    return _USER_PARAMETERS.start()
