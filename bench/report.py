"""The results as files: ``latest.json`` (every figure), ``latest.md`` (tables), ``latest.png`` (chart)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _n(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ms(seconds: Any) -> str:
    return "–" if seconds is None else f"{seconds * 1000:,.0f} ms"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# async-jobs benchmark results",
        "",
        f"Commit `{results['commit']}`, {results['finished_at']}, {results['machine']['cpus']} CPUs, "
        f"load average {results['machine']['load_average_start']} → {results['machine']['load_average_end']}"
        f" (the machine was shared). Command: `{results['command']}`.",
        "",
        "## Headline ratios",
        "",
        *_table(["ratio", "value"], [[name, _n(value)] for name, value in results["ratios"].items()]),
    ]
    for section in (
        design_section,
        _latency,
        _throughput,
        _scaling,
        _contention,
        _fairness,
        _cost,
        _cold_start,
    ):
        lines += section(results)
    lines += _database(results)
    return "\n".join(lines)


def design_section(results: dict[str, Any]) -> list[str]:
    """The design layer: the real handlers in-process against the AWS model (bench/design)."""
    design = results.get("design")
    if not design:
        return []
    scaling, cost, sync, submit, chaos = (
        design["scaling"],
        design["cost"],
        design["sync"],
        design["submit"],
        design["chaos"],
    )
    defaults = ", ".join(f"{k} {v}" for k, v in design["module_defaults"].items())
    lines = [
        "## Design layer: one job's chunk completions",
        "",
        f"The submit, worker and status handlers in-process against a model of S3 (If-Match / "
        f"If-None-Match, 412 and 409), SQS and EventBridge that sleeps {scaling['latency_s'] * 1000:.0f} ms "
        f"per call, a sink that waits as long per write; at least {scaling['chunks_per_worker']} chunks per "
        f"worker; module defaults ({defaults}). A point whose CPU exceeded half the machine is invalid.",
        "",
    ]
    lines += _table(
        [
            "workers",
            "chunks",
            "completions/s",
            "efficiency",
            "lost races / completion",
            "S3 calls / chunk",
            "CPU share",
            "valid",
        ],
        [
            [
                w,
                _n(r["chunks"]),
                _n(r["completions_per_s"]),
                _n(r["efficiency"]),
                _n(r["lost_races_per_completion"], 3),
                _n(r["s3_requests_per_chunk"]),
                _n(r["cpu_share"], 3),
                "yes" if r["valid"] else "no",
            ]
            for w, r in scaling["runs"].items()
        ],
    )
    lines += [
        "## Design layer: cost of a job at the module's defaults",
        "",
        f"One {cost['records']:,}-record job through POST /jobs, {cost['workers']} workers, polled every "
        f"{cost['poll_interval_s']:.0f} s (the Retry-After the API answers; {cost['polls']} polls); the "
        "model holds only this job's traffic. Billable requests by unit, per 1,000 records:",
        "",
    ]
    lines += _table(
        ["unit", "per 1,000 records"], [[k, _n(v)] for k, v in cost["by_kind_per_1000_records"].items()]
    )
    lines += [
        f"Total **{_n(cost['aws_requests_per_1000_records'])}** billable requests per 1,000 records; "
        f"**${_n(cost['dollars_per_million_records'], 4)}** per million records "
        f"(Lambda GB-seconds from the model's durations). The synchronous design it replaces "
        f"({sync['records_per_request']:,} records a request, one S3 PutObject per record and a progress "
        f"PutObject every 100 inside the request, same write latency): "
        f"{_n(sync['aws_requests_per_1000_records'])} requests and "
        f"${_n(sync['dollars_per_million_records'], 4)} per million records.",
        "",
        f"Submit of {submit['records']:,} records: {_ms(submit['seconds_median'])} over "
        f"{submit['aws_calls']} AWS calls alone {_ms(submit['aws_calls_alone_s'])} = "
        f"{_n(submit['overhead_over_aws_calls'])}×.",
        "",
        "## Design layer: chaos",
        "",
        f"{chaos['workers']} workers, {chaos['duplicate_share']:.0%} of deliveries duplicated, "
        f"{chaos['kill_share']:.0%} of invocations killed at a random AWS call "
        f"({chaos['killed_invocations']} of {chaos['invocations']}), the second job cancelled while it runs.",
        "",
    ]
    lines += _table(
        ["job", "status", "total", "succeeded", "failed", "skipped", "sink rows", "lost", "counted twice"],
        [
            [
                "cancelled" if j["cancelled"] else "plain",
                j["status"],
                _n(j["total_records"]),
                _n(j["succeeded_records"]),
                _n(j["failed_records"]),
                _n(j["skipped_records"]),
                _n(j["sink_rows"]),
                _n(j["records_lost"]),
                _n(j["records_counted_twice"]),
            ]
            for j in chaos["jobs"]
        ],
    )
    return lines


def _database(results: dict[str, Any]) -> list[str]:
    database = results.get("database")
    if not database:
        return []
    lines = [
        "## Database protection (PostgreSQL)",
        "",
        f"examples/postgres on the local stack, its RDS endpoint a real PostgreSQL with "
        f"max_connections {database['max_connections']}; {database['clients']} concurrent clients send "
        f"{database['records']:,} records. Sync: each request holds a connection and inserts row by row. "
        f"Async: POST /jobs, the worker (maximum concurrency {database['workers']}) COPYs and upserts.",
        "",
    ]
    rows = [
        [
            mode,
            str(figures["peak_connections"]),
            str(figures["errors"]),
            f"{figures['records_written']:,}",
            f"{figures['seconds']:.1f} s",
            _ms(figures.get("p95_s")),
        ]
        for mode, figures in (("sync", database["sync"]), ("async", database["async"]))
    ]
    header = ["mode", "peak connections", "errors", "records written", "seconds", "request p95"]
    return lines + _table(header, rows)


def _latency(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    latency = results.get("submit_latency")
    if latency:
        rows = []
        for entry in latency["sizes"].values():
            for design in ("async", "sync", "floor"):
                if design in entry:
                    e = entry[design]
                    note = ""
                    if design == "sync" and e.get("timed_out"):
                        note = f"{e['timed_out']} of {e['n']} cut at 29 s (504)"
                    rows.append(
                        [
                            f"{entry['records']:,} ({entry['body_bytes'] / 1e6:.2f} MB)",
                            design,
                            str(e["n"]),
                            _ms(e["p50"]),
                            _ms(e["p95"]),
                            _ms(e["p99"]),
                            note,
                        ]
                    )
        lines += [
            "## Submit latency",
            "",
            "`floor` = submit's own three AWS calls made with boto3 alone.",
            "",
        ]
        lines += _table(["records", "design", "n", "p50", "p95", "p99", "note"], rows)
    return lines


def _throughput(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    throughput = results.get("throughput")
    if throughput:
        rows = [
            [
                clients,
                _n(entry["async"]["records_per_s"], 0),
                _n(entry["sync"]["records_per_s"], 0),
                _n(entry["async_over_sync"], 1),
                f"{entry['sync']['failed_requests']} failed, {entry['sync']['throttled_retries']} throttled",
            ]
            for clients, entry in throughput.items()
        ]
        lines += ["## Throughput, completed records/s end to end", ""]
        lines += _table(["clients", "async", "sync", "async/sync", "sync errors"], rows)
    return lines


def _scaling(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    scaling = results.get("worker_scaling")
    if scaling:
        lines += [
            "## Worker scaling",
            "",
            f"One {scaling['records']:,}-record job, "
            f"sink write latency {scaling['sink_latency_s'] * 1000:.0f} ms.",
            "",
        ]
        lines += _table(
            ["worker concurrency", "records/s", "efficiency"],
            [[c, _n(r["records_per_s"], 0), _n(r["efficiency"])] for c, r in scaling["runs"].items()],
        )
    return lines


def _contention(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    contention = results.get("state_contention")
    if contention:
        lines += [
            "## State contention",
            "",
            f"One {contention['chunks']:,}-chunk job, every S3 call of the worker slowed by "
            f"{contention['s3_latency_s'] * 1000:.0f} ms, {contention['window_s']} s per concurrency.",
            "",
        ]
        lines += _table(
            [
                "workers",
                "chunks/s",
                "412 per chunk",
                "state GETs per chunk",
                "state PUTs per chunk",
                "S3 calls per chunk",
            ],
            [
                [
                    c,
                    _n(r["completions_per_s"], 1),
                    _n(r["state_conflicts_per_completion"]),
                    _n(r["state_reads_per_completion"]),
                    _n(r["state_writes_per_completion"]),
                    _n(r["s3_calls_per_completion"]),
                ]
                for c, r in contention["runs"].items()
            ],
        )
        if contention.get("analysis"):
            lines += [contention["analysis"], ""]
    return lines


def _fairness(results: dict[str, Any]) -> list[str]:
    fairness = results.get("fairness")
    if not fairness:
        return []
    lines = [
        "## Fair sharing",
        "",
        f"A {fairness['small_records']:,}-record job alone, and submitted once another caller's "
        f"{fairness['big_records']:,}-record job is queued; worker concurrency "
        f"{fairness['worker_concurrency']}, sink write latency {fairness['sink_latency_s'] * 1000:.0f} ms. "
        "Fair: SQS fair queues (a message group per caller; per job on the bench stack, which has no "
        "authorization); unfair: the queue in sent order.",
        "",
    ]
    if fairness.get("measured"):
        measured = fairness["measured"]
        lines += [f"Measured at `{measured['commit']}`, {measured['at']}: {measured['how']}.", ""]
    processed = fairness["big_processed_when_small_ended"]
    return lines + _table(
        ["small job", "completion", "big job's records done by then"],
        [
            ["alone", f"{fairness['small_alone_s']:.1f} s", "–"],
            [
                "beside the big job, fair",
                f"{fairness['small_beside_big_fair_s']:.1f} s",
                _n(processed["fair"]),
            ],
            [
                "beside the big job, unfair",
                f"{fairness['small_beside_big_unfair_s']:.1f} s",
                _n(processed["unfair"]),
            ],
        ],
    )


def _cost(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    cost = results.get("cost")
    if cost:
        rows = []
        for design in ("async", "sync"):
            for records, entry in cost[design].items():
                rows.append(
                    [
                        design,
                        f"{int(records):,}",
                        _n(entry["aws_requests"], 0),
                        _n(entry["aws_requests_per_1000_records"], 1),
                        ", ".join(f"{k} {v:,}" for k, v in sorted(entry["requests_by_service"].items())),
                        f"${entry['dollars_per_million_records']:,.2f}",
                    ]
                )
        lines += [
            "## AWS requests and cost per job",
            "",
            f"Prices of {cost['prices_as_of']} (bench/prices.json), Lambda on {cost['architecture']}. "
            "`sync` is the replaced design, measured on one request and scaled per record.",
            "",
        ]
        lines += _table(
            ["design", "records", "requests", "per 1,000 records", "by service", "$ per million records"],
            rows,
        )
    return lines


def _cold_start(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    coldstart = results.get("cold_start")
    if coldstart:
        rows = [
            [
                name,
                _n((e["zip_bytes"] or 0) / 1e6, 1) + " MB",
                _n(e["unpacked_bytes"] / 1e6, 1) + " MB",
                _ms(e["handler_import_s"]["p50"]),
                _ms(e["bare_boto3_s"]["p50"]),
                _n(e["import_over_bare_boto3"]),
            ]
            for name, e in coldstart.items()
        ]
        lines += ["## Cold start", "", "Fresh `python -I -S` processes, package alone on `sys.path`.", ""]
        lines += _table(["function", "zip", "unpacked", "handler import", "boto3 + clients", "ratio"], rows)
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only when a chart is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    panels = [
        key
        for key in ("submit_latency", "throughput", "worker_scaling", "state_contention", "cold_start")
        if results.get(key)
    ]
    if results.get("design"):
        panels.insert(0, "design")
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for axis, key in zip(axes[0], panels, strict=True):
        data = results[key]
        if key == "design":
            runs = data["scaling"]["runs"]
            axis.plot(
                [int(c) for c in runs],
                [r["completions_per_s"] for r in runs.values()],
                marker="o",
                label="chunk completions/s",
            )
            axis.set_xscale("log")
            axis.set(
                title=f"one job, S3 model +{data['scaling']['latency_s'] * 1000:.0f} ms", xlabel="workers"
            )
        elif key == "submit_latency":
            names = list(data["sizes"])
            for design in ("async", "sync", "floor"):
                points = [
                    (data["sizes"][n]["records"], data["sizes"][n][design]["p95"])
                    for n in names
                    if design in data["sizes"][n]
                ]
                if points:
                    axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=design)
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set(title="submit p95 (s)", xlabel="records")
        elif key == "throughput":
            clients = [int(c) for c in data]
            for design in ("async", "sync"):
                axis.plot(
                    clients,
                    [data[str(c)][design]["records_per_s"] for c in clients],
                    marker="o",
                    label=design,
                )
            axis.set_yscale("log")
            axis.set(title="records/s end to end", xlabel="clients")
        elif key == "worker_scaling":
            runs = data["runs"]
            axis.plot(
                [int(c) for c in runs],
                [r["records_per_s"] for r in runs.values()],
                marker="o",
                label="records/s",
            )
            axis.set(title=f"worker scaling (sink {data['sink_latency_s'] * 1000:.0f} ms)", xlabel="workers")
        elif key == "state_contention":
            runs = data["runs"]
            axis.plot(
                [int(c) for c in runs],
                [r["completions_per_s"] for r in runs.values()],
                marker="o",
                label="chunks/s",
            )
            axis.set(title=f"one job's state (S3 +{data['s3_latency_s'] * 1000:.0f} ms)", xlabel="workers")
        else:
            names = list(data)
            axis.bar([f"{n}\nhandler" for n in names], [data[n]["handler_import_s"]["p50"] for n in names])
            axis.bar([f"{n}\nboto3" for n in names], [data[n]["bare_boto3_s"]["p50"] for n in names])
            axis.set(title="cold import (s)")
            axis.tick_params(axis="x", labelsize=7)
        if key != "cold_start":
            axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results: dict[str, Any], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "latest.json",
        "md": directory / "latest.md",
        "png": directory / "latest.png",
    }
    paths["json"].write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    paths["md"].write_text(markdown(results) + "\n")
    chart(results, paths["png"])
    return paths
