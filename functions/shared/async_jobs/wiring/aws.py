"""AWS clients for the wiring: one retry and signing configuration for every function."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Standard retries ride out throttling; SigV4 everywhere so presigned URLs work in every region.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, signature_version="s3v4")


def client(service: str) -> Any:
    return boto3.client(service, config=_CLIENT_CONFIG)
