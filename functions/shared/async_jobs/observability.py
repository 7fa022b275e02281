"""Powertools singletons shared by the handlers: one Logger, Tracer, Metrics and batch processors.

Service name, namespace and log level come from POWERTOOLS_* environment variables.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, SqsFifoPartialProcessor

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A batch whose every message failed is still answered with batchItemFailures (not an
# exception), so the event source mapping and the local runtime see one response shape.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
fifo_processor = SqsFifoPartialProcessor()
fifo_processor.raise_on_entire_batch_failure = False

__all__ = ["MetricUnit", "fifo_processor", "logger", "metrics", "processor", "tracer"]
