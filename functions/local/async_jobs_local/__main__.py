"""``python -m async_jobs_local up|demo``: the module on this machine, no AWS account needed."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .demo import run_demo
from .deployment import DEFAULT_EXAMPLE, DeploymentError, LocalDeployment
from .packages import PackageBuildError
from .terraform import TerraformError

log = logging.getLogger("async_jobs_local")


class _Stop(Exception):
    pass


def _install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        if stop.is_set():
            return  # already stopping; let the teardown finish
        stop.set()
        log.info("%s: stopping", signal.Signals(signum).name)
        raise _Stop

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _ignore_signals() -> None:
    # During teardown a second Ctrl-C must not leave resources or processes behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _print_banner(stack: LocalDeployment) -> None:
    outputs = stack.outputs
    auth = stack.gateway.authorization if stack.gateway else "NONE"
    header = ""
    if auth == "AWS_IAM":
        header = (
            " \\\n    -H 'Authorization: AWS4-HMAC-SHA256 Credential=AKIDLOCAL0000001/20250101/us-east-1/"
            "execute-api/aws4_request, SignedHeaders=host, Signature=0'"
        )
    elif auth == "API_KEY":
        header = " \\\n    -H 'x-api-key: <an API key value of the deployed API>'"
    elif auth in ("JWT", "COGNITO"):
        header = " \\\n    -H 'Authorization: Bearer <a JWT; claims are read, not verified>'"
    admin = "AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}".format(*stack.admin_credentials())
    print(
        f"""
async-jobs is running locally ({stack.example_dir.name}, {outputs.get("api_type", "rest")} API, \
authorization {auth}).

  API          {stack.url}   (also {stack.stage_url})
  moto         {stack.endpoint_url}   (AWS_ENDPOINT_URL; IAM enforced: use the credentials below)
  credentials  {admin}
  state bucket {outputs.get("state_bucket_name")}
  logs         {stack.log_dir}

  curl -si -X POST {stack.url}/jobs -H 'Content-Type: application/json'{header} \\
    -d '{{"records": [{{"id": 1}}, {{"id": 2}}]}}'
  curl -s {stack.url}/jobs/<job_id>{header}

Ctrl-C stops it (terraform destroy, then everything shuts down).
""",
        flush=True,
    )
    for name, error in stack.init_errors.items():
        # The deployment stands, as on AWS, but every call of this function fails: say so loudly.
        print(f"ERROR: {name} cannot start: {error}; its invocations fail (502 on the API)", flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    _install_signal_handlers(stop)
    stack = LocalDeployment(args.example, port=args.port, host=args.host)
    try:
        stack.start()
        _print_banner(stack)
        while not stop.wait(1.0):
            pass
    except _Stop:
        pass
    finally:
        _ignore_signals()
        print("stopping: terraform destroy ...", flush=True)
        stack.stop()
        print("stopped", flush=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    stop = threading.Event()
    _install_signal_handlers(stop)
    try:
        return run_demo(args.example, records=args.records, port=args.port, host=args.host)
    except _Stop:
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m async_jobs_local", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request and batch")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("up", "apply the example to a local moto server and serve the API until Ctrl-C"),
        ("demo", "bring the stack up, run a job end to end with a progress bar, tear down"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument(
            "--example",
            type=Path,
            default=DEFAULT_EXAMPLE,
            help="Terraform root module (default examples/local)",
        )
        command.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("PORT", "8080")),
            help="API port (PORT env; 0 = any)",
        )
        command.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
        if name == "demo":
            command.add_argument("--records", type=int, default=20_000, help="records in the demo job")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S"
    )
    if args.verbose:
        log.setLevel(logging.DEBUG)
    else:
        log.setLevel(logging.WARNING if args.command == "demo" else logging.INFO)
    try:
        return cmd_up(args) if args.command == "up" else cmd_demo(args)
    except (DeploymentError, PackageBuildError, TerraformError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
