"""Cold-start wiring of the worker: config, store, queue, record checks, the sink and the engine."""

from __future__ import annotations

from dataclasses import dataclass

from async_jobs.callbacks import CallbackClient, secret_cache
from async_jobs.config import NotifyConfig, PostgresConfig, WorkerConfig
from async_jobs.deadletters import DeadLetters
from async_jobs.engine import Engine, EngineSettings
from async_jobs.messaging import JobQueue
from async_jobs.notify import CallbackSettings, EventPublisher, EventSettings, Notifier
from async_jobs.observability import metrics
from async_jobs.records import RecordCheck, compile_schema, load_processor
from async_jobs.sinks.base import Sink
from async_jobs.sinks.redshift import RedshiftSink, connection_settings
from async_jobs.sinks.redshift_data import RedshiftDataSink
from async_jobs.sinks.s3 import S3Sink
from async_jobs.store import JobStore
from async_jobs.wiring.aws import client


@dataclass(frozen=True)
class WorkerRuntime:
    config: WorkerConfig
    engine: Engine
    dead_letters: DeadLetters

    def is_dead_letter(self, event_source_arn: str | None) -> bool:
        """A record of the dead-letter queue's mapping (the two mappings share this function)."""
        arn = self.config.dead_letter_queue_arn
        return arn is not None and event_source_arn == arn


def emit_metric(name: str, value: float, unit: str) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)


def build_sink(config: WorkerConfig, store: JobStore) -> Sink:
    if config.sink == "postgres" and config.postgres is not None:
        return postgres_sink(config.postgres)
    if config.sink == "s3" or config.redshift is None:
        return S3Sink(store)
    if config.sink == "redshift_data":
        return RedshiftDataSink(client("redshift-data"), store, config.redshift)
    # redshift-connector (and its dependencies) load only when that sink is chosen
    import redshift_connector  # noqa: PLC0415

    secrets = client("secretsmanager") if config.redshift.secret_arn else None
    settings = connection_settings(config.redshift, secrets)
    return RedshiftSink(redshift_connector.connect, store, config.redshift, settings)


def postgres_sink(config: PostgresConfig) -> Sink:
    # psycopg (and libpq) load only when this sink is chosen
    import psycopg  # noqa: PLC0415

    from async_jobs.sinks.postgres import PostgresSink, connection_settings  # noqa: PLC0415

    def connect() -> psycopg.Connection[tuple[object, ...]]:
        if config.auth == "iam":
            settings = connection_settings(config, rds=client("rds"))
        else:
            settings = connection_settings(config, secrets=client("secretsmanager"))
        # autocommit: each chunk opens its own transaction; no session idles inside one
        return psycopg.connect(**settings, autocommit=True)

    return PostgresSink(connect, config)


def record_check(config: WorkerConfig, store: JobStore) -> RecordCheck | None:
    """The compiled JSON Schema of RECORD_SCHEMA_KEY, if one is configured."""
    if not config.record_schema_key:
        return None
    schema = store.get_json(config.record_schema_key)
    if not isinstance(schema, dict):
        raise ValueError(
            f"RECORD_SCHEMA_KEY: no JSON Schema object at s3://{config.state_bucket}/"
            f"{config.record_schema_key}"
        )
    return compile_schema(schema)


def notifier(config: NotifyConfig, store: JobStore, queue: JobQueue) -> Notifier:
    """Completion events and callbacks, as configured; attached to the store (notify.py)."""
    events = None
    if config.events_enabled:
        settings = EventSettings(True, config.events_bus_name, config.events_source)
        events = EventPublisher(client("events"), settings)
    callbacks = None
    if config.callback_allowed_hosts and config.callback_secret_arn:
        secrets, arn = client("secretsmanager"), config.callback_secret_arn
        callbacks = CallbackClient(
            secret=secret_cache(lambda: str(secrets.get_secret_value(SecretId=arn)["SecretString"])),
            allowed_hosts=config.callback_allowed_hosts,
            timeout_seconds=config.callback_timeout_seconds,
            allow_private_addresses=config.callback_allow_private_addresses,
            ca_bundle_pem=config.callback_ca_bundle,
        )
    return Notifier(
        store,
        queue,
        events=events,
        callbacks=callbacks,
        callback_settings=CallbackSettings(config.callback_max_attempts),
        errors_url_ttl_seconds=config.errors_url_ttl_seconds,
    ).attach()


def worker_runtime() -> WorkerRuntime:
    config = WorkerConfig.from_env()
    store = JobStore(client("s3"), config.state_bucket)
    queue = JobQueue(client("sqs"), config.queue_url, fifo=config.queue_fifo)
    transform = load_processor(config.record_processor) if config.record_processor else None
    settings = EngineSettings(
        chunk_size=config.chunk_size,
        tolerated_failure_percent=config.tolerated_failure_percent,
        max_receive_count=config.max_receive_count,
    )
    engine = Engine(
        store,
        queue,
        build_sink(config, store),
        settings,
        check=record_check(config, store),
        transform=transform,
        emit=emit_metric,
        notify=notifier(config.notify, store, queue).handle,
    )
    return WorkerRuntime(config, engine, DeadLetters(engine))
