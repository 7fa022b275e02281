"""The time-per-layer summary of a test session (tests/layer_report.py)."""

from __future__ import annotations

import pytest

from tests.layer_report import LINT_SECONDS_ENV, LayerReport, layer_of


def _phases(nodeid: str, start: float, seconds: tuple[float, float, float]) -> list[pytest.TestReport]:
    reports = []
    for when, duration in zip(("setup", "call", "teardown"), seconds, strict=True):
        reports.append(
            pytest.TestReport(
                nodeid=nodeid,
                location=(nodeid.split("::", maxsplit=1)[0], 0, nodeid),
                keywords={},
                outcome="passed",
                longrepr=None,
                when=when,  # type: ignore[arg-type]
                duration=duration,
                start=start,
                stop=start + duration,
            )
        )
        start += duration
    return reports


def test_a_layer_is_the_folder_under_tests_or_the_top_level_folder() -> None:
    assert layer_of("tests/unit/test_x.py::test_y") == "unit"
    assert layer_of("tests/e2e/test_minimal.py::test_y[rest]") == "e2e"
    assert layer_of("tests/plan/fixtures/test_x.py::t") == "plan"
    assert layer_of("bench/tests/test_smoke.py::t") == "bench"


def test_each_layer_counts_its_tests_their_summed_time_and_its_wall_time() -> None:
    # GIVEN two e2e tests run side by side on two workers and one unit test
    report = LayerReport()
    for phase in [
        *_phases("tests/e2e/test_a.py::t", 1000.0, (60.0, 5.0, 30.0)),
        *_phases("tests/e2e/test_b.py::t", 1010.0, (50.0, 10.0, 30.0)),
        *_phases("tests/unit/test_c.py::t", 1000.0, (0.5, 1.0, 0.5)),
    ]:
        report.pytest_runtest_logreport(phase)

    # THEN the e2e layer has 2 tests, 185 s of test time and 100 s of wall time (1000 -> 1100)
    e2e, unit = report.layers["e2e"], report.layers["unit"]
    assert (e2e.tests, e2e.test_seconds, e2e.wall_seconds) == (2, 185.0, 100.0)
    assert (unit.tests, unit.test_seconds, unit.wall_seconds) == (1, 2.0, 2.0)
    # and the table lists the longest layer first
    lines = report.lines()
    assert lines[1].split() == ["e2e", "2", "1m40s", "3m05s"]
    assert lines[2].split() == ["unit", "1", "2.0s", "2.0s"]


def test_the_lint_step_timed_by_make_is_the_first_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LINT_SECONDS_ENV, "83.4")
    report = LayerReport.from_environment()
    report.pytest_runtest_logreport(_phases("tests/unit/test_c.py::t", 0.0, (0.1, 0.1, 0.1))[0])
    assert report.lines()[1].split() == ["lint", "1m23s"]


def test_without_the_lint_time_there_is_no_lint_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LINT_SECONDS_ENV, raising=False)
    report = LayerReport.from_environment()
    report.pytest_runtest_logreport(_phases("tests/unit/test_c.py::t", 0.0, (0.1, 0.1, 0.1))[0])
    assert [line.split()[0] for line in report.lines()] == ["layer", "unit"]
