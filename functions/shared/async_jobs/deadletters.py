"""Dead-letter accounting: a message that reached the DLQ still ends its job.

The engine's last-receive accounting runs only when the handler raises. When Lambda kills the
worker (timeout, out of memory) on a message's last receive nothing runs, SQS moves the message
to the dead-letter queue and, without this, the job would stay `queued`/`running` for ever. The
worker also consumes the DLQ; each message there is parsed with the engine's own message
parsing and its outcome recorded:

  - a chunk: its records fail (through the chunk marker, so a chunk whose last-receive
    accounting already ran, or that did finish, counts once);
  - a split or an upload notification: the job fails (the engine's `fail_job`, a no-op once the
    chunks were dispatched, since they then decide the job's end).

The original message is kept at jobs/{id}/dead-letters/<message id>.json (written once) for
operators. A message that cannot be tied to a job (unreadable, unknown job) is logged at ERROR
with its body and acknowledged: retrying it cannot make it readable, and a DLQ has no DLQ, so
reporting it failed would loop until the retention period. A transient failure while recording
(S3 throttling) raises, so the message stays in the DLQ and is received again.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from async_jobs import messages, model
from async_jobs.chunks import BadMessage
from async_jobs.engine import Engine
from async_jobs.observability import logger
from async_jobs.store import Keys

METRIC = "DeadLetteredMessages"
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_LOGGED_BODY = 4096  # enough to identify a message; a 256 KiB body would flood the log


def dead_letter_reason(receives: int) -> str:
    return f"dead-lettered after {receives} receives: the worker did not finish (timeout, memory or error)"


def copy_name(message_id: str, body: str) -> str:
    """The copy's file name: the SQS message id, or a digest of the body when the id is not a
    plain token (it becomes part of an S3 key)."""
    if _MESSAGE_ID.match(message_id):
        return message_id
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def parse_body(body: str) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError:
        raise BadMessage("message body is not JSON") from None
    if not isinstance(message, dict):
        raise BadMessage("message body is not a JSON object")
    return message


class DeadLetters:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def handle(self, message_id: str, body: str, receive_count: int) -> str | None:
        """Record one dead-lettered message's outcome; returns its job id, if any."""
        engine = self.engine
        receives = engine.settings.max_receive_count
        try:
            message = messages.parse(parse_body(body))
        except BadMessage as exc:
            engine.emit(METRIC, 1.0, "Count")
            logger.error(
                "dead-lettered message is unreadable; dropped",
                extra={"message_id": message_id, "reason": str(exc), "body": body[:_LOGGED_BODY]},
            )
            return None
        job_id = message.job_id
        if job_id is None:
            return None  # S3 test events and foreign notifications were never a job's
        fields = {
            "job_id": job_id,
            "kind": message.kind,
            "chunk": message.chunk,
            "message_id": message_id,
            "receive_count": receive_count,
            "max_receive_count": receives,
        }
        if engine.store.get_state(job_id) is None:
            engine.emit(METRIC, 1.0, "Count")
            logger.error("dead-lettered message of an unknown or expired job; dropped", extra=fields)
            return job_id
        # The copy first: once the outcome is recorded the message is gone from the DLQ.
        first = engine.store.create_json(
            Keys.dead_letter(job_id, copy_name(message_id, body)),
            {
                "message_id": message_id,
                "body": body,
                "dead_lettered_at": model.isoformat(engine.clock()),
                "receive_count": receive_count,
            },
        )
        done = message.dead_lettered(engine, dead_letter_reason(receives))
        if first:  # a second delivery of the same DLQ message is not counted again
            engine.emit(METRIC, 1.0, "Count")
        logger.error(done, extra=fields)
        return job_id
