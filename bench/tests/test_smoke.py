"""``make bench-smoke``: the benchmark's smoke profile produces every file, and its figures are sane.

Sane, not fast: the values depend on the machine; what is checked is that each is a measured
duration or size (positive, finite, ordered percentiles), not a placeholder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import run
from bench.cost import dollars, load_prices
from bench.stats import percentile, summary

# the stack layer's; the design layer's are checked in test_design.py
REQUIRED_RATIOS = {
    "submit_p95_async_over_sync_10000",
    "throughput_async_over_sync_50_clients",
    "stack_worker_scaling_efficiency_8",
    "stack_aws_requests_per_1000_records",
    "stack_submit_overhead_over_aws_calls",
    "import_time_over_bare_boto3",
    "stack_state_completions_per_s_at_50",
}


def _sane_summary(figures: dict[str, Any], ceiling: float) -> None:
    assert figures["n"] >= 1
    assert 0 < figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"] < ceiling, figures


@pytest.mark.slow
def test_smoke_profile_writes_sane_figures(tmp_path: Path) -> None:
    paths = run("smoke", tmp_path, ("stack",))
    results = json.loads(paths["json"].read_text())

    assert REQUIRED_RATIOS <= set(results["ratios"])
    assert "database" in results  # room for the database sink's comparison
    assert len(results["machine"]["load_average_start"]) == 3

    for name in ("submit", "worker", "status"):
        entry = results["cold_start"][name]
        assert entry["unpacked_bytes"] > 1_000_000, "a package holds at least boto3"
        _sane_summary(entry["handler_import_s"], 60)
        _sane_summary(entry["bare_boto3_s"], 60)
        assert entry["clients"], "the bare handler builds the handler's clients"
    ratio = results["ratios"]["import_time_over_bare_boto3"]
    assert math.isfinite(ratio) and ratio > 0

    for entry in results["submit_latency"]["sizes"].values():
        _sane_summary(entry["floor"], 30)

    markdown = paths["md"].read_text()
    assert "## Cold start" in markdown and "## Submit latency" in markdown
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert summary([0.3, 0.1, 0.2])["p95"] == pytest.approx(0.29)


def test_dollars_price_each_request_class() -> None:
    prices = load_prices()
    usage = {
        "requests": {
            "s3.PutObject": 1000,
            "s3.GetObject": 1000,
            "s3.DeleteObject": 1000,
            "sqs.SendMessage": 10**6,
        },
        "lambda_requests": 10**6,
        "gb_seconds": 1000.0,
        "api_requests": 10**6,
    }
    cost = dollars(usage, prices)
    assert cost["s3"] == pytest.approx(
        prices["s3"]["put_class_per_1000"] + prices["s3"]["get_class_per_1000"]
    )
    assert cost["sqs"] == pytest.approx(prices["sqs"]["standard_per_million"])
    assert cost["lambda_requests"] == pytest.approx(prices["lambda"]["requests_per_million"])
    assert cost["apigateway"] == pytest.approx(prices["apigateway"]["rest_per_million"])
    assert cost["total"] == pytest.approx(sum(v for k, v in cost.items() if k != "total"))
    assert prices["as_of"] and prices["sources"]
