"""The async-jobs client and CLI against a stub HTTP server on 127.0.0.1: the protocol each command
speaks (routes, headers, bodies, the streamed upload), problems as ``title: detail``, exit codes."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from async_jobs.contract import CONTRACT_FILE, contract
from async_jobs_client import cli
from async_jobs_client.cli import main
from async_jobs_client.inputs import JSON, NDJSON, detect_content_type

JOB_ID = "0b6f8f0e-1d5a-4c4e-9a57-3f7d2c1e9b10"
PROBLEM = "application/problem+json"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Stub:
    url: str
    # (method, path) -> answers in order; the last one repeats.
    routes: dict[tuple[str, str], list[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, body: Any = None, **headers: str) -> None:
        raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        if body is not None and not isinstance(body, bytes):
            headers.setdefault("Content-Type", PROBLEM if status >= 400 else "application/json")
        self.routes.setdefault((method, path), []).append((status, headers, raw))


@pytest.fixture
def stub() -> Iterator[Stub]:
    server_stub = Stub("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            if self.headers.get("Transfer-Encoding"):
                # S3 presigned PUTs take no chunked bodies; a stub that read them would hide that.
                body = b"chunked"
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            server_stub.seen.append(
                Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            answers = server_stub.routes.get((self.command, path)) or [(404, {}, b'{"message":"Not Found"}')]
            status, headers, raw = answers.pop(0) if len(answers) > 1 else answers[0]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_stub.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server_stub
    server.shutdown()
    server.server_close()


def job(status: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": JOB_ID, "status": status, "total_records": 4, "processed_records": 4, **extra}


def run(stub: Stub, *argv: str, auth: str = "none") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--url", stub.url, "--auth", auth, *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def write_ndjson(path: Path, count: int) -> bytes:
    data = b"".join(json.dumps({"id": i, "pad": "x" * 40}).encode() + b"\n" for i in range(count))
    path.write_bytes(data)
    return data


def test_small_ndjson_goes_inline_signed_with_sigv4(
    stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDCLIENTTEST000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    data = write_ndjson(tmp_path / "in.ndjson", 3)
    stub.answer("POST", "/v1/jobs", 202, job("queued"))
    code, out, err = run(stub, "submit", str(tmp_path / "in.ndjson"), "--idempotency-key", "k-1", auth="auto")
    assert (code, err) == (0, "")
    assert json.loads(out)["job_id"] == JOB_ID
    [request] = stub.seen
    assert (request.method, request.path, request.body) == ("POST", "/v1/jobs", data)
    assert request.headers["content-type"] == NDJSON
    assert request.headers["idempotency-key"] == "k-1"
    authorization = request.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDCLIENTTEST000001/")
    assert "/us-east-1/execute-api/aws4_request" in authorization
    assert "host" in authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert request.headers["x-amz-date"]


def test_token_and_api_key_headers(stub: Stub, tmp_path: Path) -> None:
    stub.answer("GET", f"/v1/jobs/{JOB_ID}", 200, job("running"))
    assert run(stub, "--token", "tok", "status", JOB_ID, auth="token")[0] == 0
    assert run(stub, "--api-key", "key-1", "status", JOB_ID, auth="api-key")[0] == 0
    assert stub.seen[0].headers["authorization"] == "Bearer tok"
    assert stub.seen[1].headers["x-api-key"] == "key-1"
    assert "authorization" not in stub.seen[1].headers


def test_large_json_document_goes_by_upload_as_ndjson_with_the_slot_headers(
    stub: Stub, tmp_path: Path
) -> None:
    records = [{"id": i, "pad": "y" * 50} for i in range(200)]
    source = tmp_path / "big.json"
    source.write_text(json.dumps({"records": records}))
    slot = {
        "job_id": JOB_ID,
        "status": "awaiting_upload",
        "upload": {
            "url": stub.url.replace("/v1", "") + "/bucket/uploads/key?X-Amz-Signature=abc",
            "method": "PUT",
            "headers": {"Content-Type": NDJSON, "If-None-Match": "*"},
            "expires_at": "2030-01-01T00:00:00Z",
        },
    }
    stub.answer("POST", "/v1/jobs/uploads", 201, slot)
    stub.answer("PUT", "/bucket/uploads/key", 200)
    code, out, err = run(stub, "submit", str(source), "--max-inline-bytes", "1000", "--idempotency-key", "k")
    assert code == 0, err
    assert "applies to inline submits only" in err
    create, put = stub.seen
    assert (create.method, create.path) == ("POST", "/v1/jobs/uploads")
    assert (put.method, put.path) == ("PUT", "/bucket/uploads/key?X-Amz-Signature=abc")
    assert put.headers["content-type"] == NDJSON
    assert put.headers["if-none-match"] == "*"
    assert "authorization" not in put.headers  # the presigned URL carries its own signature
    assert "transfer-encoding" not in put.headers
    assert [json.loads(line) for line in put.body.splitlines()] == records
    assert int(put.headers["content-length"]) == len(put.body)
    assert not list(tmp_path.glob("*.ndjson"))  # the converted copy is removed


def test_a_failed_upload_is_reported(stub: Stub, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in.ndjson", 50)
    slot = {"job_id": JOB_ID, "upload": {"url": stub.url + "/put", "method": "PUT", "headers": {}}}
    stub.answer("POST", "/v1/jobs/uploads", 201, slot)
    stub.answer("PUT", "/v1/put", 412, b"<Error><Code>PreconditionFailed</Code></Error>")
    code, _, err = run(stub, "submit", str(tmp_path / "in.ndjson"), "--max-inline-bytes", "10")
    assert code == cli.EXIT_API == 3
    assert "HTTP 412" in err and "PreconditionFailed" in err


def test_problem_json_printed_as_title_detail(stub: Stub, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in.ndjson", 1)
    stub.answer(
        "POST", "/v1/jobs", 400, {"title": "Bad Request", "status": 400, "detail": "line 1: not JSON"}
    )
    code, out, err = run(stub, "submit", str(tmp_path / "in.ndjson"))
    assert (code, out, err) == (3, "", "Bad Request: line 1: not JSON\n")


def test_wait_polls_with_etag_and_exits_with_the_outcome(stub: Stub) -> None:
    path = f"/v1/jobs/{JOB_ID}"
    stub.answer("GET", path, 200, job("running", processed_records=1), ETag='"e1"', Retry_After="1")
    stub.answer("GET", path, 304, ETag='"e1"')
    stub.answer("GET", path, 200, job("completed_with_errors"), ETag='"e2"')
    code, out, err = run(stub, "wait", JOB_ID, "--interval", "0.01")
    assert code == 1
    assert json.loads(out)["status"] == "completed_with_errors"
    assert [s.headers.get("if-none-match") for s in stub.seen] == [None, '"e1"', '"e1"']
    assert err.splitlines() == ["running 1/4 records (25.0%)", "completed_with_errors 4/4 records (100.0%)"]


@pytest.mark.parametrize("retry_after", ["\u00b2", "0" * 5000 + "1", "1.5", "-1", " 1", ""])
def test_wait_ignores_a_malformed_retry_after(stub: Stub, retry_after: str) -> None:
    # GIVEN a Retry-After that is not 1*DIGIT in ASCII ("²" passes str.isdigit(), float refuses it)
    path = f"/v1/jobs/{JOB_ID}"
    stub.answer("GET", path, 200, job("running"), Retry_After=retry_after)
    stub.answer("GET", path, 200, job("succeeded"))
    # WHEN the client waits THEN it polls at its own interval and ends with the outcome
    code, out, _ = run(stub, "wait", JOB_ID, "--interval", "0.01")
    assert code == 0 and json.loads(out)["status"] == "succeeded"


@pytest.mark.parametrize(
    ("status", "code"),
    [("succeeded", 0), ("failed", 1), ("completed_with_errors", 1), ("cancelled", 1), ("expired", 1)],
)
def test_exit_code_of_each_outcome(stub: Stub, status: str, code: int) -> None:
    stub.answer("GET", f"/v1/jobs/{JOB_ID}", 200, job(status))
    assert run(stub, "wait", JOB_ID)[0] == code


def test_wait_times_out_with_exit_4(stub: Stub) -> None:
    stub.answer("GET", f"/v1/jobs/{JOB_ID}", 200, job("running"))
    code, out, err = run(stub, "wait", JOB_ID, "--interval", "0.01", "--wait-timeout", "0.1")
    assert (code, out) == (4, "")
    assert "did not end" in err


def test_cancel_and_retry_routes(stub: Stub) -> None:
    stub.answer("DELETE", f"/v1/jobs/{JOB_ID}", 202, job("cancelling"))
    stub.answer("POST", f"/v1/jobs/{JOB_ID}/retry", 409, {"title": "Conflict", "detail": "nothing failed"})
    assert run(stub, "cancel", JOB_ID)[0] == 0
    assert run(stub, "retry", JOB_ID)[::2] == (3, "Conflict: nothing failed\n")
    assert [(s.method, s.path) for s in stub.seen] == [
        ("DELETE", f"/v1/jobs/{JOB_ID}"),
        ("POST", f"/v1/jobs/{JOB_ID}/retry"),
    ]


def test_list_without_the_route_is_explained(stub: Stub) -> None:
    stub.answer("GET", "/v1/jobs", 403, {"message": "Missing Authentication Token"})
    code, out, err = run(stub, "list", "--status", "running")
    assert (code, out) == (3, "")
    assert "does not list jobs" in err and "403" in err
    assert stub.seen[0].path == "/v1/jobs?status=running"


def test_list_prints_the_page(stub: Stub) -> None:
    stub.answer("GET", "/v1/jobs", 200, {"items": [job("queued")], "next": None})
    code, out, _ = run(stub, "list")
    assert code == 0 and json.loads(out)["items"][0]["job_id"] == JOB_ID


def test_list_filters_cursor_and_all_pages(stub: Stub) -> None:
    # GIVEN two pages, the first linking to the second
    second = f"{stub.url}/jobs?status=failed&limit=1&cursor=c2"
    stub.answer("GET", "/v1/jobs", 200, {"items": [job("failed")], "next": second})
    stub.answer("GET", "/v1/jobs", 200, {"items": [job("failed", job_id="j2")], "next": None})
    # WHEN --all lists them with filters
    code, out, err = run(
        stub,
        "list",
        "--all",
        "--status",
        "failed",
        "--created-after",
        "2026-01-01T00:00:00Z",
        "--created-before",
        "2026-02-01T00:00:00Z",
        "--limit",
        "1",
        "--cursor",
        "c1",
    )
    # THEN every filter is sent, the next link is followed, and all items print as one list
    assert code == 0, err
    assert [item["job_id"] for item in json.loads(out)["items"]] == [JOB_ID, "j2"]
    assert [s.path for s in stub.seen] == [
        "/v1/jobs?status=failed&created_after=2026-01-01T00%3A00%3A00Z"
        "&created_before=2026-02-01T00%3A00%3A00Z&limit=1&cursor=c1",
        "/v1/jobs?status=failed&limit=1&cursor=c2",
    ]


def test_metadata_and_callback_url_go_with_inline_and_upload_submits(stub: Stub, tmp_path: Path) -> None:
    # GIVEN an NDJSON file and a JSON document, both small enough to go inline, and a big file
    write_ndjson(tmp_path / "in.ndjson", 2)
    (tmp_path / "in.json").write_text(json.dumps({"records": [{"a": 1}], "metadata": {"old": 1}}))
    write_ndjson(tmp_path / "big.ndjson", 50)
    stub.answer("POST", "/v1/jobs", 202, job("queued"))
    slot = {"job_id": JOB_ID, "upload": {"url": stub.url + "/put", "method": "PUT", "headers": {}}}
    stub.answer("POST", "/v1/jobs/uploads", 201, slot)
    stub.answer("PUT", "/v1/put", 200)
    extra = ("--metadata", '{"batch": 7}', "--callback-url", "https://hooks.example.com/done")
    # WHEN each is submitted with --metadata and --callback-url
    assert run(stub, "submit", str(tmp_path / "in.ndjson"), *extra)[0] == 0
    assert run(stub, "submit", str(tmp_path / "in.json"), *extra)[0] == 0
    assert run(stub, "submit", str(tmp_path / "big.ndjson"), "--max-inline-bytes", "100", *extra)[0] == 0
    # THEN every job creation carries both: inline as a JSON document, the upload in its body
    ndjson, document, upload, _put = stub.seen
    for request in (ndjson, document, upload):
        assert request.headers["callback-url"] == "https://hooks.example.com/done"
        assert request.headers["content-type"] == JSON
        assert json.loads(request.body)["metadata"] == {"batch": 7}
    assert json.loads(ndjson.body)["records"] == [{"id": i, "pad": "x" * 40} for i in range(2)]
    assert json.loads(document.body)["records"] == [{"a": 1}]
    assert upload.path == "/v1/jobs/uploads"


def test_metadata_must_be_a_json_object(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_ndjson(tmp_path / "in.ndjson", 1)
    assert run(stub, "submit", str(tmp_path / "in.ndjson"), "--metadata", "[1]")[0] == cli.EXIT_USAGE
    assert "expected a JSON object" in capsys.readouterr().err
    assert not stub.seen


def test_errors_report_is_downloaded_from_its_link_without_authorization(stub: Stub, tmp_path: Path) -> None:
    report = b'{"record_index": 3, "message": "bad email"}\n'
    link = stub.url.replace("/v1", "") + "/bucket/errors.ndjson?X-Amz-Signature=s"
    stub.answer("GET", f"/v1/jobs/{JOB_ID}", 200, job("completed_with_errors", links={"errors": link}))
    stub.answer("GET", "/bucket/errors.ndjson", 200, report)
    output = tmp_path / "errors.ndjson"
    assert run(stub, "--token", "t", "errors", JOB_ID, "-o", str(output), auth="token")[0] == 0
    assert output.read_bytes() == report
    assert "authorization" not in stub.seen[1].headers


def test_no_errors_report(stub: Stub) -> None:
    stub.answer("GET", f"/v1/jobs/{JOB_ID}", 200, job("succeeded", links={}))
    code, out, err = run(stub, "errors", JOB_ID)
    assert (code, out) == (0, "") and "no errors report" in err


def test_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNC_JOBS_URL", raising=False)
    out, err = io.StringIO(), io.StringIO()
    assert main(["status", JOB_ID], out, err) == 2 and "--url" in err.getvalue()
    err = io.StringIO()
    assert main(["--url", "http://127.0.0.1:9", "--auth", "token", "status", JOB_ID], out, err) == 2
    assert "--token" in err.getvalue()
    err = io.StringIO()
    assert (
        main(["--url", "http://127.0.0.1:9", "--auth", "none", "submit", str(tmp_path / "no")], out, err) == 2
    )


def test_exit_codes_do_not_collide_and_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the codes for usage, a job that did not succeed, API errors and timeouts
    codes = {
        "ok": cli.EXIT_OK,
        "job": cli.EXIT_JOB_NOT_SUCCEEDED,
        "usage": cli.EXIT_USAGE,
        "api": cli.EXIT_API,
        "timeout": cli.EXIT_TIMEOUT,
    }
    assert len(set(codes.values())) == len(codes)
    # WHEN `submit` runs without its file THEN argparse's usage exit is the documented usage code
    assert main(["--url", "http://127.0.0.1:9", "submit"]) == cli.EXIT_USAGE
    assert "the following arguments are required: file" in capsys.readouterr().err
    # AND --help lists every code and every environment variable the client reads
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    for code in codes.values():
        assert f"\n  {code}  " in help_text
    for variable in ("ASYNC_JOBS_URL", "ASYNC_JOBS_TOKEN", "ASYNC_JOBS_API_KEY", "AWS_PROFILE", "AWS_REGION"):
        assert variable in help_text


def test_every_option_has_help() -> None:
    parser = cli.parser()
    subparsers = next(a for a in parser._actions if a.choices and a.dest == "command")
    for name, sub in [("", parser), *subparsers.choices.items()]:  # type: ignore[union-attr]
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_version_is_the_release_version(capsys: pytest.CaptureFixture[str]) -> None:
    version = (Path(__file__).resolve().parents[2] / "VERSION").read_text().strip()
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"async-jobs {version}\n"


def test_the_client_calls_the_contract_routes(stub: Stub, tmp_path: Path) -> None:
    # GIVEN the client's packaged contract THEN it is the module's contract, byte for byte
    assert Path(cli.__file__).with_name("contract.json").read_bytes() == CONTRACT_FILE.read_bytes()
    # WHEN every command that calls the API runs
    write_ndjson(tmp_path / "in.ndjson", 2)
    slot = {"job_id": JOB_ID, "upload": {"url": stub.url + "/put", "method": "PUT", "headers": {}}}
    stub.answer("POST", "/v1/jobs", 202, job("queued"))
    stub.answer("POST", "/v1/jobs/uploads", 201, slot)
    stub.answer("PUT", "/v1/put", 200)
    stub.answer("GET", "/v1/jobs", 200, {"items": [], "next": None})
    stub.answer("GET", f"/v1/jobs/{JOB_ID}", 200, job("succeeded"))
    stub.answer("DELETE", f"/v1/jobs/{JOB_ID}", 202, job("cancelled"))
    stub.answer("POST", f"/v1/jobs/{JOB_ID}/retry", 202, job("queued"))
    for argv in (
        ("submit", str(tmp_path / "in.ndjson")),
        ("submit", str(tmp_path / "in.ndjson"), "--max-inline-bytes", "1"),
        ("list",),
        ("status", JOB_ID),
        ("cancel", JOB_ID),
        ("retry", JOB_ID),
    ):
        assert run(stub, *argv)[0] == 0, argv
    # THEN the API calls are exactly the contract's routes
    called = {
        (s.method, s.path.split("?")[0].removeprefix("/v1").replace(JOB_ID, "{job_id}")) for s in stub.seen
    }
    assert called - {("PUT", "/put")} == {(r.method, r.path) for r in contract().routes}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.ndjson", '{"records": 1}\n', NDJSON),
        ("a.json", '{"a": 1}\n{"a": 2}\n', JSON),
        ("a.txt", '{"a": 1}\n{"a": 2}\n', NDJSON),
        ("a.txt", '{"a": 1}\n', NDJSON),
        ("a.txt", '{"records": [{"a": 1}]}\n', JSON),
        ("a.txt", '{\n  "records": []\n}\n', JSON),
    ],
)
def test_content_type_by_extension_then_sniffing(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert detect_content_type(path) == expected


@pytest.mark.slow
def test_an_upload_is_streamed_not_read_whole(stub: Stub, tmp_path: Path) -> None:
    # GIVEN a 64 MB NDJSON file WHEN the installed CLI uploads it THEN its peak memory stays
    # within half the file's size of a call that uploads nothing (read whole, it adds the size)
    from tests.e2e.cli_run import run_cli

    source = tmp_path / "big.ndjson"
    line = json.dumps({"pad": "z" * 1000}).encode() + b"\n"
    with source.open("wb") as out:
        for _ in range(64_000_000 // len(line)):
            out.write(line)
    slot = {"job_id": JOB_ID, "upload": {"url": stub.url + "/put", "method": "PUT", "headers": {}}}
    stub.answer("POST", "/v1/jobs/uploads", 201, slot)
    stub.answer("PUT", "/v1/put", 200)
    stub.answer("GET", f"/v1/jobs/{JOB_ID}", 200, job("queued"))
    env = {**os.environ, "ASYNC_JOBS_URL": stub.url}
    upload = run_cli("--auth", "none", "submit", str(source), env=env)
    baseline = run_cli("--auth", "none", "status", JOB_ID, env=env)
    assert (upload.code, baseline.code) == (0, 0), upload.err + baseline.err
    assert len(stub.seen[1].body) == source.stat().st_size
    assert upload.peak_rss_mib < baseline.peak_rss_mib + 32, (upload.peak_rss_mib, baseline.peak_rss_mib)
