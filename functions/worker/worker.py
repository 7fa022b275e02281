"""worker function: SQS batches of split / chunk messages and S3 upload notifications, and the
dead-letter queue's messages (told apart by the record's eventSourceARN)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from async_jobs.engine import BadMessage
from async_jobs.observability import fifo_processor, logger, metrics, processor, tracer
from async_jobs.wiring import worker as wiring


@cache
def runtime() -> wiring.WorkerRuntime:
    return wiring.worker_runtime()


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    receive_count = int(record.attributes.approximate_receive_count or 1)
    rt = runtime()
    if rt.is_dead_letter(record.event_source_arn):
        job_id = rt.dead_letters.handle(record.message_id, record.body, receive_count)
        logger.set_correlation_id(job_id)
        return
    try:
        message = json.loads(record.body)
    except ValueError:
        raise BadMessage("message body is not JSON") from None
    if not isinstance(message, dict):
        raise BadMessage("message body is not a JSON object")
    job_id = message.get("job_id")
    logger.set_correlation_id(str(job_id) if job_id else None)
    rt.engine.handle(message, receive_count, record.message_id)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = runtime()  # configuration errors fail the invocation loudly, naming the variable
    batch = fifo_processor if rt.config.queue_fifo else processor
    # the batch's chunk completions are accounted together at its end (one compare-and-swap per
    # accounting segment); those that could not be are reported failed, and SQS delivers them
    # again (their markers make the repeat count once)
    rt.engine.begin_batch()
    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=batch, context=context
        )
    finally:
        unaccounted = rt.engine.end_batch()
    reported = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    response["batchItemFailures"] += [{"itemIdentifier": i} for i in unaccounted if i not in reported]
    return response
