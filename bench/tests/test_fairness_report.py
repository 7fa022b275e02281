"""The fair-sharing figures in the report: their section and their headline ratio."""

from __future__ import annotations

from typing import Any

from bench.__main__ import ratios
from bench.report import markdown


def results(**fairness: Any) -> dict[str, Any]:
    return {
        "commit": "abc1234",
        "finished_at": "2030-01-01T00:00:00Z",
        "command": "make bench",
        "machine": {"cpus": 2, "load_average_start": [1.0], "load_average_end": [1.0]},
        "fairness": {
            "small_records": 300,
            "big_records": 30_000,
            "worker_concurrency": 2,
            "sink_latency_s": 0.05,
            "small_alone_s": 2.0,
            "small_beside_big_fair_s": 2.5,
            "small_beside_big_unfair_s": 50.0,
            "big_processed_when_small_ended": {"fair": 1_700, "unfair": 30_000},
            **fairness,
        },
    }


def test_the_small_jobs_times_make_a_section_and_the_unfair_over_fair_ratio() -> None:
    figures = results()
    figures["ratios"] = ratios(figures)
    assert figures["ratios"]["small_job_beside_big_unfair_over_fair"] == 20.0
    text = markdown(figures)
    assert "## Fair sharing" in text
    assert "A 300-record job alone, and submitted once another caller's 30,000-record job is queued" in text
    assert "| alone | 2.0 s | – |" in text
    assert "| beside the big job, fair | 2.5 s | 1,700 |" in text
    assert "| beside the big job, unfair | 50.0 s | 30,000 |" in text


def test_without_fairness_figures_there_is_no_section_and_no_ratio() -> None:
    figures = results()
    del figures["fairness"]
    figures["ratios"] = ratios(figures)
    assert figures["ratios"]["small_job_beside_big_unfair_over_fair"] is None
    assert "## Fair sharing" not in markdown(figures)
