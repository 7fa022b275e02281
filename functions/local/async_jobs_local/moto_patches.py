"""Make moto's in-memory S3 and SQS safe under threads, as AWS is.

moto's server is threaded, but some of its request handlers are check-then-act sequences
without a lock:

* S3 ``PutObject`` with ``If-Match`` / ``If-None-Match: *`` reads the current object, compares,
  then writes. Two concurrent conditional PUTs can both pass the check, so a compare-and-swap
  loses an update and a create-only marker is written twice. The same holds for
  ``CompleteMultipartUpload`` with ``If-None-Match``, ``CopyObject`` and ``DeleteObject`` with
  ``If-Match``.
* SQS ``ReceiveMessage`` scans the queue and marks messages received without a lock, so two
  concurrent receives can deliver the same message twice or fail while moving a message to the
  dead-letter queue; ``DeleteMessage`` rebuilds the message list and can drop a message sent
  at the same moment.

A third patch concerns moto's own SQS → Lambda event source mapping: when a mapping is
enabled, moto receives and invokes the function (in Docker) inside every ``SendMessage``.
The local runtime plays the mapping itself, so ``sqs_mappings_played_locally()`` keeps moto's
queues from polling on their own (the mappings stay as deployed; only the delivery moves).

A fourth: moto evaluates S3 bucket policies but understands only ``StringEquals`` conditions and treats
any other condition as met: the module's TLS-only statement (``Deny s3:*`` when
``aws:SecureTransport`` is ``false``) then denies every request. ``bucket_policy_conditions()``
evaluates the common condition operators against the request context of the local stack,
where ``aws:SecureTransport`` is ``true`` (the SDKs use HTTPS on AWS; plain HTTP to 127.0.0.1
stands in for it). A statement whose conditions are not met does not apply, as in IAM. The
same patch keeps a failing S3 event notification from failing the S3 request (on AWS
notifications are asynchronous; moto fails e.g. DeleteObjects of a delete marker with a 500,
which makes ``terraform destroy`` of a versioned bucket with ``force_destroy`` loop forever).

A fifth one makes moto's queue attributes read back as AWS's do, which Terraform waits for:
``RedrivePolicy`` as compact JSON (moto's spaced JSON makes every plan after an apply show a
whitespace change), ``RedriveAllowPolicy`` at all (moto stores it but never returns it, so
``aws_sqs_queue_redrive_allow_policy`` waits until it times out), and the queue ``Policy``
kept when ``SetQueueAttributes`` sets other attributes (moto drops it).

A sixth one keeps a Lambda function's ``LoggingConfig`` (moto drops it), without which every
plan after an apply wants to set ``logging_config`` again.

The locking patches serialise those sections with process-wide locks. They change no behaviour
except making each call atomic. Both are idempotent and reversible::

    with atomic_conditional_writes():
        ...                        # S3 conditional writes are atomic here

    patch = atomic_queue_operations()   # started on call
    ...
    patch.stop()

Patches are reference counted: nested or repeated ``start()`` calls are fine, the original
methods come back when the last holder stops.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3 import notifications as s3_notifications
from moto.s3.models import FakeBucket, S3Backend
from moto.s3.responses import S3Response
from moto.sqs.models import Queue, SQSBackend

__all__ = [
    "MotoPatch",
    "atomic_conditional_writes",
    "atomic_queue_operations",
    "local_patches",
    "aws_shaped_queue_attributes",
    "bucket_policy_conditions",
    "lambda_logging_config",
    "sqs_mappings_played_locally",
]

log = logging.getLogger("async_jobs_local")

# One lock for every key-level write of the S3 backend: a conditional write must be atomic
# with respect to any other write of the same key, conditional or not. Reentrant because the
# response-level handlers call the (also wrapped) backend methods.
S3_WRITE_LOCK = threading.RLock()


_MISSING = object()


class MotoPatch:
    """A reference-counted set of method replacements."""

    def __init__(self, name: str, targets: Callable[[], list[tuple[Any, str, Callable[..., Any]]]]):
        # targets() -> [(owner class, attribute name, wrapper factory taking the original)]
        self.name = name
        self._targets = targets
        self._saved: list[tuple[Any, str, Any]] = []
        self._count = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._count > 0

    def start(self) -> MotoPatch:
        with self._lock:
            if self._count == 0:
                for owner, attr, factory in self._targets():
                    original = owner.__dict__.get(attr, _MISSING)
                    wrapped = factory(original)
                    self._saved.append((owner, attr, original))
                    setattr(owner, attr, wrapped)
            self._count += 1
        return self

    def stop(self) -> None:
        with self._lock:
            if self._count == 0:
                return
            self._count -= 1
            if self._count == 0:
                for owner, attr, original in reversed(self._saved):
                    if original is _MISSING:
                        delattr(owner, attr)
                    else:
                        setattr(owner, attr, original)
                self._saved.clear()

    def __enter__(self) -> MotoPatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _locked(lock: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return wrapper

    return factory


def _s3_targets() -> list[tuple[Any, str, Callable[..., Any]]]:
    locked = _locked(S3_WRITE_LOCK)
    return [
        # request level: the precondition checks live here
        (S3Response, "put_object", locked),
        (S3Response, "copy_object", locked),
        (S3Response, "delete_object", locked),
        (S3Response, "_key_response_post", locked),  # CompleteMultipartUpload (If-None-Match)
        # backend level: every other path that writes a key (presigned POST, batch delete, ...)
        (S3Backend, "put_object", locked),
        (S3Backend, "copy_object", locked),
        (S3Backend, "delete_object", locked),
        (S3Backend, "complete_multipart_upload", locked),
    ]


def _queue_lock(queue: Any) -> Any:
    # moto's own Condition around Queue._messages (an RLock underneath): add_message already
    # takes it, so holding it makes receive/delete/visibility changes atomic with sends.
    return queue._messages_lock


def _receive_factory(original: Callable[..., Any]) -> Callable[..., Any]:
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


def _sqs_targets() -> list[tuple[Any, str, Callable[..., Any]]]:
    return [
        (SQSBackend, "receive_message", _receive_factory),
        (SQSBackend, "change_message_visibility", _backend_queue_method_factory),
        (Queue, "delete_message", _queue_method_factory),
    ]


class _LocallyPlayedMappings(dict[str, Any]):
    """A queue's event source mappings, which moto's add_message must not poll while patched."""

    def items(self) -> Any:
        if _ESM_PATCH.active:
            return []
        return super().items()


def _add_message_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def add_message(self: Any, message: Any) -> Any:
        mappings = self.lambda_event_source_mappings
        if not isinstance(mappings, _LocallyPlayedMappings):
            self.lambda_event_source_mappings = _LocallyPlayedMappings(mappings)
        return original(self, message)

    return add_message


def _esm_targets() -> list[tuple[Any, str, Callable[..., Any]]]:
    return [(Queue, "add_message", _add_message_factory)]


def _compact_json(value: Any) -> Any:
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value
    return json.dumps(parsed, separators=(",", ":")) if isinstance(parsed, dict) else value


def _queue_attributes_factory(original: Any) -> Any:
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
    @functools.wraps(original)
    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        # moto clears the queue policy on any SetQueueAttributes without Policy; AWS keeps it.
        keep_policy = "Policy" not in attributes
        policy = getattr(self, "policy", None)
        original(self, attributes, now)
        if keep_policy:
            self.policy = policy

    return _set_attributes


def _queue_attribute_targets() -> list[tuple[Any, str, Callable[..., Any]]]:
    return [
        (Queue, "BASE_ATTRIBUTES", lambda names: [*names, "RedriveAllowPolicy"]),
        (Queue, "redrive_allow_policy", lambda _missing: None),  # default for queues without one
        (Queue, "attributes", _queue_attributes_factory),
        (Queue, "_set_attributes", _set_queue_attributes_factory),
    ]


# The request context the local stack evaluates bucket policy conditions against.
LOCAL_REQUEST_CONTEXT = {"aws:securetransport": "true"}


def _condition_met(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    expected_values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists").split(":")[-1]  # ForAnyValue:StringLike -> StringLike
    actual = context.get(key.lower())
    if operator == "Null":
        return (actual is None) == (expected_values[0].lower() == "true")
    if actual is None:
        return if_exists
    negated = "Not" in operator
    base = operator.replace("Not", "")
    if base == "Bool":
        matched = actual.lower() in (v.lower() for v in expected_values)
    elif base in ("StringEquals", "ArnEquals"):
        matched = actual in expected_values
    elif base == "StringEqualsIgnoreCase":
        matched = actual.lower() in (v.lower() for v in expected_values)
    elif base in ("StringLike", "ArnLike"):
        matched = any(fnmatch.fnmatchcase(actual, v) for v in expected_values)
    else:
        return False  # an operator not evaluated locally: the statement does not apply
    return matched != negated


def _statement_applies(statement: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, expected in conditions.items():
            if not _condition_met(operator, key, expected, context):
                return False
    return True


def _bucket_permission_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    del original

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy)
        statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
        permitted = False
        for statement in statements:
            if not _statement_applies(statement, LOCAL_REQUEST_CONTEXT):
                continue
            unconditional = {k: v for k, v in statement.items() if k != "Condition"}
            result = IAMPolicyStatement(unconditional).is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return result
            permitted = permitted or result == PermissionResult.PERMITTED
        return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL

    return get_permission


def _notification_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send_event(*args: Any, **kwargs: Any) -> None:
        # On AWS event notifications are delivered asynchronously: a notification that cannot be
        # built or delivered never fails the S3 request that caused it. (moto raises, e.g. when
        # the last version removed is a delete marker, and the request fails with a 500.)
        try:
            original(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            log.debug("S3 event notification not sent: %r", exc)

    return send_event


def _bucket_policy_targets() -> list[tuple[Any, str, Callable[..., Any]]]:
    return [
        (FakeBucket, "get_permission", _bucket_permission_factory),
        (s3_notifications, "send_event", _notification_factory),
    ]


def _lambda_init_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:  # noqa: N807
        original(self, account_id, spec, *args, **kwargs)
        self.local_logging_config = spec.get("LoggingConfig")

    return __init__


def _lambda_update_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_configuration(self: Any, config_updates: dict[str, Any]) -> Any:
        if "LoggingConfig" in config_updates:
            self.local_logging_config = config_updates["LoggingConfig"]
        return original(self, config_updates)

    return update_configuration


def _lambda_configuration_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = original(self, *args, **kwargs)
        logging_config = dict(getattr(self, "local_logging_config", None) or {"LogFormat": "Text"})
        logging_config.setdefault("LogGroup", f"/aws/lambda/{self.function_name}")
        if logging_config.get("LogFormat") == "JSON":
            logging_config.setdefault("ApplicationLogLevel", "INFO")
            logging_config.setdefault("SystemLogLevel", "INFO")
        config["LoggingConfig"] = logging_config
        return config

    return get_configuration


def _lambda_targets() -> list[tuple[Any, str, Callable[..., Any]]]:
    return [
        (LambdaFunction, "__init__", _lambda_init_factory),
        (LambdaFunction, "update_configuration", _lambda_update_factory),
        (LambdaFunction, "get_configuration", _lambda_configuration_factory),
    ]


_S3_PATCH = MotoPatch("s3-atomic-conditional-writes", _s3_targets)
_SQS_PATCH = MotoPatch("sqs-atomic-queue-operations", _sqs_targets)
_ESM_PATCH = MotoPatch("sqs-mappings-played-locally", _esm_targets)
_BUCKET_POLICY_PATCH = MotoPatch("s3-bucket-policy-conditions", _bucket_policy_targets)
_LAMBDA_PATCH = MotoPatch("lambda-logging-config", _lambda_targets)
_QUEUE_ATTRIBUTES_PATCH = MotoPatch("sqs-aws-shaped-queue-attributes", _queue_attribute_targets)


def atomic_conditional_writes() -> MotoPatch:
    """Make S3 conditional writes (If-Match, If-None-Match: *) atomic, as on AWS.

    Started on call; use as a context manager or call ``.stop()`` to undo.
    """
    return _S3_PATCH.start()


def atomic_queue_operations() -> MotoPatch:
    """Make SQS receive / delete / change-visibility atomic with respect to each other and sends."""
    return _SQS_PATCH.start()


def sqs_mappings_played_locally() -> MotoPatch:
    """Keep moto from delivering SQS messages to Lambda itself (the local runtime does)."""
    return _ESM_PATCH.start()


def aws_shaped_queue_attributes() -> MotoPatch:
    """Queue attributes read back as on AWS (RedrivePolicy, RedriveAllowPolicy, Policy kept)."""
    return _QUEUE_ATTRIBUTES_PATCH.start()


def bucket_policy_conditions() -> MotoPatch:
    """Bucket policies honour their conditions (aws:SecureTransport is true locally)."""
    return _BUCKET_POLICY_PATCH.start()


def lambda_logging_config() -> MotoPatch:
    """Lambda functions keep and return their LoggingConfig, as on AWS."""
    return _LAMBDA_PATCH.start()


def load_aws_managed_policies() -> None:
    """AWS managed IAM policies (e.g. AmazonAPIGatewayPushToCloudWatchLogs) exist in every account.

    moto loads them when an account's IAM backend is created, if asked to; a backend created
    earlier in this process (by another moto server, say) is re-created so that it has them.
    """
    from moto.iam.models import iam_backends  # noqa: PLC0415  (moto imports are heavy)

    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    for account_backends in list(iam_backends.values()):
        for backend in list(account_backends.values()):
            if not backend.aws_managed_policies:
                backend.reset()


@contextmanager
def local_patches() -> Iterator[None]:
    """Every patch the local runtime needs, for the lifetime of the block."""
    with (
        atomic_conditional_writes(),
        atomic_queue_operations(),
        sqs_mappings_played_locally(),
        aws_shaped_queue_attributes(),
        bucket_policy_conditions(),
        lambda_logging_config(),
    ):
        yield
