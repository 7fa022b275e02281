"""moto's SQS, made to behave as SQS does where the engine and Terraform depend on it."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from moto.sqs.models import Queue, SQSBackend

from ._patch import MotoPatch, Target


def _queue_lock(queue: Any) -> Any:
    # moto's own Condition around Queue._messages (an RLock underneath): add_message already
    # takes it, so holding it makes receive/delete/visibility changes atomic with sends.
    return queue._messages_lock


def _receive_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: moto's ReceiveMessage scans the queue and marks messages received without a lock, so
    # two concurrent receives can deliver the same message twice or fail while moving a message
    # to the dead-letter queue.
    @functools.wraps(original)
    def receive_message(  # noqa: PLR0917 - moto calls it with positional arguments
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        # The scan runs under the queue lock without waiting; the long-poll wait happens outside
        # it, so one waiting receiver never blocks senders or other receivers.
        queue = self.get_queue(queue_name)
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _queue_lock(queue):
                result = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            started = time.monotonic()
            queue.wait_for_messages(min(1.0, remaining))
            if time.monotonic() - started < 0.01:
                # visible but undeliverable messages (FIFO group in flight): do not spin
                time.sleep(min(0.05, max(remaining, 0)))

    return receive_message


def _queue_method_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: DeleteMessage rebuilds the message list and can drop a message sent at the same moment.
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _queue_lock(self):
            return original(self, *args, **kwargs)

    return wrapper


def _backend_queue_method_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with _queue_lock(self.get_queue(queue_name)):
            return original(self, queue_name, *args, **kwargs)

    return wrapper


def _atomic_targets() -> list[Target]:
    return [
        (SQSBackend, "receive_message", _receive_factory),
        (SQSBackend, "change_message_visibility", _backend_queue_method_factory),
        (Queue, "delete_message", _queue_method_factory),
    ]


class _LocallyPlayedMappings(dict[str, Any]):
    """A queue's event source mappings, which moto's add_message must not poll while patched."""

    def items(self) -> Any:
        if _MAPPINGS_PLAYED_LOCALLY.active:
            return []
        return super().items()


def _add_message_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: when a mapping is enabled, moto receives and invokes the function (in Docker) inside
    # every SendMessage. The local runtime plays the mapping itself (with the function's role),
    # so the mappings stay as deployed and only the delivery moves.
    @functools.wraps(original)
    def add_message(self: Any, message: Any) -> Any:
        mappings = self.lambda_event_source_mappings
        if not isinstance(mappings, _LocallyPlayedMappings):
            self.lambda_event_source_mappings = _LocallyPlayedMappings(mappings)
        return original(self, message)

    return add_message


def _mapping_targets() -> list[Target]:
    return [(Queue, "add_message", _add_message_factory)]


def _compact_json(value: Any) -> Any:
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value
    return json.dumps(parsed, separators=(",", ":")) if isinstance(parsed, dict) else value


def _queue_attributes_factory(original: Any) -> Any:
    # Why: Terraform waits for attributes to read back as AWS returns them. moto returns
    # RedrivePolicy as spaced JSON (every plan after an apply shows a whitespace change) and never
    # returns RedriveAllowPolicy (aws_sqs_queue_redrive_allow_policy waits until it times out).
    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = original.fget(self)
        if self.redrive_policy and "RedrivePolicy" in result:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        redrive_allow = result.pop("RedriveAllowPolicy", None)
        if redrive_allow:
            result["RedriveAllowPolicy"] = _compact_json(redrive_allow)
        return result

    return property(attributes)


def _set_queue_attributes_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: moto clears the queue policy on any SetQueueAttributes without Policy; AWS keeps it.
    @functools.wraps(original)
    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        keep_policy = "Policy" not in attributes
        policy = getattr(self, "policy", None)
        original(self, attributes, now)
        if keep_policy:
            self.policy = policy

    return _set_attributes


def _queue_attribute_targets() -> list[Target]:
    return [
        (Queue, "BASE_ATTRIBUTES", lambda names: [*names, "RedriveAllowPolicy"]),
        (Queue, "redrive_allow_policy", lambda _missing: None),  # default for queues without one
        (Queue, "attributes", _queue_attributes_factory),
        (Queue, "_set_attributes", _set_queue_attributes_factory),
    ]


_ATOMIC = MotoPatch("sqs-atomic-queue-operations", _atomic_targets)
_MAPPINGS_PLAYED_LOCALLY = MotoPatch("sqs-mappings-played-locally", _mapping_targets)
_QUEUE_ATTRIBUTES = MotoPatch("sqs-aws-shaped-queue-attributes", _queue_attribute_targets)


def atomic_queue_operations() -> MotoPatch:
    """Make SQS receive / delete / change-visibility atomic with respect to each other and sends."""
    return _ATOMIC.start()


def sqs_mappings_played_locally() -> MotoPatch:
    """Keep moto from delivering SQS messages to Lambda itself (the local runtime does)."""
    return _MAPPINGS_PLAYED_LOCALLY.start()


def aws_shaped_queue_attributes() -> MotoPatch:
    """Queue attributes read back as on AWS (RedrivePolicy, RedriveAllowPolicy, Policy kept)."""
    return _QUEUE_ATTRIBUTES.start()
