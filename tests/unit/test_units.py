"""Pure pieces: config parsing, model transitions and rendering, planner, normalization."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from async_jobs import model
from async_jobs.config import CONFIGS, ConfigError, EnvVar, StatusConfig, SubmitConfig, WorkerConfig, _Env
from async_jobs.identity import base_url, owner_from_event
from async_jobs.model import JobStatus
from async_jobs.normalize import normalize
from async_jobs.planner import iter_chunk_records, plan_chunks
from async_jobs.problems import ProblemError

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_worker_config_defaults_and_values() -> None:
    config = WorkerConfig.from_env(
        {
            "STATE_BUCKET": "b",
            "QUEUE_URL": "q",
            "CHUNK_SIZE": "250",
            "TOLERATED_FAILURE_PERCENT": "2.5",
            "QUEUE_FIFO": "TRUE",
        }
    )
    assert (config.chunk_size, config.tolerated_failure_percent, config.queue_fifo, config.sink) == (
        250,
        2.5,
        True,
        "s3",
    )


@pytest.mark.parametrize(
    ("factory", "env", "name"),
    [
        (WorkerConfig, {"QUEUE_URL": "q"}, "STATE_BUCKET"),
        (WorkerConfig, {"STATE_BUCKET": "b", "QUEUE_URL": "q", "CHUNK_SIZE": "lots"}, "CHUNK_SIZE"),
        (WorkerConfig, {"STATE_BUCKET": "b", "QUEUE_URL": "q", "CHUNK_SIZE": "0"}, "CHUNK_SIZE"),
        (
            WorkerConfig,
            {"STATE_BUCKET": "b", "QUEUE_URL": "q", "TOLERATED_FAILURE_PERCENT": "101"},
            "TOLERATED_FAILURE_PERCENT",
        ),
        (WorkerConfig, {"STATE_BUCKET": "b", "QUEUE_URL": "q", "SINK": "kafka"}, "SINK"),
        (WorkerConfig, {"STATE_BUCKET": "b", "QUEUE_URL": "q", "QUEUE_FIFO": "maybe"}, "QUEUE_FIFO"),
        (
            WorkerConfig,
            {"STATE_BUCKET": "b", "QUEUE_URL": "q", "RECORD_PROCESSOR": "nocolon"},
            "RECORD_PROCESSOR",
        ),
        (SubmitConfig, {"STATE_BUCKET": "b"}, "QUEUE_URL"),
        (SubmitConfig, {"STATE_BUCKET": "b", "QUEUE_URL": "q", "MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
        (StatusConfig, {"STATE_BUCKET": "b", "API_TYPE": "grpc"}, "API_TYPE"),
        (StatusConfig, {"STATE_BUCKET": "b", "AUTHORIZATION": "basic"}, "AUTHORIZATION"),
    ],
)
def test_bad_config_names_the_variable(factory, env, name) -> None:
    with pytest.raises(ConfigError) as raised:
        factory.from_env(env)
    assert raised.value.name == name and name in str(raised.value)


class RecordingEnviron(dict[str, str]):
    """An environment that remembers which variables were looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)


FULL_ENV = {
    "submit": {"STATE_BUCKET": "b", "QUEUE_URL": "q"},
    "status": {"STATE_BUCKET": "b"},
    "worker s3": {"STATE_BUCKET": "b", "QUEUE_URL": "q"},
    "worker redshift_data": {
        "STATE_BUCKET": "b",
        "QUEUE_URL": "q",
        "SINK": "redshift_data",
        "REDSHIFT_TABLE": "t",
        "REDSHIFT_DATABASE": "dev",
        "REDSHIFT_WORKGROUP_NAME": "wg1",
    },
    "worker redshift": {
        "STATE_BUCKET": "b",
        "QUEUE_URL": "q",
        "SINK": "redshift",
        "REDSHIFT_TABLE": "t",
        "REDSHIFT_HOST": "h",
    },
}


@pytest.mark.parametrize("variant", sorted(FULL_ENV))
def test_each_parser_reads_exactly_what_it_declares(variant: str) -> None:
    # GIVEN a function's parser and a valid environment for it
    parser = CONFIGS[variant.split(maxsplit=1)[0]]
    environ = RecordingEnviron(FULL_ENV[variant])
    # WHEN it parses
    parser.from_env(environ)
    # THEN it looked up every declared variable and nothing else, and the required ones are the
    # ones without which it refuses to start
    declared = parser.env_vars(environ)
    assert environ.read == {var.name for var in declared}
    for var in declared:
        missing = {k: v for k, v in FULL_ENV[variant].items() if k != var.name}
        if var.required:
            with pytest.raises(ConfigError, match=var.name):
                parser.from_env(missing)
    assert {v.name for v in declared if v.required} <= set(FULL_ENV[variant])


def test_a_parser_cannot_read_outside_its_declaration() -> None:
    env = _Env({"X": "1", "Y": "2"}, (EnvVar("X"),))
    assert env.optional("X") == "1"
    with pytest.raises(LookupError, match="Y is read but not declared"):
        env.optional("Y")
    with pytest.raises(LookupError, match="declared optional"):
        env.required("X")


def test_config_error_fails_the_invocation_naming_the_variable(aws, monkeypatch) -> None:
    from .conftest import FakeContext, load_handler

    monkeypatch.setenv("CHUNK_SIZE", "many")
    worker = load_handler("worker")
    with pytest.raises(ConfigError, match="CHUNK_SIZE"):
        worker.handler({"Records": []}, FakeContext())


def test_transitions() -> None:
    state = model.new_state(
        job_id="j",
        owner=None,
        status=JobStatus.QUEUED,
        input_key="k",
        total_records=1,
        metadata=None,
        moment=NOW,
    )
    model.transition(state, JobStatus.RUNNING, NOW)
    assert state["started_at"] == "2030-01-01T00:00:00.000Z"
    with pytest.raises(model.InvalidTransition):
        model.transition(state, JobStatus.EXPIRED, NOW)
    model.transition(state, JobStatus.CANCELLING, NOW)
    with pytest.raises(model.InvalidTransition):
        model.transition(state, JobStatus.SUCCEEDED, NOW)
    model.transition(state, JobStatus.CANCELLED, NOW)
    assert state["finished_at"] and model.is_terminal(state["status"])
    # an end is left only by a retry of a job with failed records, back to running
    assert set(model.TRANSITIONS) & model.TERMINAL == model.RETRYABLE
    for terminal in model.RETRYABLE:
        assert model.TRANSITIONS[terminal] == {JobStatus.RUNNING}


@pytest.mark.parametrize(
    ("total", "failed", "tolerated", "expected"),
    [
        (10, 0, 0, "succeeded"),
        (10, 1, 10, "completed_with_errors"),
        (10, 2, 10, "failed"),
        (10, 1, 0, "failed"),
        (10, 10, 100, "completed_with_errors"),
        (0, 0, 50, "failed"),
    ],
)
def test_final_status(total, failed, tolerated, expected) -> None:
    state = {"status": "running", "total_records": total, "failed_records": failed}
    assert model.final_status(state, tolerated) == expected


def test_render_keeps_first_20_errors_and_progress() -> None:
    state = model.new_state(
        job_id="j",
        owner="o",
        status=JobStatus.RUNNING,
        input_key="k",
        total_records=100,
        metadata={"a": 1},
        moment=NOW,
    )
    state["errors"] = model.merge_errors([], [model.record_error(i, "x" * 900) for i in range(30, 0, -1)])
    state.update(succeeded_records=40, failed_records=10)
    # (3, 2): succeeded and failed records of accounting segments not rolled up yet
    view = model.render_job(state, self_url="u", errors_url=None, moment=NOW, live=(3, 2))
    assert [e["record_index"] for e in view["errors"]] == list(range(1, 21))
    assert len(view["errors"][0]["message"]) == model.MAX_ERROR_MESSAGE
    assert (view["processed_records"], view["progress"]) == (55, 0.55)
    assert "owner" not in view


def test_awaiting_upload_reads_expired_after_its_landing_deadline() -> None:
    state = model.new_state(
        job_id="j",
        owner=None,
        status=JobStatus.AWAITING_UPLOAD,
        input_key="k",
        total_records=None,
        metadata=None,
        moment=NOW,
        expires_at=NOW + timedelta(seconds=5),
    )
    margin = model.UPLOAD_LANDING_MARGIN_SECONDS
    assert model.effective_status(state, NOW) == "awaiting_upload"
    # past expires_at a PUT begun before it may still land: the slot awaits it for the margin
    assert model.effective_status(state, NOW + timedelta(seconds=5)) == "awaiting_upload"
    assert model.effective_status(state, NOW + timedelta(seconds=4 + margin)) == "awaiting_upload"
    assert model.effective_status(state, NOW + timedelta(seconds=5 + margin)) == "expired"


def test_planner_cuts_whole_lines_and_skips_blank_ones() -> None:
    data = b'{"a":1}\n\n{"a":2}\r\n{"a":3}\n  \n{"a":4}'
    # fed in awkward pieces, as a stream would
    pieces = [data[i : i + 3] for i in range(0, len(data), 3)]
    plan = plan_chunks(pieces, 2)
    assert plan.total_records == 4
    assert [(c.first_record, c.count) for c in plan.chunks] == [(0, 2), (2, 2)]
    assert plan.chunks[0].start == 0 and plan.chunks[-1].end == len(data)
    rows = [r for c in plan.chunks for r in iter_chunk_records(data[c.start : c.end], c.first_record)]
    assert [(r.index, r.record) for r in rows] == [(i, {"a": i + 1}) for i in range(4)]


def test_chunk_records_mark_bad_lines() -> None:
    rows = list(iter_chunk_records(b'{"a":1}\nnope\n[1]\n', 10))
    assert [(r.index, r.error is None) for r in rows] == [(10, True), (11, False), (12, False)]


def test_normalize_json_and_ndjson_agree() -> None:
    rows = [{"b": 1, "a": "é"}, {"c": [1, 2]}]
    as_json = normalize(json.dumps({"records": rows}).encode(), "application/json", 10)
    as_ndjson = normalize("\n".join(json.dumps(r) for r in rows).encode(), "application/x-ndjson", 10)
    assert as_json.ndjson == as_ndjson.ndjson and as_json.total_records == 2
    assert as_json.body_hash == as_ndjson.body_hash
    with pytest.raises(ProblemError) as raised:
        normalize(b"\xff", "application/json", 10)
    assert raised.value.status == 400


def test_owner_and_base_url() -> None:
    rest_jwt = {
        "requestContext": {"authorizer": {"claims": {"sub": "u-1"}}, "stage": "v1", "domainName": "d"}
    }
    http_jwt = {
        "version": "2.0",
        "requestContext": {
            "authorizer": {"jwt": {"claims": {"sub": "u-2"}}},
            "stage": "$default",
            "domainName": "d",
        },
    }
    api_key = {"requestContext": {"identity": {"apiKeyId": "key-1"}}}
    assert owner_from_event(rest_jwt, "COGNITO") == "u-1"
    assert owner_from_event(http_jwt, "JWT") == "u-2"
    assert owner_from_event(api_key, "API_KEY") == "key-1"
    assert owner_from_event(api_key, "NONE") is None
    assert base_url(rest_jwt) == "https://d/v1" and base_url(http_jwt) == "https://d"
