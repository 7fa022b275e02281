"""submit function: POST /jobs, POST /jobs/uploads, DELETE /jobs/{job_id}, POST /jobs/{job_id}/retry."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from async_jobs import identity, web
from async_jobs.observability import MetricUnit, logger, metrics, tracer
from async_jobs.wiring import api as wiring


@cache
def runtime() -> wiring.SubmitRuntime:
    return wiring.submit_runtime()


def register(app: ApiGatewayResolver) -> None:
    @tracer.capture_method
    def create_job() -> Response:
        rt, event = runtime(), app.current_event
        outcome = rt.service.submit(
            body=web.raw_body(event),
            content_type=event.headers.get("content-type"),
            idempotency_key=event.headers.get("idempotency-key"),
            owner=identity.owner_from_event(event.raw_event, rt.config.authorization),
            url_for=web.url_builder(event.raw_event),
            callback_url=event.headers.get("callback-url"),
        )
        assert outcome.body is not None
        logger.set_correlation_id(outcome.body["job_id"])
        if "Idempotent-Replayed" not in outcome.headers:
            metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
        logger.info(
            "job accepted", status=outcome.body["status"], total_records=outcome.body["total_records"]
        )
        return web.outcome_response(outcome)

    @tracer.capture_method
    def create_upload() -> Response:
        rt, event = runtime(), app.current_event
        outcome = rt.service.create_upload(
            owner=identity.owner_from_event(event.raw_event, rt.config.authorization),
            body=web.raw_body(event),
            content_type=event.headers.get("content-type"),
            url_for=web.url_builder(event.raw_event),
            callback_url=event.headers.get("callback-url"),
        )
        assert outcome.body is not None
        logger.set_correlation_id(outcome.body["job_id"])
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
        return web.outcome_response(outcome)

    @tracer.capture_method
    def cancel_job(job_id: str) -> Response:
        rt, event = runtime(), app.current_event
        outcome = rt.service.cancel(
            job_id,
            identity.owner_from_event(event.raw_event, rt.config.authorization),
            web.url_builder(event.raw_event),
        )
        logger.set_correlation_id(job_id)
        return web.outcome_response(outcome)

    @tracer.capture_method
    def retry_job(job_id: str) -> Response:
        rt, event = runtime(), app.current_event
        logger.set_correlation_id(job_id)
        outcome = rt.retries.retry(
            job_id,
            identity.owner_from_event(event.raw_event, rt.config.authorization),
            web.url_builder(event.raw_event),
        )
        metrics.add_metric(name="JobsRetried", unit=MetricUnit.Count, value=1)
        logger.info("job retried: its failed chunks run again")
        return web.outcome_response(outcome)

    # the routes are the contract's (contract.json), bound here by operation id
    web.register_routes(
        app,
        "submit",
        {
            "submitJob": create_job,
            "createUpload": create_upload,
            "cancelJob": cancel_job,
            "retryJob": retry_job,
        },
    )


APPS = web.build_apps(register)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime()  # configuration errors fail the invocation loudly, naming the variable
    return APPS[web.api_kind(event)].resolve(event, context)
