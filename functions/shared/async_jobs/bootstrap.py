"""Cold-start wiring: configuration, AWS clients and adapters, built once per execution environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from async_jobs.config import StatusConfig, SubmitConfig, WorkerConfig
from async_jobs.engine import Engine, EngineSettings
from async_jobs.messaging import JobQueue
from async_jobs.observability import metrics
from async_jobs.records import compile_schema, load_processor
from async_jobs.service import JobViews, StatusService, SubmitService
from async_jobs.sinks.base import Sink
from async_jobs.sinks.redshift import RedshiftSink, connection_settings
from async_jobs.sinks.redshift_data import RedshiftDataSink
from async_jobs.sinks.s3 import S3Sink
from async_jobs.store import JobStore

_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, signature_version="s3v4")


def client(service: str) -> Any:
    return boto3.client(service, config=_CLIENT_CONFIG)


def emit_metric(name: str, value: float, unit: str) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)


@dataclass(frozen=True)
class SubmitRuntime:
    config: SubmitConfig
    service: SubmitService


@dataclass(frozen=True)
class StatusRuntime:
    config: StatusConfig
    service: StatusService


@dataclass(frozen=True)
class WorkerRuntime:
    config: WorkerConfig
    engine: Engine


def submit_runtime() -> SubmitRuntime:
    config = SubmitConfig.from_env()
    store = JobStore(client("s3"), config.state_bucket)
    queue = JobQueue(client("sqs"), config.queue_url, fifo=config.queue_fifo)
    views = JobViews(store, retry_after_seconds=config.retry_after_seconds)
    service = SubmitService(
        store,
        queue,
        views,
        authorization=config.authorization,
        max_records_per_job=config.max_records_per_job,
        max_body_bytes=config.max_body_bytes,
        upload_url_ttl_seconds=config.upload_url_ttl_seconds,
    )
    return SubmitRuntime(config, service)


def status_runtime() -> StatusRuntime:
    config = StatusConfig.from_env()
    store = JobStore(client("s3"), config.state_bucket)
    views = JobViews(
        store,
        retry_after_seconds=config.retry_after_seconds,
        errors_url_ttl_seconds=config.errors_url_ttl_seconds,
    )
    return StatusRuntime(config, StatusService(views, config.authorization))


def build_sink(config: WorkerConfig, store: JobStore) -> Sink:
    if config.sink == "s3" or config.redshift is None:
        return S3Sink(store)
    if config.sink == "redshift_data":
        return RedshiftDataSink(client("redshift-data"), store, config.redshift)
    # redshift-connector (and its dependencies) load only when that sink is chosen
    import redshift_connector  # noqa: PLC0415

    secrets = client("secretsmanager") if config.redshift.secret_arn else None
    settings = connection_settings(config.redshift, secrets)
    return RedshiftSink(redshift_connector.connect, store, config.redshift, settings)


def worker_runtime() -> WorkerRuntime:
    config = WorkerConfig.from_env()
    store = JobStore(client("s3"), config.state_bucket)
    queue = JobQueue(client("sqs"), config.queue_url, fifo=config.queue_fifo)
    check = None
    if config.record_schema_key:
        schema = store.get_json(config.record_schema_key)
        if not isinstance(schema, dict):
            raise ValueError(
                f"RECORD_SCHEMA_KEY: no JSON Schema object at s3://{config.state_bucket}/"
                f"{config.record_schema_key}"
            )
        check = compile_schema(schema)
    transform = load_processor(config.record_processor) if config.record_processor else None
    settings = EngineSettings(
        chunk_size=config.chunk_size,
        progress_every=config.progress_every,
        tolerated_failure_percent=config.tolerated_failure_percent,
        max_receive_count=config.max_receive_count,
    )
    engine = Engine(
        store, queue, build_sink(config, store), settings, check=check, transform=transform, emit=emit_metric
    )
    return WorkerRuntime(config, engine)
