"""moto's Lambda, made to return what Terraform reads back and to tell the local runtime of updates.

UpdateFunctionConfiguration changes what AWS runs from the next invocation on (new execution
environments with the new environment, handler, role, timeout or memory); moto only stores
it. Listeners registered with ``on_configuration_update`` hear of each update, so the local
runtime can start its next environments with the new configuration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaFunction

from ._patch import MotoPatch, Target

_LISTENERS: list[Callable[[str], None]] = []


def on_configuration_update(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(function_name)`` after each UpdateFunctionConfiguration; returns its remover."""
    _LISTENERS.append(listener)
    return lambda: _LISTENERS.remove(listener) if listener in _LISTENERS else None


def _init_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: moto drops a function's LoggingConfig, so every plan after an apply wants to set
    # logging_config again.
    @functools.wraps(original)
    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:  # noqa: N807
        original(self, account_id, spec, *args, **kwargs)
        self.local_logging_config = spec.get("LoggingConfig")

    return __init__


def _update_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_configuration(self: Any, config_updates: dict[str, Any]) -> Any:
        if "LoggingConfig" in config_updates:
            self.local_logging_config = config_updates["LoggingConfig"]
        result = original(self, config_updates)
        for listener in list(_LISTENERS):
            listener(self.function_name)
        return result

    return update_configuration


def _configuration_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = original(self, *args, **kwargs)
        logging_config = dict(getattr(self, "local_logging_config", None) or {"LogFormat": "Text"})
        logging_config.setdefault("LogGroup", f"/aws/lambda/{self.function_name}")
        if logging_config.get("LogFormat") == "JSON":
            logging_config.setdefault("ApplicationLogLevel", "INFO")
            logging_config.setdefault("SystemLogLevel", "INFO")
        config["LoggingConfig"] = logging_config
        return config

    return get_configuration


def _targets() -> list[Target]:
    return [
        (LambdaFunction, "__init__", _init_factory),
        (LambdaFunction, "update_configuration", _update_factory),
        (LambdaFunction, "get_configuration", _configuration_factory),
    ]


_LOGGING_CONFIG = MotoPatch("lambda-logging-config", _targets)


def lambda_logging_config() -> MotoPatch:
    """Lambda functions keep and return their LoggingConfig, as on AWS."""
    return _LOGGING_CONFIG.start()
