"""Cold-start wiring of the API functions (submit, status): config, store, queue, services."""

from __future__ import annotations

from dataclasses import dataclass

from async_jobs.config import StatusConfig, SubmitConfig
from async_jobs.listing import ListingService
from async_jobs.messaging import JobQueue
from async_jobs.notify import Notifier
from async_jobs.retries import RetryService
from async_jobs.service import JobViews, StatusService, SubmitService
from async_jobs.store import JobStore
from async_jobs.wiring.aws import client


@dataclass(frozen=True)
class SubmitRuntime:
    config: SubmitConfig
    service: SubmitService
    retries: RetryService


@dataclass(frozen=True)
class StatusRuntime:
    config: StatusConfig
    service: StatusService
    listing: ListingService


def submit_runtime() -> SubmitRuntime:
    config = SubmitConfig.from_env()
    store = JobStore(client("s3"), config.state_bucket)
    queue = JobQueue(client("sqs"), config.queue_url, fifo=config.queue_fifo)
    # a cancel can end a job here: its notifications are queued for the worker to publish
    Notifier(store, queue, events_enabled=config.notify.events_enabled).attach()
    views = JobViews(store, retry_after_seconds=config.retry_after_seconds)
    service = SubmitService(
        store,
        queue,
        views,
        authorization=config.authorization,
        max_records_per_job=config.max_records_per_job,
        max_body_bytes=config.max_body_bytes,
        upload_url_ttl_seconds=config.upload_url_ttl_seconds,
        max_upload_bytes=config.max_upload_bytes,
        callback_hosts=config.notify.callback_allowed_hosts,
    )
    retries = RetryService(store, queue, views, authorization=config.authorization)
    return SubmitRuntime(config, service, retries)


def status_runtime() -> StatusRuntime:
    config = StatusConfig.from_env()
    store = JobStore(client("s3"), config.state_bucket)
    views = JobViews(
        store,
        retry_after_seconds=config.retry_after_seconds,
        errors_url_ttl_seconds=config.errors_url_ttl_seconds,
    )
    return StatusRuntime(
        config, StatusService(views, config.authorization), ListingService(views, config.authorization)
    )
