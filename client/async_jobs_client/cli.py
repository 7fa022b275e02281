"""``async-jobs``: submit a file, wait for its job, list, cancel, retry, fetch its errors report.

Exit codes (for scripts):
  0  done: the job succeeded, or the command did what it was asked (a job
     still under way included)
  1  the job ended without succeeding: failed, completed_with_errors,
     cancelled or expired (its JSON, printed, says which)
  2  usage error: bad or missing arguments, no API URL, an unreadable file
  3  the API refused the request (printed as ``title: detail``), or the
     network or the HTTP exchange failed
  4  ``--wait``/``wait`` timed out before the job ended

Environment:
  ASYNC_JOBS_URL      the API stage URL (--url)
  ASYNC_JOBS_TOKEN    bearer token, e.g. a JWT (--token)
  ASYNC_JOBS_API_KEY  API key sent as x-api-key (--api-key)
  AWS_PROFILE, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  AWS_SESSION_TOKEN and the rest of botocore's configuration: the
  credentials and region of --auth iam (SigV4)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from .api import ApiError, JobsApi, SigV4
from .contract import default_max_body_bytes
from .inputs import InputFile
from .progress import Progress

EXIT_OK, EXIT_JOB_NOT_SUCCEEDED, EXIT_USAGE, EXIT_API, EXIT_TIMEOUT = range(5)
EXIT_BY_STATUS = {
    "succeeded": EXIT_OK,
    "failed": EXIT_JOB_NOT_SUCCEEDED,
    "completed_with_errors": EXIT_JOB_NOT_SUCCEEDED,
    "cancelled": EXIT_JOB_NOT_SUCCEEDED,
    "expired": EXIT_JOB_NOT_SUCCEEDED,
}
STATUSES = ("queued", "running", *EXIT_BY_STATUS)


def version() -> str:
    """The release version this client was installed as (VERSION at build time)."""
    try:
        return metadata.version("async-jobs-client")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"batch\": 7}'")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="async-jobs",
        description="Client of the async-jobs API.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    top.add_argument(
        "--url",
        default=os.environ.get("ASYNC_JOBS_URL"),
        help="API stage URL, e.g. the module's api_url output (env ASYNC_JOBS_URL)",
    )
    top.add_argument(
        "--auth",
        choices=["auto", "iam", "token", "api-key", "none"],
        default="auto",
        help="auto (default): --token or --api-key when given, else iam when AWS credentials exist, "
        "else none",
    )
    top.add_argument(
        "--token", default=os.environ.get("ASYNC_JOBS_TOKEN"), help="bearer token (env ASYNC_JOBS_TOKEN)"
    )
    top.add_argument(
        "--api-key",
        default=os.environ.get("ASYNC_JOBS_API_KEY"),
        help="API key, sent as x-api-key (env ASYNC_JOBS_API_KEY)",
    )
    top.add_argument("--region", help="SigV4 region (default: from the URL, else AWS_REGION or the profile)")
    top.add_argument("--profile", help="AWS profile for --auth iam (default: AWS_PROFILE or the default)")
    top.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request (default 60)")
    commands = top.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="`async-jobs COMMAND --help` tells more"
    )

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=text, description=text, epilog=top.epilog, formatter_class=top.formatter_class
        )

    def job_id(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("job_id", help="the job's id (job_id of its JSON)")

    def waiting(sub: argparse.ArgumentParser, wait_flag: bool) -> None:
        if wait_flag:
            sub.add_argument(
                "--wait", action="store_true", help="wait for the job to end (progress on stderr)"
            )
        sub.add_argument(
            "--wait-timeout", type=float, default=3600.0, help="seconds to wait (default 3600; exit 4 after)"
        )
        sub.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")

    submit = command("submit", 'submit a JSON {"records": [...]} or an NDJSON file as a job')
    submit.add_argument("file", type=Path, help=".json (a records document) or .ndjson/.jsonl")
    submit.add_argument(
        "--max-inline-bytes",
        type=int,
        default=default_max_body_bytes(),
        help="larger files go through POST /jobs/uploads (default: the module's default max_body_bytes, "
        "%(default)s; set it to the deployment's max_body_bytes)",
    )
    submit.add_argument(
        "--idempotency-key", help="Idempotency-Key of an inline submit (a repeat returns the same job)"
    )
    submit.add_argument(
        "--metadata",
        type=json_object,
        help="JSON object kept with the job and echoed in it (inline or upload)",
    )
    submit.add_argument(
        "--callback-url",
        help="https URL the job resource is POSTed to when the job ends (Callback-Url; its host must "
        "be in the module's callbacks.allowed_hosts)",
    )
    waiting(submit, wait_flag=True)

    job_id(command("status", "print a job (exit code: its outcome once it has ended)"))
    job_id(command("cancel", "cancel a job that has not ended"))
    retry = command("retry", "run a failed job's failed chunks again")
    job_id(retry)
    waiting(retry, wait_flag=True)
    wait = command("wait", "wait for a job to end (progress on stderr)")
    job_id(wait)
    waiting(wait, wait_flag=False)

    listing = command("list", "the caller's jobs, newest first (GET /jobs)")
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    listing.add_argument(
        "--created-after",
        metavar="TIME",
        help="only jobs created after this RFC 3339 time, e.g. 2026-01-31T00:00:00Z",
    )
    listing.add_argument(
        "--created-before", metavar="TIME", help="only jobs created before this RFC 3339 time"
    )
    listing.add_argument("--limit", type=int, help="jobs per page (1..100; the API's default 20)")
    listing.add_argument("--cursor", help="start at this page: the cursor of a previous page's next link")
    listing.add_argument(
        "--all", action="store_true", help="follow every next link and print all jobs as one list"
    )

    errors = command("errors", "download a job's errors report (NDJSON)")
    job_id(errors)
    errors.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    return top


class UsageError(Exception):
    pass


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
    return EXIT_BY_STATUS.get(str(job.get("status")), EXIT_API)


def submit(api: JobsApi, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    try:
        source = InputFile.open(args.file)
    except (OSError, ValueError) as error:
        raise UsageError(str(error)) from error
    if source.size > args.max_inline_bytes and args.idempotency_key:
        # The upload route takes no Idempotency-Key: say so instead of dropping it silently.
        err.write("note: --idempotency-key applies to inline submits only; this file goes by upload\n")
    try:
        job = api.submit_file(
            source,
            max_inline_bytes=args.max_inline_bytes,
            idempotency_key=args.idempotency_key,
            metadata=args.metadata,
            callback_url=args.callback_url,
            on_upload=lambda slot, size: err.write(f"uploading {size:,} bytes for job {slot['job_id']}\n"),
        )
    except ValueError as error:  # a file that is not what its type says
        raise UsageError(str(error)) from error
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
    filters = (
        ("status", args.status),
        ("created_after", args.created_after),
        ("created_before", args.created_before),
        ("limit", args.limit),
        ("cursor", args.cursor),
    )
    query = {name: str(value) for name, value in filters if value is not None}
    try:
        if args.all:
            print_json({"items": list(api.list_all(**query)), "next": None}, out)
        else:
            print_json(api.list(**query), out)
    except ApiError as error:
        # A gateway without the route answers 403 (REST: missing auth token) or 404 (HTTP API).
        if error.status in (403, 404):
            err.write(f"this API does not list jobs (GET /jobs answered {error.status}: {error})\n")
            return EXIT_API
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
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:  # argparse: usage errors exit 2, --help and --version 0
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return COMMANDS[args.command](build_api(args), args, out, err)
    except UsageError as error:
        err.write(f"async-jobs: {error}\n")
        return EXIT_USAGE
    except ApiError as error:
        err.write(f"{error}\n")
    except OSError as error:  # network errors, and files that cannot be written
        err.write(f"async-jobs: {error}\n")
    return EXIT_API
