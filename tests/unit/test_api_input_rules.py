"""Adversarial input on both submit routes: every refusal is a 400/413/415 problem, never a 500,
and what is accepted stays strictly valid JSON wherever it is read back."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from async_jobs import jsontext, normalize

from .conftest import BUCKET, Api, Aws, Worker, records, result_lines
from .test_api_submit import assert_problem

NDJSON = {"Content-Type": "application/x-ndjson"}
JSON = {"Content-Type": "application/json"}


def nested(depth: int) -> str:
    """A JSON value `depth` containers deep."""
    return '{"a":' * (depth - 1) + "[]" + "}" * (depth - 1)


def python_free(detail: str) -> None:
    for leak in ("sys.", "set_int_max_str_digits", "Traceback", "Error(", "Exception", "<class"):
        assert leak not in detail, detail


# (name, body, pointer or line the problem must name)
JSON_BODIES = {
    "deep_metadata": ('{"records": [{"a": 1}], "metadata": ' + nested(300) + "}", "/metadata"),
    "deep_record": ('{"records": [{"a": 1}, ' + nested(3000) + "]}", "/records/1"),
    "just_too_deep_record": ('{"records": [' + nested(jsontext.MAX_DEPTH + 1) + "]}", "/records/0"),
    "surrogate_record": ('{"records": [{"a": 1}, {"s": "\\ud800"}]}', "/records/1/s"),
    "surrogate_key": ('{"records": [{"\\udfff": 1}]}', "/records/0"),
    "surrogate_metadata": ('{"records": [{"a": 1}], "metadata": {"m": "x\\ud800"}}', "/metadata/m"),
    "overflow": ('{"records": [{"a": 1e400}]}', "/records/0"),
    "negative_overflow": ('{"records": [{"a": [-1e999]}]}', "/records/0"),
    "long_int": ('{"records": [{"a": ' + "9" * 5000 + "}]}", "/records/0"),
    "just_too_long_number": (
        '{"records": [{"a": 1}, {"a": ' + "9" * (jsontext.MAX_NUMBER_CHARS + 1) + "}]}",
        "/records/1",
    ),
    "nan": ('{"records": [{"a": NaN}]}', "/records/0"),
    "infinity_metadata": ('{"records": [{"a": 1}], "metadata": {"x": Infinity}}', "/metadata"),
    "duplicate_records": ('{"records": [{"a": 1}], "records": [{"a": 2}]}', "/records"),
}


@pytest.mark.parametrize("name", sorted(JSON_BODIES))
@pytest.mark.parametrize("kind", ["rest", "http"])
def test_bad_json_bodies_are_400_problems_naming_the_place(
    name: str, kind: str, request: pytest.FixtureRequest, aws: Aws
) -> None:
    # GIVEN a JSON body that Python would parse but the contract refuses
    body, pointer = JSON_BODIES[name]
    client: Api = request.getfixturevalue("api" if kind == "rest" else "http_api")
    # WHEN it is submitted
    reply = client.request("POST", "/jobs", body, JSON)
    # THEN 400 with a problem that names the place and holds no Python text; nothing is stored
    problem = assert_problem(reply, 400)
    assert any(str(e.get("pointer", "")).startswith(pointer) for e in problem.get("errors", [])), problem
    python_free(problem["detail"])
    assert aws.keys() == []


NDJSON_BODIES = {
    "deep": b'{"a": 1}\n' + nested(100).encode() + b"\n",
    "surrogate": b'{"a": 1}\n{"s": "\\ud800"}\n',
    "overflow": b'{"a": 1}\n{"a": 1e400}\n',
    "long_int": b'{"a": 1}\n{"a": ' + b"1" * 5000 + b"}\n",
    "nan": b'{"a": 1}\n{"a": NaN}\n',
    "not_utf8": b'{"a": 1}\n{"a": "\xff"}\n',
}


@pytest.mark.parametrize("name", sorted(NDJSON_BODIES))
def test_bad_ndjson_lines_are_400_problems_naming_the_line(name: str, api: Api, aws: Aws) -> None:
    reply = api.request("POST", "/jobs", NDJSON_BODIES[name], NDJSON, base64_body=True)
    problem = assert_problem(reply, 400)
    assert "Line 2" in problem["detail"] and problem["errors"][0]["line"] == 2, problem
    python_free(problem["detail"])
    assert aws.keys() == []


def test_limits_just_inside_are_accepted_and_read_back(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN a record exactly MAX_DEPTH deep with the longest number allowed and non-BMP text
    record = {"deep": json.loads(nested(jsontext.MAX_DEPTH - 1)), "n": int("9" * 100), "s": "\U0001f600"}
    metadata = {"m": json.loads(nested(jsontext.MAX_DEPTH - 1))}
    reply = api.submit_json({"records": [record], "metadata": metadata})
    assert reply.status == 202, reply.body
    job_id = reply.body["job_id"]
    # WHEN it runs and is read
    worker.drain()
    job = api.get(job_id)
    # THEN it is read back whole, as valid JSON
    assert job.status == 200 and job.body["status"] == "succeeded"
    assert job.body["metadata"] == metadata
    assert [line["record"] for line in result_lines(aws, job_id)] == [record]


def test_stored_input_and_results_are_strict_json(api: Api, worker: Worker, aws: Aws) -> None:
    # GIVEN accepted records with floats at the edges of the range
    rows = [{"big": 1.7976931348623157e308, "small": -5e-324, "e": 1e300}]
    job_id = api.submit_json({"records": rows}).body["job_id"]
    worker.drain()
    # THEN every stored object parses under strict rules (no Infinity/NaN anywhere)
    for key in aws.keys(f"jobs/{job_id}/"):
        if key.endswith((".json", ".ndjson")) and "plan" not in key:
            body = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            for line in body.splitlines():
                jsontext.loads(line)


def test_uploads_route_validates_like_jobs(api: Api, aws: Aws) -> None:
    # other content types: 415
    reply = api.request("POST", "/jobs/uploads", '{"metadata": {}}', {"Content-Type": "text/plain"})
    assert_problem(reply, 415)
    # the metadata size cap
    big = json.dumps({"metadata": {"x": "y" * (normalize.MAX_METADATA_BYTES + 1)}})
    assert_problem(api.request("POST", "/jobs/uploads", big, JSON), 400)
    # NaN, depth, surrogates
    bad_metadata = (
        '{"metadata": {"x": NaN}}',
        '{"metadata": ' + nested(200) + "}",
        '{"metadata": {"x": "\\ud800"}}',
    )
    for body in bad_metadata:
        problem = assert_problem(api.request("POST", "/jobs/uploads", body, JSON), 400)
        python_free(problem["detail"])
    assert aws.keys() == []
    # and a good one still works
    assert api.request("POST", "/jobs/uploads", '{"metadata": {"a": 1}}', JSON).status == 201


def test_too_many_records_fails_before_the_body_becomes_objects(api: Api, aws: Aws) -> None:
    # GIVEN a 5 MiB body of tiny records far over the limit (MAX_RECORDS_PER_JOB = 20000)
    body = b'{"records": [' + b",".join(b"{}" for _ in range(2 * 1024 * 1024)) + b"]}"
    assert len(body) > 4 * 1024 * 1024
    # WHEN it is normalized
    tracemalloc.start()
    with pytest.raises(normalize.ProblemError) as raised:
        normalize.normalize(body, "application/json", 20_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # THEN 413, having held only about the limit's worth of records (not two million objects)
    assert raised.value.status == 413
    assert peak < 24 * 1024 * 1024, peak


def test_ndjson_too_many_records_stops_early(aws: Aws) -> None:
    body = b"{}\n" * 1_000_000
    tracemalloc.start()
    with pytest.raises(normalize.ProblemError) as raised:
        normalize.normalize(body, "application/x-ndjson", 1000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert raised.value.status == 413
    assert peak < 2 * 1024 * 1024, peak


def test_good_bodies_normalize_the_same_on_both_media_types() -> None:
    rows = records(5)
    as_json = normalize.normalize(json.dumps({"records": rows}).encode(), "application/json", 10)
    as_ndjson = normalize.normalize(
        b"\n\n".join(json.dumps(r).encode() for r in rows), "application/x-ndjson", 10
    )
    assert as_json.ndjson == as_ndjson.ndjson
    assert as_json.total_records == as_ndjson.total_records == 5
