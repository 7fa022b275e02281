"""S3's answer for a key that does not exist: 404 only to a caller who may list the bucket.

S3 answers ``GetObject`` / ``HeadObject`` of a missing key with 404 (NoSuchKey) when the caller
has ``s3:ListBucket`` on the bucket, and with 403 (AccessDenied) otherwise, so that a caller who
may not list cannot learn which keys exist. IAM evaluates that implicit check as a
``ListBucket`` request without request parameters: a statement conditioned on ``s3:prefix``
(or ``s3:delimiter``, ``s3:max-keys``) does not apply to it. moto always answers 404.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import S3IAMRequest
from moto.s3.exceptions import MissingKey
from moto.s3.responses import S3Response

from ._patch import MotoPatch, Target


def _enforced() -> bool:
    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def _check_may_list_bucket(response: Any, bucket_name: str) -> None:
    """Raise S3's AccessDenied unless the caller of ``response`` may ListBucket ``bucket_name``."""
    if not _enforced():
        return
    # The same signer as the request (a presigned URL's too); a GetObject or HeadObject query
    # carries no prefix, delimiter or max-keys, so the check sees no s3:prefix.
    query = urlsplit(response.uri).query
    request = S3IAMRequest(
        account_id=response.current_account,
        method=response.method,
        path=response.raw_path + (f"?{query}" if query else ""),
        data={"BucketName": bucket_name},
        body=b"",
        headers=response.headers,
        action="ListBucket",
    )
    request.check_action_permitted(f"arn:aws:s3:::{bucket_name}")


def _get_key_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _get_key(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except MissingKey:
            _check_may_list_bucket(self, self.bucket_name)
            raise

    return _get_key


def _head_object_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def head_object(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        status, headers, body = original(self, bucket_name, *args, **kwargs)
        if status == 404:
            _check_may_list_bucket(self, bucket_name)
        return status, headers, body

    return head_object


def _targets() -> list[Target]:
    return [
        (S3Response, "_get_key", _get_key_factory),
        (S3Response, "head_object", _head_object_factory),
    ]


_MISSING_KEYS = MotoPatch("s3-missing-keys-need-list-bucket", _targets)


def missing_keys_need_list_bucket() -> MotoPatch:
    """GetObject / HeadObject of a missing key answer 403 unless the caller may ListBucket."""
    return _MISSING_KEYS.start()
