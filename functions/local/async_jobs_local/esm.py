"""The SQS event source mapping of the worker, played locally.

Like Lambda's pollers: ``maximum_concurrency`` pollers each receive up to ``batch_size``
messages (waiting up to ``maximum_batching_window_in_seconds`` to fill a batch), invoke the
function with an ``aws:sqs`` event, and delete the messages that succeeded. With
``ReportBatchItemFailures`` only the ids in ``batchItemFailures`` stay; without it, or when the
invocation fails or times out, the whole batch stays. Messages that stay are not touched: they
reappear after the queue's visibility timeout, and moto moves a message to the dead-letter queue
once it has been received ``maxReceiveCount`` times (on the receive after that), as SQS does.

The module's second mapping, the dead-letter queue to the same worker (dead-letter accounting),
is played the same way from the ``worker_dead_letter_event_source_mapping`` output
(`dead_letter_source`), as a companion started and stopped with the main mapping.
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .faults import Faults, sleep_then
from .sandbox import FunctionThrottled, FunctionTimeout, InvocationError

log = logging.getLogger("async_jobs_local")

MAX_RECEIVE = 10  # SQS ReceiveMessage limit per call
IDLE_WAIT_SECONDS = 1  # long poll per empty receive: short, so stop() is prompt


@dataclass
class MappingStats:
    invocations: int = 0
    messages: int = 0
    deleted: int = 0
    failed_messages: int = 0
    failed_invocations: int = 0
    timeouts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = dict(message.get("Attributes") or {})
    message_attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        message_attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
        if message_attributes[name]["binaryValue"] is not None:
            message_attributes[name]["binaryValue"] = base64.b64encode(
                message_attributes[name]["binaryValue"]
            ).decode("ascii")
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class SqsEventSource:
    """Pollers feeding one queue to one function."""

    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        function_name: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        batch_size: int = 10,
        batching_window: float = 0,
        maximum_concurrency: int = 2,
        report_batch_item_failures: bool = True,
        region: str = "us-east-1",
        faults: Faults | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function_name = function_name
        self._invoke = invoke
        self.batch_size = max(1, int(batch_size))
        self.batching_window = max(0.0, float(batching_window or 0))
        self.maximum_concurrency = max(1, int(maximum_concurrency))
        self.report_batch_item_failures = report_batch_item_failures
        self.region = region
        self.faults = faults  # duplicate and out-of-order delivery at the plan's rates (faults.py)
        self.stats = MappingStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # mappings of other queues to the same function, started and stopped with this one
        self.companions: list[SqsEventSource] = []

    def start(self) -> None:
        for companion in self.companions:
            companion.start()
        self._stop.clear()
        for index in range(self.maximum_concurrency):
            thread = threading.Thread(target=self._poll, name=f"esm-poller-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop receiving; invocations in flight finish (their sandboxes may be closed under them)."""
        self._stop.set()
        for companion in self.companions:
            companion._stop.set()
        deadline = time.monotonic() + timeout
        for thread in [*self._threads, *(t for c in self.companions for t in c._threads)]:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._threads.clear()
        for companion in self.companions:
            companion._threads.clear()

    # ------------------------------------------------------------------ polling

    def _receive(self, count: int, wait: float) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(MAX_RECEIVE, count)),
            WaitTimeSeconds=max(0, min(20, math.ceil(wait))),
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages") or [])

    def _gather(self) -> list[dict[str, Any]]:
        batch = self._receive(self.batch_size, IDLE_WAIT_SECONDS)
        if not batch:
            return batch
        deadline = time.monotonic() + self.batching_window
        while len(batch) < self.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if self.batching_window > 0 and remaining > 0:
                more = self._receive(self.batch_size - len(batch), remaining)
            else:
                # no window: take what is there right now, without waiting
                more = self._receive(self.batch_size - len(batch), 0)
                if not more:
                    break
            batch += more
            if self.batching_window <= 0 and len(more) < MAX_RECEIVE:
                break
        return batch

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._gather()
            except Exception as exc:  # noqa: BLE001 - the mapping keeps polling, as Lambda's does
                if self._stop.is_set():
                    return
                log.warning("event source mapping: receive failed: %s", exc)
                time.sleep(1)
                continue
            if batch:
                try:
                    self._process(batch)
                except Exception:  # noqa: BLE001 - a poller outlives any one batch, as Lambda's does
                    # the batch was not deleted: it comes back after the visibility timeout
                    log.exception("event source mapping: a batch of %d could not be processed", len(batch))

    def _process(self, batch: list[dict[str, Any]]) -> None:
        if self.faults is not None:
            batch = self._disorder(batch)
            if not batch:
                return
        event = {"Records": [_record(message, self.queue_arn, self.region) for message in batch]}
        ids = [message["MessageId"] for message in batch]
        failed: set[str]
        self.stats.add(invocations=1, messages=len(batch))
        outcome = "record_failed"
        try:
            result = self._invoke(self.function_name, event)
        except FunctionTimeout as exc:
            log.warning("worker timed out on a batch of %d: %s", len(batch), exc)
            self.stats.add(timeouts=1, failed_invocations=1)
            failed, outcome = set(ids), "timeout"
        except FunctionThrottled as exc:
            log.warning("worker throttled on a batch of %d: %s", len(batch), exc)
            self.stats.add(failed_invocations=1)
            failed, outcome = set(ids), "throttled"
        except InvocationError as exc:
            log.warning("worker failed on a batch of %d: %s", len(batch), exc)
            self.stats.add(failed_invocations=1)
            failed, outcome = set(ids), "invocation_error"
        else:
            failed = self._failures(result, ids)
        if self.faults is not None and failed:
            self.faults.note(outcome, [message for message in batch if message["MessageId"] in failed])
        done = [message for message in batch if message["MessageId"] not in failed]
        self._delete(done)
        self.stats.add(deleted=len(done), failed_messages=len(failed))
        if failed:
            log.info(
                "%d of %d messages failed; they return after the visibility timeout", len(failed), len(ids)
            )

    def _disorder(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Injected faults: messages handed back for a moment, a shuffled batch, second deliveries."""
        assert self.faults is not None
        held = self.faults.held_back(batch)
        for message, seconds in held:
            # The message returns after ``seconds``, behind messages sent after it.
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=seconds
                )
            except Exception as exc:  # noqa: BLE001 - then it returns after the visibility timeout
                log.warning("event source mapping: could not hand a message back: %s", exc)
        held_ids = {message["MessageId"] for message, _ in held}
        batch = self.faults.reorder([message for message in batch if message["MessageId"] not in held_ids])
        for message, delay in self.faults.duplicates(batch):
            # A second receive of the same message, concurrent with the first: its outcome is
            # the first delivery's business (one delete removes the message).
            event = {"Records": [_record(message, self.queue_arn, self.region)]}
            sleep_then(delay, functools.partial(self._invoke_ignoring, event))
        return batch

    def _invoke_ignoring(self, event: dict[str, Any]) -> None:
        self.stats.add(invocations=1, messages=len(event["Records"]))
        try:
            self._invoke(self.function_name, event)
        except InvocationError as exc:
            log.info("duplicate delivery failed: %s", exc)

    def _failures(self, result: Any, ids: list[str]) -> set[str]:
        if not self.report_batch_item_failures:
            return set()
        if result is None or (isinstance(result, dict) and not result.get("batchItemFailures")):
            return set()
        items = result.get("batchItemFailures") if isinstance(result, dict) else None
        if not isinstance(items, list):
            log.warning("worker returned an invalid partial batch response; the whole batch failed")
            return set(ids)
        failed = set()
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in ids:
                # Lambda treats a malformed or unknown itemIdentifier as a failure of the whole batch
                log.warning(
                    "worker reported an unknown itemIdentifier %r; the whole batch failed", identifier
                )
                return set(ids)
            failed.add(identifier)
        return failed

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), MAX_RECEIVE):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages[start : start + MAX_RECEIVE])
            ]
            try:
                response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - not deleted = delivered again, never lost
                log.warning("event source mapping: delete failed: %s", exc)
                continue
            for failure in response.get("Failed") or []:
                log.warning("event source mapping: delete failed: %s", failure)


def dead_letter_source(
    outputs: dict[str, Any],
    *,
    sqs: Any,
    function_name: str,
    invoke: Callable[[str, dict[str, Any]], Any],
    region: str,
) -> SqsEventSource | None:
    """The DLQ's mapping to the worker, as the Terraform outputs declare it (None when the module
    turns dead-letter accounting off, or the mapping is disabled and not played locally)."""
    mapping = outputs.get("worker_dead_letter_event_source_mapping")
    queue_url, queue_arn = outputs.get("dlq_url"), outputs.get("dlq_arn")
    if not mapping or not queue_url or not queue_arn:
        return None
    return SqsEventSource(
        sqs=sqs,
        queue_url=str(queue_url),
        queue_arn=str(queue_arn),
        function_name=function_name,
        invoke=invoke,
        batch_size=int(mapping.get("batch_size") or 10),
        batching_window=float(mapping.get("maximum_batching_window_in_seconds") or 0),
        maximum_concurrency=int(mapping.get("maximum_concurrency") or 2),
        report_batch_item_failures="ReportBatchItemFailures"
        in (mapping.get("function_response_types") or []),
        region=region,
    )
