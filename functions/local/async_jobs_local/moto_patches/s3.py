"""moto's S3, made to behave as S3 does where the engine depends on it."""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3 import notifications as s3_notifications
from moto.s3.models import FakeBucket, S3Backend
from moto.s3.responses import S3Response

from ._patch import MotoPatch, Target, locked
from .conditions import BASE_CONTEXT, statement_applies

log = logging.getLogger("async_jobs_local")

# One lock for every key-level write of the S3 backend: a conditional write must be atomic
# with respect to any other write of the same key, conditional or not. Reentrant because the
# response-level handlers call the (also wrapped) backend methods.
S3_WRITE_LOCK = threading.RLock()


def _atomic_write_targets() -> list[Target]:
    # Why: S3 PutObject with If-Match / If-None-Match: * is atomic on AWS; moto reads the current
    # object, compares, then writes, without a lock. Two concurrent conditional PUTs can both
    # pass, so a compare-and-swap loses an update and a create-only marker is written twice.
    # The same holds for CompleteMultipartUpload with If-None-Match, CopyObject and DeleteObject
    # with If-Match.
    lock = locked(S3_WRITE_LOCK)
    return [
        # request level: the precondition checks live here
        (S3Response, "put_object", lock),
        (S3Response, "copy_object", lock),
        (S3Response, "delete_object", lock),
        (S3Response, "_key_response_post", lock),  # CompleteMultipartUpload (If-None-Match)
        # backend level: every other path that writes a key (presigned POST, batch delete, ...)
        (S3Backend, "put_object", lock),
        (S3Backend, "copy_object", lock),
        (S3Backend, "delete_object", lock),
        (S3Backend, "complete_multipart_upload", lock),
    ]


def _bucket_permission_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: moto evaluates bucket policies but understands only StringEquals conditions and treats
    # any other condition as met: the module's TLS-only statement (Deny s3:* when
    # aws:SecureTransport is false) then denies every request. Conditions are evaluated against
    # the local request context (aws:SecureTransport true); a statement whose conditions are not
    # met does not apply, as in IAM.
    del original

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy)
        statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
        permitted = False
        for statement in statements:
            if not statement_applies(statement, BASE_CONTEXT):
                continue
            unconditional = {k: v for k, v in statement.items() if k != "Condition"}
            result = IAMPolicyStatement(unconditional).is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return result
            permitted = permitted or result == PermissionResult.PERMITTED
        return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL

    return get_permission


def _notification_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    # Why: on AWS event notifications are delivered asynchronously: a notification that cannot be
    # built or delivered never fails the S3 request that caused it. moto raises (e.g. when the last
    # version removed is a delete marker) and the request fails with a 500, which makes
    # `terraform destroy` of a versioned bucket with force_destroy loop forever.
    @functools.wraps(original)
    def send_event(*args: Any, **kwargs: Any) -> None:
        try:
            original(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            log.debug("S3 event notification not sent: %r", exc)

    return send_event


def _bucket_policy_targets() -> list[Target]:
    return [
        (FakeBucket, "get_permission", _bucket_permission_factory),
        (s3_notifications, "send_event", _notification_factory),
    ]


_ATOMIC_WRITES = MotoPatch("s3-atomic-conditional-writes", _atomic_write_targets)
_BUCKET_POLICY = MotoPatch("s3-bucket-policy-conditions", _bucket_policy_targets)


def atomic_conditional_writes() -> MotoPatch:
    """Make S3 conditional writes (If-Match, If-None-Match: *) atomic, as on AWS.

    Started on call; use as a context manager or call ``.stop()`` to undo.
    """
    return _ATOMIC_WRITES.start()


def bucket_policy_conditions() -> MotoPatch:
    """Bucket policies honour their conditions; notifications never fail the request."""
    return _BUCKET_POLICY.start()
