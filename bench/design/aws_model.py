"""S3, SQS and EventBridge as the handlers see them, with a latency per call and a request log.

S3: versioned objects; `If-None-Match: *` and `If-Match: <etag>` evaluated when the write
commits (at the end of its latency), 412 PreconditionFailed when the condition no longer holds
and 409 ConditionalRequestConflict when a conditional write to the same key committed while
this one was in flight; ranged and version- or ETag-pinned reads; 404 NoSuchKey. Every call
sleeps the injected latency outside the model's lock, so concurrent calls overlap as they do
against AWS. SQS: queues a driver consumes (the event source mapping lives in `harness`).
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import io
import itertools
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from botocore.response import StreamingBody


class Killed(BaseException):  # noqa: N818 - a BaseException, as Lambda's kill is no error the code sees
    """The invocation was killed (timeout, out of memory) in the middle of an AWS call."""


def _error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@dataclass
class Requests:
    """Every request the handlers sent, by `service.Operation` and answer, thread-safe."""

    counts: Counter[str] = field(default_factory=Counter)
    sqs_units: int = 0  # SQS requests in 64 KB billing units
    events: int = 0  # EventBridge entries (billed per 64 KB event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, units: int = 1) -> None:
        with self.lock:
            self.counts[name] += 1
            if name.startswith("sqs."):
                self.sqs_units += units

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


class Faults:
    """Kills injected into AWS calls: a thread's invocation dies at its n-th call."""

    def __init__(self) -> None:
        self._local = threading.local()

    def arm(self, at_call: int | None) -> None:
        self._local.left = at_call

    def check(self) -> None:
        left = getattr(self._local, "left", None)
        if left is None:
            return
        if left <= 0:
            self._local.left = None
            raise Killed
        self._local.left = left - 1


@dataclass
class _Object:
    body: bytes
    etag: str
    version: str
    modified: datetime
    content_type: str


class S3Model:
    def __init__(self, latency: float, requests: Requests, faults: Faults) -> None:
        self.latency = latency
        self.requests = requests
        self.faults = faults
        self.lock = threading.Lock()
        self.objects: dict[str, _Object] = {}
        self.commits: dict[str, int] = {}  # key -> commit sequence number
        self._sequence = itertools.count(1)
        self._versions = itertools.count(1)
        self.on_write: Any = None  # called with the key after each committed write

    def _call(self, name: str) -> None:
        self.faults.check()
        time.sleep(self.latency)

    # -- objects (the model's own access, no latency, no log) --------------------------------
    def body(self, key: str) -> bytes | None:
        with self.lock:
            found = self.objects.get(key)
            return found.body if found else None

    def keys(self, prefix: str) -> list[str]:
        with self.lock:
            return sorted(k for k in self.objects if k.startswith(prefix))

    # -- the client ------------------------------------------------------------------------
    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        ContentType: str = "",
        IfNoneMatch: str | None = None,
        IfMatch: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            started = next(self._sequence)
        conditional = IfNoneMatch is not None or IfMatch is not None
        self._call("PutObject")
        with self.lock:
            current = self.objects.get(Key)
            failed = (IfNoneMatch == "*" and current is not None) or (
                IfMatch is not None and (current is None or current.etag != IfMatch)
            )
            if failed:
                overlapped = self.commits.get(Key, 0) > started
                code, status = (
                    ("ConditionalRequestConflict", 409)
                    if overlapped and conditional
                    else ("PreconditionFailed", 412)
                )
                self.requests.add(f"s3.PutObject!{status}")
                raise _error(code, status, "PutObject")
            data = bytes(Body)
            etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
            version = str(next(self._versions))
            self.objects[Key] = _Object(data, etag, version, datetime.now(UTC), ContentType)
            self.commits[Key] = next(self._sequence)
            self.requests.add("s3.PutObject")
        if self.on_write is not None:
            self.on_write(Key)
        return {"ETag": etag, "VersionId": version}

    def get_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Range: str | None = None,
        VersionId: str | None = None,
        IfMatch: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:  # noqa: N803
        self._call("GetObject")
        with self.lock:
            current = self.objects.get(Key)
        if current is None or (VersionId is not None and current.version != VersionId):
            self.requests.add("s3.GetObject!404")
            raise _error("NoSuchKey", 404, "GetObject")
        if IfMatch is not None and current.etag != IfMatch:
            self.requests.add("s3.GetObject!412")
            raise _error("PreconditionFailed", 412, "GetObject")
        data = current.body
        if Range is not None:
            first, _dash, last = Range.removeprefix("bytes=").partition("-")
            if int(first) >= len(data):
                self.requests.add("s3.GetObject!416")
                raise _error("InvalidRange", 416, "GetObject")
            data = data[int(first) : int(last) + 1]
        self.requests.add("s3.GetObject")
        return {
            "Body": StreamingBody(io.BytesIO(data), len(data)),
            "ETag": current.etag,
            "VersionId": current.version,
            "ContentLength": len(data),
            "LastModified": current.modified,
        }

    def head_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        self._call("HeadObject")
        with self.lock:
            current = self.objects.get(Key)
        if current is None:
            self.requests.add("s3.HeadObject!404")
            raise _error("404", 404, "HeadObject")
        self.requests.add("s3.HeadObject")
        return {"ETag": current.etag, "VersionId": current.version, "LastModified": current.modified}

    def delete_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        self._call("DeleteObject")
        with self.lock:
            self.objects.pop(Key, None)
        self.requests.add("s3.DeleteObject")
        return {}

    def generate_presigned_url(self, method: str, Params: dict[str, Any], ExpiresIn: int) -> str:  # noqa: N803
        return f"https://model.invalid/{Params['Key']}?method={method}"  # signed locally: no request


@dataclass
class Message:
    id: str
    body: str
    visible_at: float
    receives: int = 0


class Queue:
    """One SQS queue; `harness.EventSourceMapping` receives from it without polling."""

    def __init__(self, url: str, arn: str) -> None:
        self.url, self.arn = url, arn
        # visible messages in the order they became visible, and the others by when they will
        self.ready: collections.deque[Message] = collections.deque()
        self.later: list[tuple[float, int, Message]] = []
        self.in_flight: dict[str, Message] = {}
        self.condition = threading.Condition()
        self._ids = itertools.count(1)

    def put(self, body: str, delay: float = 0.0) -> None:
        with self.condition:
            self.add(Message(f"m-{next(self._ids)}", body, time.monotonic() + delay))
            self.condition.notify()

    def add(self, message: Message) -> None:
        """(Holding the condition.) Queue a message, visible now or at its `visible_at`."""
        if message.visible_at <= time.monotonic():
            self.ready.append(message)
        else:
            heapq.heappush(self.later, (message.visible_at, next(self._ids), message))

    def due(self, now: float) -> float | None:
        """(Holding the condition.) Move the messages due by `now` to `ready`; seconds until the
        next one is due, or None."""
        while self.later and self.later[0][0] <= now:
            self.ready.append(heapq.heappop(self.later)[2])
        return self.later[0][0] - now if self.later else None

    def depth(self) -> int:
        with self.condition:
            return len(self.ready) + len(self.later) + len(self.in_flight)


class SQSModel:
    def __init__(self, latency: float, requests: Requests, faults: Faults, queues: dict[str, Queue]) -> None:
        self.latency = latency
        self.requests = requests
        self.faults = faults
        self.queues = queues

    def _units(self, *bodies: str) -> int:
        size = sum(len(body.encode()) for body in bodies)
        return max(1, -(-size // 65536))

    def send_message(
        self, *, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0, **_: Any
    ) -> dict[str, Any]:  # noqa: N803
        self.faults.check()
        time.sleep(self.latency)
        self.queues[QueueUrl].put(MessageBody, float(DelaySeconds))
        self.requests.add("sqs.SendMessage", self._units(MessageBody))
        return {"MessageId": "sent"}

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.faults.check()
        time.sleep(self.latency)
        for entry in Entries:
            self.queues[QueueUrl].put(entry["MessageBody"], float(entry.get("DelaySeconds", 0)))
        self.requests.add("sqs.SendMessageBatch", self._units(*(e["MessageBody"] for e in Entries)))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class EventsModel:
    def __init__(self, latency: float, requests: Requests, faults: Faults) -> None:
        self.latency = latency
        self.requests = requests
        self.faults = faults
        self.published: list[dict[str, Any]] = []

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.faults.check()
        time.sleep(self.latency)
        self.published.extend(Entries)
        self.requests.add("events.PutEvents")
        with self.requests.lock:
            self.requests.events += len(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i, _ in enumerate(Entries)]}


def loads(data: bytes | None) -> Any:
    return None if data is None else json.loads(data)
