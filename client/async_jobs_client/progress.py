"""Progress of a job being waited on: a redrawn bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from typing import IO, Any


class Progress:
    def __init__(self, stream: IO[str], width: int = 30, every: float = 5.0) -> None:
        self.stream, self.width, self.every = stream, width, every
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last: tuple[float, str] | None = None

    def show(self, job: dict[str, Any]) -> None:
        total = int(job.get("total_records") or 0)
        done = int(job.get("processed_records") or 0)
        fraction = min(1.0, float(job.get("progress") or (done / total if total else 0.0)))
        status = str(job.get("status", ""))
        if self.tty:
            filled = int(self.width * fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {fraction * 100:5.1f}% {done:,}/{total:,} {status:<22}")
            self.stream.flush()
            return
        # Logs get a line when the status changes or every few seconds, not one per poll.
        now = time.monotonic()
        if self._last is None or self._last[1] != status or now - self._last[0] >= self.every:
            self._last = (now, status)
            self.stream.write(f"{status} {done}/{total} records ({fraction * 100:.1f}%)\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
