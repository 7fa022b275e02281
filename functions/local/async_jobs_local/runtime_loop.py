"""The runtime loop inside one local execution environment (a child process of the local deployment).

Started by ``sandbox.Sandbox`` as ``python -I -S runtime_loop.py``: no site-packages, no user
site, no PYTHON* variables, not even this file's directory on ``sys.path``. The function's
unpacked package is put first on ``sys.path``, as Lambda puts ``LAMBDA_TASK_ROOT``: what the
handler imports comes from its package or the standard library, nothing else. This file
therefore imports only the standard library.

Reads frames from stdin (the function spec, then invocations), writes results as frames to
what was stdout; the handler's own stdout and stderr go to the function's log file. A frame is
a 4-byte big-endian length and a JSON document.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import struct
import sys
import time
import traceback
from typing import IO, Any


def _read_exactly(stream: IO[bytes], length: int) -> bytes:
    data = b""
    while len(data) < length:
        chunk = stream.read(length - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(stream: IO[bytes]) -> Any:
    (length,) = struct.unpack(">I", _read_exactly(stream, 4))
    return json.loads(_read_exactly(stream, length))


def write_frame(stream: IO[bytes], value: Any) -> None:
    data = json.dumps(value).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools use."""

    def __init__(self, spec: dict[str, Any], request_id: str, deadline: float) -> None:
        self.function_name = spec["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec["arn"]
        self.memory_limit_in_mb = spec["memory_mb"]
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec['name']}"
        self.log_stream_name = f"local/{os.getpid()}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def error_payload(
    exc: BaseException, error_type: str | None = None, message: str | None = None
) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": message or str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


def load_handler(spec: dict[str, Any]) -> Any:
    """Import the handler from the package alone, as Lambda's runtime does (ImportModuleError if not)."""
    module_name, _, function_name = spec["handler"].rpartition(".")
    sys.path.insert(0, spec["code_dir"])
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


class Instruments:
    """Optional measurement hooks of the local stack (benchmarks), outside the function's code.

    botocore events on every session the function creates: ``before-call`` counts each AWS
    operation (billable requests) and sleeps as the invocation's latency rules say (a slower
    S3 or sink than moto's); ``after-call`` counts error answers such as 412 (lost
    compare-and-swap races). Clients copy their session's handlers when they are built, so the
    hooks go on before the handler's module (which builds its clients at import) is loaded.
    """

    def __init__(self, code_dir: str) -> None:
        self.counts: dict[str, int] = {}
        self.clients: list[str] = []
        self.rules: list[dict[str, Any]] = []
        sys.path.insert(0, code_dir)
        try:
            import botocore.session  # noqa: PLC0415 - from the function's package, if it has one
        except ImportError:
            return
        instruments = self
        original_init = botocore.session.Session.__init__
        original_create = botocore.session.Session.create_client

        def init(session: Any, *args: Any, **kwargs: Any) -> None:
            original_init(session, *args, **kwargs)
            session.register("before-parameter-build", instruments.parameters)
            session.register("before-call", instruments.before_call)
            session.register("after-call", instruments.after_call)

        def create_client(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            instruments.clients.append(service_name)
            return original_create(session, service_name, *args, **kwargs)

        botocore.session.Session.__init__ = init
        botocore.session.Session.create_client = create_client

    def parameters(self, params: Any, context: Any = None, **_: Any) -> None:
        # The object key is among the API parameters; before-call only sees the serialised request.
        if isinstance(context, dict) and isinstance(params, dict):
            context["instruments_key"] = str(params.get("Key", ""))

    def before_call(self, model: Any, context: Any = None, **_: Any) -> None:
        service, operation = model.service_model.endpoint_prefix, model.name
        key = context.get("instruments_key", "") if isinstance(context, dict) else ""
        # The job summary's own calls apart: compare-and-swap traffic on one object.
        name = f"{service}.{operation}" + ("@state" if key.endswith("/state.json") else "")
        if isinstance(context, dict):
            context["instruments_name"] = name
        self.counts[name] = self.counts.get(name, 0) + 1
        for rule in self.rules:
            if rule.get("service", service) == service and rule.get("operation", operation) == operation:
                if rule.get("key_contains", "") in key:
                    time.sleep(float(rule["seconds"]))

    def after_call(self, model: Any, http_response: Any, context: Any = None, **_: Any) -> None:
        status = getattr(http_response, "status_code", 200)
        if status >= 400:
            operation = f"{model.service_model.endpoint_prefix}.{model.name}"
            if isinstance(context, dict):
                operation = context.get("instruments_name", operation)
            name = f"{operation}!{status}"
            self.counts[name] = self.counts.get(name, 0) + 1

    def report(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


# The local runtime's hooks into a function process, each turned on by its variable:
# fault injection (faults.py) and RDS endpoints answered by a local PostgreSQL (databases.py).
LOCAL_HOOKS = {"ASYNC_JOBS_LOCAL_FAULTS": "faults.py", "ASYNC_JOBS_LOCAL_DATABASES": "databases.py"}


def install_local_hooks(code_dir: str) -> None:
    """The local stack's hooks the deployment hands this process (through their variables).

    Loaded by path: this process's ``sys.path`` is the function's package, which does not (and
    must not) contain the local runtime. Hooks go on before the handler builds its clients.
    """
    for variable, filename in LOCAL_HOOKS.items():
        if variable not in os.environ:
            continue
        location = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
        name = f"async_jobs_local_{filename.removesuffix('.py')}"
        module_spec = importlib.util.spec_from_file_location(name, location)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # dataclasses look their module up
        module_spec.loader.exec_module(module)
        module.install_from_environment(code_dir)


def main() -> None:
    # Shutdown is the parent's business: Ctrl-C reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    # From here on, anything the function prints goes to its log (fd 2, set up by the parent).
    os.dup2(2, 1)
    spec = read_frame(requests)
    module_name = spec["handler"].rpartition(".")[0]
    install_local_hooks(spec["code_dir"])
    instruments = Instruments(spec["code_dir"]) if spec.get("instrument") else None
    try:
        started = time.perf_counter()
        handler = load_handler(spec)
        init_seconds = time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - reported as Lambda reports an init error
        traceback.print_exc()
        if isinstance(exc, ImportError):
            payload = error_payload(
                exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
            )
        else:
            payload = error_payload(
                exc, "Runtime.HandlerNotFound" if isinstance(exc, AttributeError) else None
            )
        write_frame(replies, {"kind": "init_error", "payload": payload})
        return
    ready: dict[str, Any] = {"kind": "ready"}
    if instruments is not None:
        ready["measured"] = {"init_seconds": init_seconds, "requests": instruments.report()}
        ready["measured"]["clients"] = instruments.clients
    write_frame(replies, ready)
    while True:
        try:
            message = read_frame(requests)
        except (EOFError, OSError):
            return  # the parent has gone
        if message is None:
            return
        context = LocalLambdaContext(spec, message["request_id"], message["deadline"])
        if instruments is not None:
            instruments.rules = list(message.get("latency") or [])
        started = time.perf_counter()
        try:
            result = handler(message["event"], context)
            reply = {"kind": "ok", "payload": json.loads(json.dumps(result))}
        except Exception as exc:  # noqa: BLE001 - any handler error is the invocation's result
            traceback.print_exc()
            reply = {"kind": "error", "payload": error_payload(exc)}
        if instruments is not None:
            reply["measured"] = {"seconds": time.perf_counter() - started, "requests": instruments.report()}
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            write_frame(replies, reply)
        except OSError:
            return


if __name__ == "__main__":
    main()
