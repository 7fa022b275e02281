"""The queue's message catalogue: one class per kind, each with its parsing, its handling, what
its last receive records and what its dead-lettering records, found in one registry.

`parse` turns a message body into one of these (or `Ignored` for S3 test events and other
objects' notifications; BadMessage for anything else); the engine and the dead-letter handler
call the message's own methods, so no caller switches on a kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from async_jobs import model
from async_jobs.chunks import BadMessage, ChunkRef
from async_jobs.expiry import ExpireRef
from async_jobs.notify import NotifyRef
from async_jobs.uploads import Upload, uploads_in

if TYPE_CHECKING:
    from async_jobs.engine import Engine


class DispatchNotRecorded(Exception):
    """The split sent every chunk message but could not record it; the chunks end the job."""


class Message:
    """A parsed queue message. Subclasses set `kind` and override what differs."""

    kind: ClassVar[str]
    job_id: str | None = None
    chunk: int | None = None  # for logs

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Message | None:
        """This kind's message, None when the body is not of this kind, BadMessage when it is
        but is malformed."""
        raise NotImplementedError

    def handle(self, engine: Engine) -> None:
        raise NotImplementedError

    def give_up(self, engine: Engine, reason: str, exc: Exception) -> None:
        """Its last receive failed: record that in the job before it goes to the DLQ."""
        if self.job_id is not None:
            engine.fail_job(self.job_id, f"The input could not be split into chunks: {reason}.")

    def dead_lettered(self, engine: Engine, reason: str) -> str:
        """It reached the DLQ (the worker may have been killed): record it in its job; returns
        what the log says was done."""
        if self.job_id is not None:
            engine.fail_job(self.job_id, f"The input could not be split into chunks: {reason}.")
        return "dead-lettered message recorded in its job"


@dataclass(frozen=True)
class Split(Message):
    kind: ClassVar[str] = "split"
    job_id: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Split | None:
        if body.get("kind") != cls.kind:
            return None
        job_id = body.get("job_id")
        if not isinstance(job_id, str) or not model.is_job_id(job_id):
            raise BadMessage("job_id is not a UUID")
        return cls(job_id)

    def handle(self, engine: Engine) -> None:
        engine.split(self.job_id)

    def give_up(self, engine: Engine, reason: str, exc: Exception) -> None:
        if isinstance(exc, DispatchNotRecorded):
            return  # the chunks were sent in this very delivery; they end the job
        super().give_up(engine, reason, exc)


@dataclass(frozen=True)
class Chunk(Message):
    kind: ClassVar[str] = "chunk"
    ref: ChunkRef
    message_id: str | None = None

    @property
    def job_id(self) -> str:  # type: ignore[override]
        return self.ref.job_id

    @property
    def chunk(self) -> int:  # type: ignore[override]
        return self.ref.chunk

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Chunk | None:
        return cls(ChunkRef.parse(body)) if body.get("kind") == cls.kind else None

    def handle(self, engine: Engine) -> None:
        engine.process_chunk(self.ref, self.message_id)

    def give_up(self, engine: Engine, reason: str, exc: Exception) -> None:
        engine.fail_chunk(self.ref, reason)

    def dead_lettered(self, engine: Engine, reason: str) -> str:
        engine.fail_chunk(self.ref, reason)
        return "dead-lettered message recorded in its job"


@dataclass(frozen=True)
class Notify(Message):
    kind: ClassVar[str] = "notify"
    ref: NotifyRef

    @property
    def job_id(self) -> str:  # type: ignore[override]
        return self.ref.job_id

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Notify | None:
        return cls(NotifyRef.parse(body)) if body.get("kind") == cls.kind else None

    def handle(self, engine: Engine) -> None:
        if engine.notify is not None:
            engine.notify(self.ref)

    def give_up(self, engine: Engine, reason: str, exc: Exception) -> None:
        return  # the job has ended already; its notification goes to the DLQ as it is

    def dead_lettered(self, engine: Engine, reason: str) -> str:
        return "dead-lettered notification kept in its job"  # kept, logged, not retried


@dataclass(frozen=True)
class Expire(Message):
    kind: ClassVar[str] = "expire"
    ref: ExpireRef

    @property
    def job_id(self) -> str:  # type: ignore[override]
        return self.ref.job_id

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Expire | None:
        return cls(ExpireRef.parse(body)) if body.get("kind") == cls.kind else None

    def handle(self, engine: Engine) -> None:
        engine.expiry.handle(self.ref)

    def give_up(self, engine: Engine, reason: str, exc: Exception) -> None:
        return  # a slot is never failed for its expiry message; the DLQ handler applies it

    def dead_lettered(self, engine: Engine, reason: str) -> str:
        # a failure raises, and the dead-letter queue delivers the message again
        engine.expiry.handle(self.ref)
        return "dead-lettered expiry applied"


@dataclass(frozen=True)
class UploadLanded(Message):
    """S3's ObjectCreated notification of a job's upload object."""

    kind: ClassVar[str] = "upload"
    uploads: tuple[Upload, ...]
    job_id: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> UploadLanded | None:
        uploads = tuple(uploads_in(body))
        if not uploads:
            return None
        return cls(uploads, uploads[0].job_id)

    def handle(self, engine: Engine) -> None:
        for upload in self.uploads:
            engine.landing.notified(upload)


@dataclass(frozen=True)
class Ignored(Message):
    """S3's test event, or a notification of another object: never a job's."""

    kind: ClassVar[str] = "ignore"

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Ignored | None:
        if body.get("Event") == "s3:TestEvent" or isinstance(body.get("Records"), list):
            return cls()
        return None

    def handle(self, engine: Engine) -> None:
        return None

    def give_up(self, engine: Engine, reason: str, exc: Exception) -> None:
        return None

    def dead_lettered(self, engine: Engine, reason: str) -> str:
        return "ignored"


# Tried in order: an S3 test event first (it has no kind), other S3 notifications last.
REGISTRY: tuple[type[Message], ...] = (Split, Chunk, Notify, Expire, UploadLanded, Ignored)


def parse(body: dict[str, Any], message_id: str | None = None) -> Message:
    if body.get("Event") == "s3:TestEvent":
        return Ignored()
    for kind in REGISTRY:
        found = kind.parse(body)
        if found is not None:
            if isinstance(found, Chunk) and message_id is not None:
                return Chunk(found.ref, message_id)
            return found
    raise BadMessage("unknown message")
