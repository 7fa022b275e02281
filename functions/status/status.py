"""status function: GET /jobs/{job_id} and GET /jobs (reads only; never writes)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from async_jobs import identity, web
from async_jobs.observability import logger, metrics, tracer
from async_jobs.problems import ProblemError
from async_jobs.wiring import api as wiring


@cache
def runtime() -> wiring.StatusRuntime:
    return wiring.status_runtime()


def register(app: ApiGatewayResolver) -> None:
    @tracer.capture_method
    def list_jobs() -> Response:
        rt, event = runtime(), app.current_event
        outcome = rt.listing.list(
            dict(event.query_string_parameters or {}),
            identity.owner_from_event(event.raw_event, rt.config.authorization),
            web.url_builder(event.raw_event),
            web.list_url_builder(event.raw_event),
        )
        return web.outcome_response(outcome)

    @tracer.capture_method
    def get_job(job_id: str) -> Response:
        if job_id == "uploads":
            raise ProblemError(
                405,
                "GET is not allowed here; use POST.",
                headers={"Allow": "POST"},
                slug="method-not-allowed",
            )
        rt, event = runtime(), app.current_event
        outcome = rt.service.get(
            job_id,
            identity.owner_from_event(event.raw_event, rt.config.authorization),
            event.headers.get("if-none-match"),
            web.url_builder(event.raw_event),
        )
        logger.set_correlation_id(job_id)
        return web.outcome_response(outcome)

    # the routes are the contract's (contract.json), bound here by operation id
    web.register_routes(app, "status", {"listJobs": list_jobs, "getJob": get_job})


APPS = web.build_apps(register)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime()  # configuration errors fail the invocation loudly, naming the variable
    return APPS[web.api_kind(event)].resolve(event, context)
