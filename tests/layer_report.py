"""The time each test layer took, printed at the end of a session (`make test` shows it).

A layer is a test folder: ``tests/<layer>/...`` (unit, plan, e2e) or, for any other tree, its
top-level folder (``bench/tests`` is ``bench``). For each layer the summary gives its tests, its
wall time (first test started to last test ended) and its test time (setup + call + teardown
summed over its tests: more than the wall time when xdist workers run its modules side by side).
``make test`` lints before pytest starts and passes that step's wall time in ``LINT_SECONDS_ENV``,
so the lint layer shows in the same table.

Under pytest-xdist the reports reach the controlling process, which is where the plugin runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

LINT_SECONDS_ENV = "ASYNC_JOBS_LINT_SECONDS"


def layer_of(nodeid: str) -> str:
    """``tests/e2e/test_x.py::test_y`` -> ``e2e``; ``bench/tests/test_x.py::t`` -> ``bench``."""
    parts = nodeid.split("::", 1)[0].split("/")
    if parts[0] == "tests" and len(parts) > 2:
        return parts[1]
    return parts[0]


@dataclass
class LayerTime:
    tests: int = 0
    test_seconds: float = 0.0
    first_start: float | None = None
    last_stop: float | None = None

    @property
    def wall_seconds(self) -> float:
        if self.first_start is None or self.last_stop is None:
            return 0.0
        return self.last_stop - self.first_start

    def add(self, report: pytest.TestReport) -> None:
        if report.when == "setup":
            self.tests += 1
        self.test_seconds += report.duration
        start, stop = report.start, report.stop
        if start and (self.first_start is None or start < self.first_start):
            self.first_start = start
        if stop and (self.last_stop is None or stop > self.last_stop):
            self.last_stop = stop


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


class LayerReport:
    """Collects every test's phases by layer; writes the table in the terminal summary."""

    def __init__(self, lint_seconds: float | None = None) -> None:
        self.layers: dict[str, LayerTime] = {}
        self.lint_seconds = lint_seconds

    @classmethod
    def from_environment(cls) -> LayerReport:
        value = os.environ.get(LINT_SECONDS_ENV, "")
        try:
            return cls(float(value) if value else None)
        except ValueError:
            return cls(None)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.layers.setdefault(layer_of(report.nodeid), LayerTime()).add(report)

    def lines(self) -> list[str]:
        rows = [f"{'layer':<8}{'tests':>7}{'wall':>10}{'test time':>11}"]
        if self.lint_seconds is not None:
            rows.append(f"{'lint':<8}{'':>7}{_clock(self.lint_seconds):>10}{'':>11}")
        for name in sorted(self.layers, key=lambda n: -self.layers[n].wall_seconds):
            layer = self.layers[name]
            rows.append(
                f"{name:<8}{layer.tests:>7}{_clock(layer.wall_seconds):>10}{_clock(layer.test_seconds):>11}"
            )
        return rows

    @pytest.hookimpl(trylast=True)  # after pytest's own summaries (--durations), at the very end
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.layers:
            return
        terminalreporter.write_sep("=", "time per layer")
        for line in self.lines():
            terminalreporter.write_line(line)
