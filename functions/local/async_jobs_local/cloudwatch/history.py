"""``logs/alarms.log``: one deployment's alarm history (state changes, deliveries, refusals).

The history is written through a logger of its own, made with ``logging.Logger(...)`` rather
than ``logging.getLogger``, so it is outside logging's registry: ``logging.config.dictConfig``
and ``fileConfig`` (``disable_existing_loggers``, their default) disable every registered
logger, and anything in the process may call them (a web framework's start-up, a test
harness); a registered logger with the file handler attached would then write nothing.
Being the deployment's own, it also never carries another deployment's lines into this file.
Its records still propagate to ``async_jobs_local.alarms`` (the console of ``make local``).
"""

from __future__ import annotations

import logging
from pathlib import Path

NAME = "async_jobs_local.alarms"


class AlarmHistory:
    """A logger writing to ``path`` (if given) whatever the process does to logging's configuration."""

    def __init__(self, path: Path | None = None) -> None:
        self.logger = logging.Logger(NAME, logging.INFO)
        self.logger.parent = logging.getLogger(NAME)
        self._handler: logging.Handler | None = None
        if path is not None:
            self._handler = logging.FileHandler(path)
            self._handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            self.logger.addHandler(self._handler)

    def close(self) -> None:
        if self._handler is not None:
            self.logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
