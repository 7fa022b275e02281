"""Fault injection for the local stack: the failures AWS produces, on purpose and counted.

A ``FaultPlan`` given to ``LocalDeployment(faults=...)`` turns on, for the worker:

- AWS errors: a share of the worker's S3 and SQS requests is answered, before it leaves the
  process, with what S3 answers under load (``500 InternalError``, ``503 SlowDown``) or SQS's
  ``500 InternalError``. The answer goes through botocore's ``before-send`` event, so the
  function's own retry mode handles it exactly as it would on AWS.
- Kills: the pool kills a worker process at a random moment of an invocation, as Lambda does on a
  timeout or out of memory; the batch comes back after the queue's visibility timeout.
- Duplicate delivery: the event source mapping delivers a message a second time, concurrently
  with the first (SQS is at-least-once).
- Out-of-order delivery: the mapping shuffles batches and hands some messages back to the queue
  for a few seconds, so later messages overtake them.

Everything lives in the local runtime; nothing in the shipped packages knows about it. The
worker's processes get the plan through ``ENV_VAR``, which the runtime loop reads and removes
before the handler is imported. This module imports only the standard library at the top: the
runtime loop loads it by path inside a process whose ``sys.path`` is the function's package.

Counts are measured, not configured: each function process appends one line per injected AWS
error to its own file under ``counts_dir``; the parent counts kills, duplicates and delays as it
makes them. The parent also keeps a journal per job (``Faults.journal``): each fault it injected
into a delivery of one of the job's messages, and each delivery that failed (a kill, a timeout, a
throttle, a record reported failed), so a job that ends late can be told from one that never ends.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "ASYNC_JOBS_LOCAL_FAULTS"

# (status, error code, message) per service: what each service answers when it fails.
_S3_ERRORS = (
    (500, "InternalError", "We encountered an internal error. Please try again."),
    (503, "SlowDown", "Please reduce your request rate."),
)
_SQS_ERRORS = ((500, "InternalError", "We encountered an internal error. Please try again."),)


@dataclass(frozen=True)
class FaultPlan:
    """Rates of each fault, each a probability per request / invocation / message."""

    aws_error_rate: float = 0.0  # per S3 or SQS request of the worker
    kill_rate: float = 0.0  # per worker invocation
    kill_within: float = 2.0  # the kill comes at a uniform moment in [0, kill_within) seconds
    duplicate_rate: float = 0.0  # per delivered message
    delay_rate: float = 0.0  # per delivered message: handed back to the queue for a moment
    delay_seconds: tuple[int, int] = (1, 4)
    # at most this many deliveries of one message are killed: each kill costs the message one
    # visibility timeout, so this bounds how late a kill can make a job
    max_kills_per_message: int | None = None  # None: no bound
    shuffle: bool = False  # shuffle every batch before it is invoked
    seed: int | None = None
    counts_dir: str = ""  # where function processes count their injected AWS errors

    def __post_init__(self) -> None:
        for name in ("aws_error_rate", "kill_rate", "duplicate_rate", "delay_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} = {value!r}: a rate is a probability between 0 and 1")

    def to_environment(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_environment(cls, value: str) -> FaultPlan:
        data = json.loads(value)
        data["delay_seconds"] = tuple(data.get("delay_seconds") or (1, 4))
        return cls(**data)


@dataclass(frozen=True)
class JournalEntry:
    """Something that happened to one delivery of a job's message, at ``at`` (monotonic seconds)."""

    at: float
    what: str  # kill, delay, duplicate, timeout, throttled, invocation_error, record_failed
    kind: str  # the message's kind (split, chunk, notify, ...)
    chunk: int | None
    receive_count: int


def _message_fields(message: dict[str, Any]) -> tuple[str, str, int | None, int]:
    """(job id, kind, chunk, receive count) of an SQS message or an ``aws:sqs`` event record."""
    body = message.get("Body", message.get("body", ""))
    attributes = message.get("Attributes") or message.get("attributes") or {}
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        parsed = {}
    chunk = parsed.get("chunk")
    return (
        str(parsed.get("job_id") or ""),
        str(parsed.get("kind") or ""),
        chunk if isinstance(chunk, int) else None,
        int(attributes.get("ApproximateReceiveCount") or 0),
    )


@dataclass
class Faults:
    """The parent's side: decides kills, duplicates and delays, and adds up every fault injected."""

    plan: FaultPlan
    counts_dir: Path
    _random: random.Random = field(init=False)
    _counts: Counter[str] = field(default_factory=Counter, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _journal: dict[str, list[JournalEntry]] = field(default_factory=dict, init=False)
    _kills: Counter[str] = field(default_factory=Counter, init=False)  # by message id

    def __post_init__(self) -> None:
        self._random = random.Random(self.plan.seed)
        self.counts_dir.mkdir(parents=True, exist_ok=True)

    def reseed(self, seed: int) -> None:
        """Draw this plan's faults from ``seed`` from now on (several runs on one stack)."""
        with self._lock:
            self._random = random.Random(seed)

    def note(self, what: str, messages: list[dict[str, Any]]) -> None:
        """Journal ``what`` for each job whose message is among ``messages`` (messages or records)."""
        at = time.monotonic()
        with self._lock:
            for message in messages:
                job_id, kind, chunk, receives = _message_fields(message)
                if job_id:
                    self._journal.setdefault(job_id, []).append(JournalEntry(at, what, kind, chunk, receives))

    def journal(self, job_id: str) -> list[JournalEntry]:
        """What happened to the deliveries of the job's messages, oldest first."""
        with self._lock:
            return list(self._journal.get(job_id, ()))

    def environment(self) -> dict[str, str]:
        """What a worker process inherits to inject AWS errors itself."""
        plan = FaultPlan(**{**asdict(self.plan), "counts_dir": str(self.counts_dir)})
        return {ENV_VAR: plan.to_environment()}

    def _chance(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._random.random() < rate

    def _count(self, kind: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[kind] += amount

    def counts(self) -> dict[str, int]:
        """Faults injected so far, by kind (AWS errors as ``aws:<service>.<operation>:<status>``)."""
        with self._lock:
            counts = Counter({kind: count for kind, count in self._counts.items() if count})
        for path in self.counts_dir.glob("aws-*.log"):
            counts.update(line for line in path.read_text().splitlines() if line)
        return dict(counts)

    def totals(self) -> dict[str, int]:
        """Counts by kind, AWS errors added up: aws_errors, kills, duplicates, delays, shuffles."""
        totals: Counter[str] = Counter()
        for kind, count in self.counts().items():
            totals["aws_errors" if kind.startswith("aws:") else kind] += count
        return dict(totals)

    # ------------------------------------------------------------------ the pool's side

    def arm_kill(
        self, kill: Callable[[], None], records: list[dict[str, Any]] | None = None
    ) -> Callable[[], None]:
        """Maybe kill the invocation about to start (of ``records``, an ``aws:sqs`` event's, when
        it has them); returns what to call once it has ended. No delivery of a message is killed
        once ``max_kills_per_message`` deliveries of it were."""
        records = list(records or ())
        ids = [str(record.get("messageId") or "") for record in records]
        with self._lock:
            bound = self.plan.max_kills_per_message
            spent = bound is not None and any(self._kills[i] >= bound for i in ids if i)
        if spent or not self._chance(self.plan.kill_rate):
            return lambda: None
        ended = threading.Event()

        def fire() -> None:
            with self._lock:
                if ended.is_set():
                    return  # the invocation ended first: nothing was killed
                self._counts["kills"] += 1
                self._kills.update(i for i in ids if i)
            self.note("kill", records)
            kill()

        with self._lock:
            delay = self._random.uniform(0, self.plan.kill_within)
        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()

        def disarm() -> None:
            with self._lock:
                ended.set()
            timer.cancel()

        return disarm

    # ------------------------------------------------------------------ the mapping's side

    def reorder(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.plan.shuffle or len(batch) < 2:
            return batch
        shuffled = list(batch)
        with self._lock:
            self._random.shuffle(shuffled)
        if shuffled != batch:
            self._count("shuffles")
        return shuffled

    def held_back(self, batch: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
        """Messages to hand back to the queue for a few seconds instead of delivering them now."""
        held = []
        for message in batch:
            if self._chance(self.plan.delay_rate):
                with self._lock:
                    seconds = self._random.randint(*self.plan.delay_seconds)
                held.append((message, seconds))
        self._count("delays", len(held))
        self.note("delay", [message for message, _ in held])
        return held

    def duplicates(self, batch: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]]:
        """Messages to deliver a second time, each with the delay after the first delivery."""
        twice = []
        for message in batch:
            if self._chance(self.plan.duplicate_rate):
                with self._lock:
                    twice.append((message, self._random.uniform(0, 1.0)))
        self._count("duplicates", len(twice))
        self.note("duplicate", [message for message, _ in twice])
        return twice


# ---------------------------------------------------------------------- inside a function process


class AwsErrors:
    """botocore ``before-send`` hook answering a share of S3 and SQS requests with an error."""

    def __init__(self, plan: FaultPlan) -> None:
        self.rate = plan.aws_error_rate
        self._random = random.Random(None if plan.seed is None else plan.seed + os.getpid())
        self._log = Path(plan.counts_dir) / f"aws-{os.getpid()}.log" if plan.counts_dir else None

    def install(self) -> None:
        """Register on every botocore session created from now on (before the handler's clients)."""
        import botocore.session  # noqa: PLC0415 - from the function's package

        hook = self
        original_init = botocore.session.Session.__init__

        def init(session: Any, *args: Any, **kwargs: Any) -> None:
            original_init(session, *args, **kwargs)
            session.register("before-send.s3", hook.before_send)
            session.register("before-send.sqs", hook.before_send)

        botocore.session.Session.__init__ = init

    def before_send(self, request: Any, event_name: str = "", **_: Any) -> Any:
        if self.rate <= 0 or self._random.random() >= self.rate:
            return None  # sent as usual
        from botocore.awsrequest import AWSResponse  # noqa: PLC0415

        service, operation = (event_name.split(".") + ["", "", ""])[1:3]
        status, code, message = self._random.choice(_S3_ERRORS if service == "s3" else _SQS_ERRORS)
        headers: dict[str, str]
        if service == "s3":
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><RequestId>local-fault</RequestId></Error>"
            ).encode()
            headers = {"Content-Type": "application/xml"}
        else:
            body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
            headers = {
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-query-error": f"{code};Receiver",
            }
        if self._log is not None:
            # one short O_APPEND write per fault: whole lines, whatever else writes the file
            with self._log.open("a") as log:
                log.write(f"aws:{service}.{operation}:{status}\n")
        return AWSResponse(request.url, status, headers, _Body(body))


class _Body:
    """The raw body AWSResponse reads an error answer from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def install_from_environment(code_dir: str) -> None:
    """In a function process: take the plan out of the environment and hook botocore."""
    value = os.environ.pop(ENV_VAR, None)
    if not value:
        return
    plan = FaultPlan.from_environment(value)
    if plan.aws_error_rate <= 0:
        return
    import sys  # noqa: PLC0415

    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    AwsErrors(plan).install()


def sleep_then(seconds: float, action: Callable[[], Any]) -> None:
    """Run ``action`` after ``seconds`` on a daemon thread (a duplicate delivery)."""

    def run() -> None:
        time.sleep(seconds)
        action()

    threading.Thread(target=run, name="fault-duplicate", daemon=True).start()
