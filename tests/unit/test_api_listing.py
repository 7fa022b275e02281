"""GET /jobs through the status handler: own jobs only, newest first, filters and cursors."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import BOB, Api, Aws, Reply, Worker, records
from .test_api_submit import assert_problem


def list_jobs(api: Api, params: dict[str, str] | None = None, **kwargs: Any) -> Reply:
    event = api.event("GET", "/jobs", **kwargs)
    event["queryStringParameters"] = params or None
    if api.kind == "http":
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (params or {}).items())
    return api.send(event)


def next_params(reply: Reply) -> dict[str, str]:
    assert reply.body["next"] and reply.headers["link"] == f'<{reply.body["next"]}>; rel="next"'
    return {k: v[0] for k, v in parse_qs(urlsplit(reply.body["next"]).query).items()}


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_pages_hold_only_own_jobs_newest_first(aws: Aws, api: Api, http_api: Api, kind: str) -> None:
    client = api if kind == "rest" else http_api
    # GIVEN five jobs of the caller and two of another caller
    mine = [client.submit_json({"records": records(1)}).body["job_id"] for _ in range(5)]
    theirs = {client.submit_json({"records": records(1)}, caller=BOB).body["job_id"] for _ in range(2)}
    # WHEN the caller pages with limit 2
    seen: list[str] = []
    params = {"limit": "2"}
    pages = 0
    while True:
        reply = list_jobs(client, params)
        assert reply.status == 200
        assert len(reply.body["items"]) <= 2
        seen += [item["job_id"] for item in reply.body["items"]]
        pages += 1
        if reply.body["next"] is None:
            break
        params = next_params(reply)
        assert params["limit"] == "2"
    # THEN every own job once, newest first, and none of the other caller's
    assert seen == mine[::-1] and pages == 3
    assert not theirs & set(seen)
    # AND the other caller sees exactly theirs
    assert {i["job_id"] for i in list_jobs(client, caller=BOB).body["items"]} == theirs


def test_status_and_time_filters(aws: Aws, api: Api, worker: Worker) -> None:
    done = api.submit_json({"records": records(1)}).body
    worker.drain()
    queued = api.submit_json({"records": records(1)}).body
    by_status = list_jobs(api, {"status": "succeeded"}).body["items"]
    assert [i["job_id"] for i in by_status] == [done["job_id"]]
    assert [i["job_id"] for i in list_jobs(api, {"status": "queued"}).body["items"]] == [queued["job_id"]]
    after = list_jobs(api, {"created_after": done["created_at"]}).body["items"]
    assert [i["job_id"] for i in after] == [queued["job_id"]]
    before = list_jobs(api, {"created_before": queued["created_at"]}).body["items"]
    assert [i["job_id"] for i in before] == [done["job_id"]]


def test_time_bounds_far_outside_the_key_range(aws: Aws, api: Api) -> None:
    job_id = api.submit_json({"records": records(1)}).body["job_id"]
    wide = {"created_after": "0001-01-01T00:00:00Z", "created_before": "9999-12-31T23:59:59Z"}
    assert [i["job_id"] for i in list_jobs(api, wide).body["items"]] == [job_id]
    for empty in ({"created_after": "9999-12-31T23:59:59Z"}, {"created_before": "0001-01-01T00:00:00Z"}):
        assert list_jobs(api, empty).body == {"items": [], "next": None}


def test_an_index_entry_of_another_owner_is_not_listed(aws: Aws, api: Api) -> None:
    # GIVEN the caller's index prefix holding an entry of a job owned by someone else
    theirs = api.submit_json({"records": records(1)}, caller=BOB).body["job_id"]
    [key] = [k for k in aws.keys("index/") if k.endswith(f"{theirs}.json")]
    mine = api.submit_json({"records": records(1)}).body["job_id"]
    [own_key] = [k for k in aws.keys("index/") if k.endswith(f"{mine}.json")]
    aws.put_json(own_key.rsplit("/", 1)[0] + "/" + key.rsplit("/", 1)[1], {})
    # THEN the listing reads the state and leaves it out
    assert [i["job_id"] for i in list_jobs(api).body["items"]] == [mine]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"limit": "\u00b2"},  # str.isdigit() holds for a superscript two; int() refuses it
        {"limit": "\u0661\u0660"},  # Arabic-Indic digits: int() would read 10
        {"limit": "0" * 4998 + "10"},  # beyond int()'s 4,300-digit limit
        {"limit": " 10"},
        {"limit": "+10"},
        {"limit": ""},
        {"status": "done"},
        {"status": "Succeeded"},
        {"created_after": "yesterday"},
        {"created_before": "2026-01-01T00:00:00"},
        {"created_after": "\uff12\uff10\uff12\uff16-01-01T00:00:00Z"},  # full-width digits
        {"created_after": "2026-01-01T00:00:00." + "1" * 5000 + "Z"},
        {"created_before": "2026-02-30T00:00:00Z"},
        {"cursor": "not-a-cursor"},
        {"cursor": "aW5kZXgvXy8uLi8"},
        {"sort": "asc"},
    ],
)
def test_invalid_query_is_a_400_problem(aws: Aws, api: Api, params: dict[str, str]) -> None:
    reply = list_jobs(api, params)
    assert_problem(reply, 400)
    assert reply.body["errors"][0]["parameter"] == next(iter(params))


def test_an_entry_of_another_moment_is_not_listed(aws: Aws, api: Api) -> None:
    # GIVEN a second index entry of the caller's job at another moment (a submit that took over a
    # stale idempotent claim writes one before it learns the job exists)
    job_id = api.submit_json({"records": records(1)}).body["job_id"]
    [key] = [k for k in aws.keys("index/") if k.endswith(f"{job_id}.json")]
    prefix, name = key.rsplit("/", 1)
    aws.put_json(f"{prefix}/{int(name[:13]) - 5:013d}{name[13:]}", {})
    # THEN the job is listed once
    assert [i["job_id"] for i in list_jobs(api).body["items"]] == [job_id]
