"""The design layer (bench/design): its AWS model answers as S3 does, and its smoke run gives
sane figures within a minute."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError

from bench.design.aws_model import Faults, Requests, S3Model
from bench.design.measure import measure, ratios
from bench.profiles import SMOKE


def test_the_s3_model_answers_conditional_writes_as_s3_does() -> None:
    s3 = S3Model(0.0, Requests(), Faults())
    first = s3.put_object(Bucket="b", Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as created_twice:
        s3.put_object(Bucket="b", Key="k", Body=b"2", IfNoneMatch="*")
    assert created_twice.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    second = s3.put_object(Bucket="b", Key="k", Body=b"2", IfMatch=first["ETag"])
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket="b", Key="k", Body=b"3", IfMatch=first["ETag"])
    assert stale.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket="b", Key="k", Range="bytes=0-0")["Body"].read() == b"2"
    assert s3.get_object(Bucket="b", Key="k")["ETag"] == second["ETag"]


def test_overlapping_conditional_writes_lose_with_409() -> None:
    # GIVEN writes that take 50 ms each, both conditioned on the same version
    s3 = S3Model(0.05, Requests(), Faults())
    etag = s3.put_object(Bucket="b", Key="k", Body=b"0")["ETag"]
    answers: list[object] = []

    def write(body: bytes) -> None:
        try:
            answers.append(s3.put_object(Bucket="b", Key="k", Body=body, IfMatch=etag)["ETag"])
        except ClientError as exc:
            answers.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])

    threads = [threading.Thread(target=write, args=(bytes([65 + i]),)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN one commits and the one in flight meanwhile gets 409 ConditionalRequestConflict
    assert len(answers) == 2 and 409 in answers
    assert [a for a in answers if a != 409][0] == s3.get_object(Bucket="b", Key="k")["ETag"]


@pytest.mark.slow
def test_design_smoke_measures_every_figure() -> None:
    started = time.monotonic()
    design = measure(SMOKE["design"])
    assert time.monotonic() - started < 60
    runs = design["scaling"]["runs"]
    assert set(runs) == {"1", "8"}
    for run in runs.values():
        assert run["status"] == "succeeded" and run["completions_per_s"] > 0
        assert run["chunks"] >= 16 * run["workers"]
        assert 0 <= run["cpu_share"] and run["cpu_s"] > 0
    cost = design["cost"]
    assert cost["status"] == "succeeded" and cost["polls"] >= 1
    assert cost["billable"]["s3_put_class"] > 0 and cost["billable"]["lambda_requests"] > 0
    assert 0 < cost["aws_requests_per_1000_records"] < 100
    chaos = design["chaos"]
    assert chaos["records_lost"] == 0 and chaos["records_counted_twice"] == 0
    assert chaos["sink_rows_equal_succeeded"], chaos["jobs"]
    found = ratios(design)
    assert {
        "state_completions_per_s_at_50",
        "worker_scaling_efficiency_8",
        "aws_requests_per_1000_records",
        "submit_overhead_over_aws_calls",
        "dollars_per_million_records_async_over_sync",
    } <= set(found)
    assert found["worker_scaling_efficiency_8"] is not None and found["submit_overhead_over_aws_calls"] > 0
