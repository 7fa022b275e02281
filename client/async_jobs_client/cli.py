"""``async-jobs``: submit a file, wait for its job, cancel, retry, fetch its errors report.

Exit codes (for scripts):
  0  done: the job succeeded, or the command did what it was asked
  1  usage error, API error (printed as ``title: detail``) or a network error
  2  the job failed
  3  the job completed with errors (some records failed)
  4  the job was cancelled or expired
  5  ``--wait``/``wait`` timed out before the job ended
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .api import ApiError, JobsApi, SigV4
from .inputs import InputFile
from .progress import Progress

EXIT_OK, EXIT_ERROR, EXIT_FAILED, EXIT_WITH_ERRORS, EXIT_ENDED, EXIT_TIMEOUT = range(6)
EXIT_BY_STATUS = {
    "succeeded": EXIT_OK,
    "failed": EXIT_FAILED,
    "completed_with_errors": EXIT_WITH_ERRORS,
    "cancelled": EXIT_ENDED,
    "expired": EXIT_ENDED,
}
# API Gateway takes 10 MB a request; inline bodies stay well below (JSON escaping, headers).
DEFAULT_MAX_INLINE_BYTES = 3_000_000


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="async-jobs",
        description="Client of the async-jobs API.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--url", default=os.environ.get("ASYNC_JOBS_URL"), help="API stage URL (ASYNC_JOBS_URL)")
    top.add_argument(
        "--auth",
        choices=["auto", "iam", "token", "api-key", "none"],
        default="auto",
        help="auto: --token or --api-key when given, else iam when AWS credentials exist, else none",
    )
    top.add_argument("--token", default=os.environ.get("ASYNC_JOBS_TOKEN"), help="bearer token (JWT)")
    top.add_argument("--api-key", default=os.environ.get("ASYNC_JOBS_API_KEY"), help="x-api-key value")
    top.add_argument("--region", help="SigV4 region (default: from the URL or the AWS config)")
    top.add_argument("--profile", help="AWS profile for --auth iam")
    top.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    commands = top.add_subparsers(dest="command", required=True)

    def waiting(command: argparse.ArgumentParser) -> None:
        command.add_argument("--wait-timeout", type=float, default=3600.0, help="seconds (exit 5 after)")
        command.add_argument("--interval", type=float, default=2.0, help="seconds between polls")

    submit = commands.add_parser("submit", help='submit a JSON {"records": [...]} or NDJSON file')
    submit.add_argument("file", type=Path)
    submit.add_argument("--max-inline-bytes", type=int, default=DEFAULT_MAX_INLINE_BYTES)
    submit.add_argument("--idempotency-key")
    submit.add_argument("--metadata", type=json.loads, help="JSON object echoed in the job (uploads)")
    submit.add_argument("--wait", action="store_true", help="wait for the job to end")
    waiting(submit)
    for name, text in (
        ("status", "print a job"),
        ("cancel", "cancel a job"),
        ("retry", "re-run failed chunks"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("job_id")
        if name == "retry":
            command.add_argument("--wait", action="store_true")
            waiting(command)
    wait = commands.add_parser("wait", help="wait for a job to end (progress on stderr)")
    wait.add_argument("job_id")
    waiting(wait)
    listing = commands.add_parser("list", help="the caller's jobs (GET /jobs)")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int)
    errors = commands.add_parser("errors", help="download a job's errors report (NDJSON)")
    errors.add_argument("job_id")
    errors.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    return top


def build_api(args: argparse.Namespace) -> JobsApi:
    if not args.url:
        raise UsageError("no API URL: pass --url or set ASYNC_JOBS_URL")
    auth = args.auth
    if auth == "auto":
        auth = (
            "token"
            if args.token
            else "api-key"
            if args.api_key
            else "iam"
            if SigV4.available(args.profile)
            else "none"
        )
    if auth == "token" and not args.token:
        raise UsageError("--auth token needs --token (or ASYNC_JOBS_TOKEN)")
    if auth == "api-key" and not args.api_key:
        raise UsageError("--auth api-key needs --api-key (or ASYNC_JOBS_API_KEY)")
    try:
        return JobsApi(
            args.url,
            sigv4=SigV4(args.region, args.profile) if auth == "iam" else None,
            token=args.token if auth == "token" else None,
            api_key=args.api_key if auth == "api-key" else None,
            timeout=args.timeout,
        )
    except (RuntimeError, ValueError) as error:
        raise UsageError(str(error)) from error


class UsageError(Exception):
    pass


def print_json(value: Any, out: IO[str]) -> None:
    out.write(json.dumps(value, indent=2) + "\n")


def wait_for(api: JobsApi, job_id: str, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    progress = Progress(err)
    try:
        job = api.wait(job_id, timeout=args.wait_timeout, interval=args.interval, on_poll=progress.show)
    finally:
        progress.close()
    if job is None:
        err.write(f"timeout: job {job_id} did not end within {args.wait_timeout:g}s\n")
        return EXIT_TIMEOUT
    print_json(job, out)
    return EXIT_BY_STATUS.get(str(job.get("status")), EXIT_ERROR)


def submit(api: JobsApi, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    try:
        source = InputFile.open(args.file)
    except (OSError, ValueError) as error:
        raise UsageError(str(error)) from error
    if source.size > args.max_inline_bytes and args.idempotency_key:
        # The upload route takes no Idempotency-Key: say so instead of dropping it silently.
        err.write("note: --idempotency-key applies to inline submits only; this file goes by upload\n")
    job = api.submit_file(
        source,
        max_inline_bytes=args.max_inline_bytes,
        idempotency_key=args.idempotency_key,
        metadata=args.metadata,
        on_upload=lambda slot, size: err.write(f"uploading {size:,} bytes for job {slot['job_id']}\n"),
    )
    if not args.wait:
        print_json(job, out)
        return EXIT_OK
    return wait_for(api, str(job["job_id"]), args, out, err)


def show_job(api: JobsApi, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    job = api.status(args.job_id)
    print_json(job, out)
    # A terminal job's outcome is the exit code; a job still under way is not an error.
    return EXIT_BY_STATUS.get(str(job.get("status")), EXIT_OK)


def cancel(api: JobsApi, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    print_json(api.cancel(args.job_id), out)
    return EXIT_OK


def retry(api: JobsApi, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    job = api.retry(args.job_id)
    if args.wait:
        return wait_for(api, args.job_id, args, out, err)
    print_json(job, out)
    return EXIT_OK


def wait(api: JobsApi, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    return wait_for(api, args.job_id, args, out, err)


def list_jobs(api: JobsApi, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    query = {k: str(v) for k, v in (("status", args.status), ("limit", args.limit)) if v is not None}
    try:
        print_json(api.list(**query), out)
    except ApiError as error:
        # A gateway without the route answers 403 (REST: missing auth token) or 404 (HTTP API).
        if error.status in (403, 404):
            err.write(f"this API does not list jobs (GET /jobs answered {error.status}: {error})\n")
            return EXIT_ERROR
        raise
    return EXIT_OK


def download_errors(api: JobsApi, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    job = api.status(args.job_id)
    if args.output:
        with args.output.open("wb") as sink:
            found = api.download_errors(job, sink)
        if not found:
            args.output.unlink()
    else:
        found = api.download_errors(job, getattr(out, "buffer", None) or _TextSink(out))
    if not found:
        err.write(f"job {args.job_id} has no errors report (status {job.get('status')})\n")
    return EXIT_OK


class _TextSink:
    """Bytes written to a text stream (a captured stdout in tests)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, block: bytes) -> int:
        return self.stream.write(block.decode("utf-8", "replace"))


COMMANDS: dict[str, Callable[[JobsApi, argparse.Namespace, IO[str], IO[str]], int]] = {
    "submit": submit,
    "status": show_job,
    "wait": wait,
    "cancel": cancel,
    "retry": retry,
    "list": list_jobs,
    "errors": download_errors,
}


def main(argv: list[str] | None = None, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](build_api(args), args, out, err)
    except UsageError as error:
        err.write(f"async-jobs: {error}\n")
    except ApiError as error:
        err.write(f"{error}\n")
    except OSError as error:
        err.write(f"async-jobs: {error}\n")
    return EXIT_ERROR
