"""The caller's name where it is stored or sent: the job index's scope, the queue's message group.

Its own module: the worker names message groups by it and must not ship the API's identity code.
"""

from __future__ import annotations

import hashlib


def owner_digest(owner: str) -> str:
    """The caller as a fixed-length name that reveals nothing of the identity: sha256 hex."""
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()
