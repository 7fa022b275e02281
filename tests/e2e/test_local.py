"""examples/local applied to moto and served by the local runtime (authorization NONE, IAM enforced)."""

from __future__ import annotations

import http.client
import json
import math
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from async_jobs_local import JobsClient, LocalDeployment
from async_jobs_local.moto_patches.iam import DENIALS

from .cli_run import run_cli
from .conftest import assert_nothing_left, queue_depth, s3_keys, s3_lines, wait_for, wait_terminal

pytestmark = pytest.mark.slow

ROUTES = {
    "POST /jobs",
    "POST /jobs/uploads",
    "GET /jobs",
    "GET /jobs/{job_id}",
    "DELETE /jobs/{job_id}",
    "POST /jobs/{job_id}/retry",
}


@pytest.fixture(scope="module")
def stack(local_stack: LocalDeployment) -> LocalDeployment:
    return local_stack


@pytest.fixture(scope="module")
def client(stack: LocalDeployment) -> JobsClient:
    return JobsClient(stack.url)


def records(count: int, start: int = 0) -> list[dict[str, object]]:
    return [{"id": f"r{i}", "email": f"u{i}@example.com", "n": i} for i in range(start, start + count)]


def test_outputs_describe_the_deployment(stack: LocalDeployment) -> None:
    # GIVEN the applied example WHEN its outputs are read THEN they carry what the runtime plays
    outputs = stack.outputs
    assert outputs["api_type"] == "rest"
    assert outputs["api_authorization"] == "NONE"
    assert set(outputs["api_routes"]) == ROUTES
    assert outputs["api_routes"]["GET /jobs/{job_id}"] == outputs["status_function_name"]
    assert outputs["api_routes"]["GET /jobs"] == outputs["status_function_name"]
    assert outputs["api_routes"]["POST /jobs"] == outputs["submit_function_name"]
    mapping = outputs["worker_event_source_mapping"]
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["enabled"] is False  # moto's own poller is off; the runtime plays the mapping
    assert stack.event_source is not None
    assert stack.event_source.maximum_concurrency == mapping["maximum_concurrency"]
    redrive = json.loads(stack.queue_attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == outputs["dlq_arn"]


def test_second_plan_has_no_changes(stack: LocalDeployment) -> None:
    assert stack.plan_has_changes() is False


def test_job_runs_to_success_over_http(stack: LocalDeployment, client: JobsClient) -> None:
    # GIVEN 2,500 records WHEN they are submitted THEN 202 at once, and the job ends succeeded
    response = client.submit(records(2500), metadata={"batch": "e2e"})
    assert response.status == 202, response.body
    job = response.json()
    assert job["status"] == "queued"
    assert response.headers["location"].startswith(f"{stack.url}/")
    assert int(response.headers["retry-after"]) >= 0

    # the Location header works as given (with the stage prefix)
    located = client.request("GET", response.headers["location"])
    assert located.status == 200

    final = wait_terminal(client, job["job_id"])
    assert final["status"] == "succeeded"
    assert final["total_records"] == final["processed_records"] == final["succeeded_records"] == 2500
    assert final["failed_records"] == 0
    assert final["progress"] == 1
    assert final["metadata"] == {"batch": "e2e"}
    chunk_size = 1000
    results = s3_keys(stack, f"jobs/{job['job_id']}/results/")
    assert len(results) == math.ceil(2500 / chunk_size)
    assert sum(len(s3_lines(stack, key)) for key in results) == 2500

    # ETag / If-None-Match on a terminal job
    again = client.get(job["job_id"])
    assert client.get(job["job_id"], **{"If-None-Match": again.headers["etag"]}).status == 304


def test_ndjson_body_and_malformed_line(client: JobsClient) -> None:
    ok = client.submit_ndjson('{"id": "a"}\n{"id": "b"}\n')
    assert ok.status == 202
    assert wait_terminal(client, ok.json()["job_id"])["processed_records"] == 2

    bad = client.submit_ndjson('{"id": "a"}\n{"id": \n')
    assert bad.status == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "2" in json.dumps(bad.json())  # names the line


def test_unknown_route_and_job(client: JobsClient) -> None:
    # a REST API's own 403, as the module's gateway response shapes it: a problem
    unknown = client.request("GET", "/nothing-here")
    assert unknown.status == 403 and unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["status"] == 403 and unknown.json()["detail"] == "Missing Authentication Token"
    for method in ("PUT", "TRACE", "PROPFIND", "CONNECT"):  # never the HTTP server's HTML 501
        other = client.request(method, "/jobs")
        assert other.status == 403 and other.headers["content-type"] == "application/problem+json", method
    assert client.get("00000000-0000-4000-8000-000000000000").status == 404
    assert client.get("not-a-uuid").status == 400


def test_missing_keys_answer_404_to_the_functions_as_on_aws(
    stack: LocalDeployment, client: JobsClient
) -> None:
    # S3 answers 404 for a missing key only to a caller whose s3:ListBucket passes IAM's implicit
    # check (no s3:prefix in its context), 403 to anyone else; the local stack answers the same.
    denials_before = len(DENIALS)
    # a first-time Idempotency-Key: submit reads idempotency/<key> before it exists
    key = f"first-{uuid.uuid4()}"
    first = client.submit(records(3), **{"Idempotency-Key": key})
    assert first.status == 202, (first.status, first.body[:300])
    # an unknown job: status reads jobs/<id>/job.json, which does not exist
    unknown = client.get(str(uuid.uuid4()))
    assert unknown.status == 404, (unknown.status, unknown.body[:300])
    # the worker reads markers and claims before it writes them
    assert wait_terminal(client, first.json()["job_id"])["status"] == "succeeded"
    refused = [str(d) for d in list(DENIALS)[denials_before:] if d.action == "s3:ListBucket"]
    assert refused == []


def test_cancel_before_any_chunk_starts(stack: LocalDeployment, client: JobsClient) -> None:
    # GIVEN a job whose messages are not yet delivered (the mapping is paused)
    stack.pause_event_source()
    try:
        job = client.submit(records(5000)).json()
        # WHEN it is cancelled THEN 202 and it ends cancelled
        response = client.cancel(job["job_id"])
        assert response.status == 202, response.body
        assert response.json()["status"] in ("cancelling", "cancelled")
    finally:
        stack.resume_event_source()
    final = wait_terminal(client, job["job_id"])
    assert final["status"] == "cancelled"
    assert final["succeeded_records"] == 0
    # a terminal job cannot be cancelled again
    assert client.cancel(job["job_id"]).status == 409


def test_poison_message_ends_its_job_and_is_kept_when_the_dlq_is_drained(
    stack: LocalDeployment, client: JobsClient
) -> None:
    # GIVEN a job whose input object is lost before the worker splits it (every receive fails)
    sqs = stack.client("sqs")
    queue_url = stack.outputs["queue_url"]
    dlq_url = stack.outputs["dlq_url"]
    visibility = stack.queue_attributes["VisibilityTimeout"]
    max_receive_count = json.loads(stack.queue_attributes["RedrivePolicy"])["maxReceiveCount"]
    assert queue_depth(stack, dlq_url) == 0
    stack.pause_event_source()
    try:
        job = client.submit(records(10)).json()
        bucket, key = stack.outputs["state_bucket_name"], f"jobs/{job['job_id']}/input.ndjson"
        s3 = stack.client("s3")
        for version in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])  # gone for good
        # redelivery after 1 s instead of the deployed visibility timeout, to keep the test short
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    finally:
        stack.resume_event_source()
    try:
        # WHEN the worker fails it on every receive
        # THEN on the last receive the job is ended (failed) before the message goes to the DLQ
        final = wait_terminal(client, job["job_id"], timeout=30 + 3 * max_receive_count)
        assert final["status"] == "failed"
        # AND the DLQ's mapping drains it, keeping the message under the job for operators
        prefix = f"jobs/{job['job_id']}/dead-letters/"
        [copy] = wait_for(lambda: s3_keys(stack, prefix), timeout=30, what="the dead-letter copy")
        wait_for(lambda: queue_depth(stack, dlq_url) == 0, timeout=30, what="the DLQ to drain")
        kept = json.loads(s3_lines(stack, copy)[0])
        assert json.loads(kept["body"]) == {"kind": "split", "job_id": job["job_id"]}
        assert queue_depth(stack, queue_url) == 0
        # counted once: the last receive already failed the job
        assert client.get(job["job_id"]).json()["status"] == "failed"
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": visibility})
    assert stack.event_source is not None
    assert stack.event_source.stats.failed_messages >= max_receive_count


class _KillChunk:
    """The pool's kill seam (``FunctionPool.faults``): kills the worker process as soon as an
    invocation carrying chunk ``chunk`` starts, as Lambda does on a timeout or out of memory."""

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.kills = 0
        self._targeted = threading.local()

    def wrap(self, invoke: Any) -> Any:
        def targeted(name: str, event: dict[str, Any]) -> Any:
            bodies = [json.loads(record["body"]) for record in event["Records"]]
            self._targeted.on = any(b.get("kind") == "chunk" and b.get("chunk") == self.chunk for b in bodies)
            try:
                return invoke(name, event)
            finally:
                self._targeted.on = False

        return targeted

    def arm_kill(self, kill: Any, records: Any = None) -> Any:
        if getattr(self._targeted, "on", False):
            self.kills += 1
            kill()
        return lambda: None


def test_a_chunk_whose_worker_is_killed_on_every_receive_ends_its_job_and_a_retry_completes_it(
    stack: LocalDeployment, client: JobsClient
) -> None:
    # GIVEN a job of two chunks whose second chunk's worker is killed on every receive
    # (nothing of the worker runs: no last-receive accounting)
    sqs = stack.client("sqs")
    queue_url, dlq_url = stack.outputs["queue_url"], stack.outputs["dlq_url"]
    visibility = stack.queue_attributes["VisibilityTimeout"]
    max_receive_count = json.loads(stack.queue_attributes["RedrivePolicy"])["maxReceiveCount"]
    source, pool = stack.event_source, stack.pools[stack.outputs["worker_function_name"]]
    assert source is not None and pool.faults is None
    killer = _KillChunk(1)
    source_invoke = source._invoke
    stack.pause_event_source()
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})  # quick redelivery
    source._invoke = killer.wrap(source_invoke)
    pool.faults = killer  # type: ignore[assignment]
    stack.resume_event_source()
    try:
        job = client.submit(records(1500)).json()  # chunks of 1000: chunk 1 holds records 1000..1499
        # WHEN its message reaches the DLQ after max_receive_count kills
        final = wait_terminal(client, job["job_id"], timeout=60 + 3 * max_receive_count)
    finally:
        pool.faults = None
        source._invoke = source_invoke
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": visibility})
    # THEN the job ended with exactly that chunk's records failed, each counted once
    assert killer.kills == max_receive_count
    assert final["status"] in ("failed", "completed_with_errors")
    counts = (final["succeeded_records"], final["failed_records"], final["processed_records"])
    assert counts == (1000, 500, 1500)
    assert final["errors"][0]["record_index"] == 1000
    assert "dead-lettered after" in final["errors"][0]["message"]
    # AND the DLQ was drained by the worker, the message kept under the job
    wait_for(lambda: queue_depth(stack, dlq_url) == 0, timeout=30, what="the DLQ to drain")
    assert len(s3_keys(stack, f"jobs/{job['job_id']}/dead-letters/")) == 1

    # WHEN, the cause gone, the job is retried
    retried = client.request("POST", f"/jobs/{job['job_id']}/retry")
    assert retried.status == 202, retried.body[:300]
    assert (retried.json()["status"], retried.json()["failed_records"]) == ("running", 0)
    # THEN only the failed chunk runs again and the job succeeds, each record once in the sink
    final = wait_terminal(client, job["job_id"], timeout=60)
    assert final["status"] == "succeeded", final
    counts = (final["succeeded_records"], final["failed_records"], final["processed_records"])
    assert counts == (1500, 0, 1500)
    lines = [
        json.loads(line)["record_index"]
        for key in s3_keys(stack, f"jobs/{job['job_id']}/results/")
        for line in s3_lines(stack, key)
    ]
    assert sorted(lines) == list(range(1500))


def test_functions_run_their_packages_under_their_own_roles(stack: LocalDeployment) -> None:
    # GIVEN the deployment WHEN its functions are started THEN each runs its built package alone,
    # with its deployed role's temporary credentials, and moto checks IAM
    assert stack.iam.active
    assert stack.init_errors == {}
    for name, spec in stack.functions.items():
        assert spec.code_dir.parent == stack.packages_dir, name
        assert spec.role.endswith(":role/" + spec.role.rsplit("/", 1)[-1]) and spec.credentials, name
        assert spec.credentials().access_key_id.startswith("ASIA"), name  # an STS session, not a user key
    roles = {spec.role for spec in stack.functions.values()}
    assert len(roles) == len(stack.functions)  # one role per function
    # a caller moto does not know is refused, as AWS refuses it
    stranger = boto3.client(
        "s3",
        endpoint_url=stack.endpoint_url,
        region_name=stack.region,
        aws_access_key_id="AKIA" + "0" * 16,
        aws_secret_access_key="not-a-key",
    )
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        stranger.list_objects_v2(Bucket=stack.outputs["state_bucket_name"])


def _without_action(document: dict[str, Any], action: str) -> dict[str, Any]:
    statements = []
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        kept = [name for name in actions if name != action]
        if kept:
            statements.append({**statement, "Action": kept})
    return {**document, "Statement": statements}


def test_worker_denied_an_action_it_needs_does_not_succeed_until_it_is_given_back(
    stack: LocalDeployment, client: JobsClient
) -> None:
    # GIVEN the worker's role without sqs:SendMessage (the split sends the chunk messages)
    iam = stack.client("iam")
    worker = stack.outputs["worker_function_name"]
    role = stack.functions[worker].role.rsplit("/", 1)[-1]
    policies = {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    granting = [name for name, doc in policies.items() if "sqs:SendMessage" in json.dumps(doc)]
    assert granting, f"no inline policy of {role} grants sqs:SendMessage: {policies}"
    log_path = stack.functions[worker].log_path
    assert log_path is not None
    logged = len(log_path.read_text()) if log_path.exists() else 0
    denied_before = len(DENIALS)
    for name in granting:
        document = _without_action(policies[name], "sqs:SendMessage")
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
    try:
        # WHEN a job is submitted (submit's own role still may send)
        response = client.submit(records(10))
        assert response.status == 202, response.body
        job_id = response.json()["job_id"]

        # THEN IAM refuses the worker's role the send of the chunk messages (logs/iam.log) ...
        def worker_denied() -> bool:
            return any(
                f":assumed-role/{role}/" in denial.principal and denial.action == "sqs:SendMessage"
                for denial in list(DENIALS)[denied_before:]
            )

        wait_for(worker_denied, timeout=60, what=f"an AccessDenied of sqs:SendMessage to {role}")
        assert f"assumed-role/{role}/" in (stack.log_dir / "iam.log").read_text()

        # ... the worker's split fails with that error, and the job does not succeed
        def split_failed() -> bool:
            text = log_path.read_text()[logged:]
            return job_id in text and "ClientError" in text

        wait_for(split_failed, timeout=30, what="the failed split in the worker's log")
        assert client.get(job_id).json()["status"] != "succeeded"
    finally:
        for name in granting:
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(policies[name]))
    # WHEN the policy is back THEN a new job succeeds
    again = client.submit(records(10))
    assert again.status == 202, again.body
    assert wait_terminal(client, again.json()["job_id"])["status"] == "succeeded"
    # and the denied job is not lost: its split returns after the visibility timeout and succeeds
    visibility = int(stack.queue_attributes["VisibilityTimeout"])
    assert wait_terminal(client, job_id, timeout=visibility + 60)["status"] == "succeeded"


def _post(url_host: str, port: int, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(url_host, port, timeout=120)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def _concurrently(count: int, work: Any) -> list[Any]:
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()  # all connect at the same moment
        try:
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - a connection error is a result to report
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def test_fifty_concurrent_clients_each_submit_a_thousand_records(stack: LocalDeployment) -> None:
    # GIVEN 50 clients that POST 1,000 records each at the same moment
    host, port = stack.url.removeprefix("http://").split(":")
    body = json.dumps({"records": records(1000)}).encode()
    answers = _concurrently(50, lambda index: _post(host, int(port), "/jobs", body))
    # THEN every one gets 202 (no reset connection, no throttle)
    errors = [answer for answer in answers if not (isinstance(answer, tuple) and answer[0] == 202)]
    assert errors == [], errors[:3]
    # and every job succeeds with its 1,000 records
    client = JobsClient(stack.url)
    jobs = [wait_terminal(client, answer[1]["job_id"], timeout=300) for answer in answers]
    assert [job["status"] for job in jobs] == ["succeeded"] * 50
    assert [job["processed_records"] for job in jobs] == [1000] * 50
    assert (
        stack.pools[stack.outputs["submit_function_name"]].peak
        <= stack.pools[stack.outputs["submit_function_name"]].max_size
    )


def test_a_hundred_concurrent_connections_get_answers(stack: LocalDeployment) -> None:
    host, port = stack.url.removeprefix("http://").split(":")

    def get(index: int) -> int:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            connection.request("GET", f"/jobs/{uuid.uuid4()}")
            return connection.getresponse().status
        finally:
            connection.close()

    assert _concurrently(100, get) == [404] * 100


def test_without_authorization_every_job_is_listed_under_the_shared_index(
    stack: LocalDeployment, client: JobsClient
) -> None:
    # GIVEN three new jobs on an API without authorization (no owner: one shared index)
    jobs = [client.submit(records(1)).json()["job_id"] for _ in range(3)]
    # WHEN the newest are paged two at a time (the status role lists index/ under its s3:prefix
    # condition, with moto's IAM enforced)
    first = client.request("GET", "/jobs?limit=2")
    assert first.status == 200, first.body
    second = client.request("GET", first.json()["next"])
    assert second.status == 200, second.body
    # THEN they come newest first across the pages, and their index entries are under index/_/
    assert [item["job_id"] for item in first.json()["items"]] == jobs[:0:-1]
    assert second.json()["items"][0]["job_id"] == jobs[0]
    assert first.headers["link"] == f'<{first.json()["next"]}>; rel="next"'
    entries = s3_keys(stack, "index/_/")
    assert all(any(k.endswith(f"-{j}.json") for k in entries) for j in jobs)


def test_cli_submits_a_large_ndjson_file_through_an_upload_and_waits_for_success(
    stack: LocalDeployment, tmp_path: Path
) -> None:
    # GIVEN an NDJSON file far above the inline limit: 200 MB, 100,000 records by default
    # (ASYNC_JOBS_E2E_UPLOAD_MB sets the size)
    megabytes = int(os.environ.get("ASYNC_JOBS_E2E_UPLOAD_MB", "200"))
    count = min(1_000 * megabytes, 100_000)  # the module's default max_records_per_job
    pad = "p" * (megabytes * 1_000_000 // count - 60)
    source = tmp_path / "big.ndjson"
    with source.open("w") as out:
        for index in range(count):
            out.write(
                json.dumps({"id": f"r{index:07d}", "email": f"u{index}@example.com", "pad": pad}) + "\n"
            )
    size = source.stat().st_size
    # WHEN the CLI submits it and waits (URL from the environment, the stack takes no authorization)
    env = {**os.environ, "ASYNC_JOBS_URL": stack.url}
    run = run_cli("--auth", "none", "submit", str(source), "--wait", "--interval", "0.5", env=env)
    # THEN it went by upload, the job succeeded with every record, and the file was streamed
    assert run.code == 0, run.err
    assert f"uploading {size:,} bytes" in run.err
    job = json.loads(run.out)
    assert job["status"] == "succeeded"
    assert job["total_records"] == job["succeeded_records"] == count
    # the figures (streaming itself is asserted in tests/unit/test_client.py, where a file read
    # whole stands out of the noise of a short-lived process)
    baseline = run_cli("--auth", "none", "status", job["job_id"], env=env)
    assert baseline.code == 0, baseline.err
    print(f"\nCLI upload of {size / 1e6:.0f} MB, {count:,} records: {run.seconds:.1f}s, ", end="")
    print(f"peak RSS {run.peak_rss_mib:.0f} MiB (status call: {baseline.peak_rss_mib:.0f} MiB)")


def test_destroy_leaves_nothing_behind(stack: LocalDeployment) -> None:
    stack.destroy()
    assert_nothing_left(stack)
