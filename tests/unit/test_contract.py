"""The contract (functions/shared/async_jobs/contract.json) is the one source of the routes,
the settings' defaults and bounds and the functions' environments: openapi.yaml documents its
routes, the handlers serve them, and the parsers apply its defaults and bounds. Terraform's
side (defaults, validations, routes) is held to it in tests/plan/test_plan_contract.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from async_jobs.config import CONFIGS, ConfigError
from async_jobs.contract import Setting, contract

from .conftest import load_handler

# async_jobs.web is imported inside the tests, after the `env` fixture: it creates Powertools'
# singletons, which read their settings from the environment once.
ROOT = Path(__file__).resolve().parents[2]
OPENAPI = yaml.safe_load((ROOT / "openapi.yaml").read_text())
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
# What a function needs besides the setting under test.
REQUIRED = {"STATE_BUCKET": "bucket", "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q"}


def test_openapi_documents_exactly_the_contract_routes() -> None:
    documented = {
        (method.upper(), path, operation["operationId"])
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    assert documented == {(r.method, r.path, r.operation) for r in contract().routes}


@pytest.mark.parametrize("function", ["submit", "status"])
def test_each_handler_serves_exactly_its_contract_routes(env: dict[str, str], function: str) -> None:
    module = load_handler(function)
    for kind, app in module.APPS.items():
        served = {(route.method, route.openapi_path) for route in app._static_routes + app._dynamic_routes}
        expected = {(r.method, r.path) for r in contract().routes_of(function)}
        assert served == expected, kind


def test_a_handler_without_its_route_or_a_route_without_its_handler_is_refused(env: dict[str, str]) -> None:
    from async_jobs import web

    def handler() -> None:
        return None

    with pytest.raises(LookupError, match="listJobs"):
        web.register_routes(APIGatewayRestResolver(), "status", {"getJob": handler})
    with pytest.raises(LookupError, match="nope"):
        web.register_routes(
            APIGatewayRestResolver(), "status", {"getJob": handler, "listJobs": handler, "nope": handler}
        )


def test_the_router_knows_every_contract_route(env: dict[str, str]) -> None:
    from async_jobs import web

    for route in contract().routes:
        path = route.path.replace("{job_id}", "0b6f8f0e-1d5a-4c4e-9a57-3f7d2c1e9b10")
        assert route.method in (web.allowed_methods(path) or ()), route


def _reader(setting: Setting) -> tuple[str, Any]:
    """The function whose environment carries the setting, and its parser."""
    for function, groups in contract().functions.items():
        names = {v.name for group in groups for v in contract().environment[group]}
        if setting.variable in names:
            return function, CONFIGS[function]
    raise AssertionError(f"{setting.variable} is in no function's environment")


def _parsed(parser: Any, setting: Setting, value: str | None) -> Any:
    environ = dict(REQUIRED) if value is None else {**REQUIRED, setting.variable: value}
    config = parser.from_env(environ)
    # the notification settings are grouped under config.notify
    return getattr(config.notify if setting.name.startswith("callback_") else config, setting.name)


@pytest.mark.parametrize("name", sorted(contract().settings))
def test_each_setting_takes_the_contract_default_and_bounds(name: str) -> None:
    setting = contract().settings[name]
    _, parser = _reader(setting)
    # GIVEN nothing set THEN the contract's default
    assert _parsed(parser, setting, None) == setting.default
    # the bounds themselves are accepted, a step beyond either refused, naming the variable
    step = 1 if setting.type == "integer" else 0.5
    assert _parsed(parser, setting, str(setting.minimum)) == setting.minimum
    with pytest.raises(ConfigError, match=setting.variable):
        _parsed(parser, setting, str(setting.minimum - step))
    if setting.maximum is not None:
        assert _parsed(parser, setting, str(setting.maximum)) == setting.maximum
        with pytest.raises(ConfigError, match=setting.variable):
            _parsed(parser, setting, str(setting.maximum + step))


def test_every_function_declares_its_contract_environment() -> None:
    for function, parser in CONFIGS.items():
        declared = {var.name for var in parser.env_vars(REQUIRED)}
        assert declared == {v.name for v in contract().function_environment(function)}, function


def test_a_setting_is_read_by_a_function_that_declares_it() -> None:
    # every setting lives in exactly one environment group (so one variable carries it)
    groups = contract().environment
    for setting in contract().settings.values():
        owners = [g for g, variables in groups.items() if setting.variable in {v.name for v in variables}]
        assert len(owners) == 1, (setting.name, owners)
