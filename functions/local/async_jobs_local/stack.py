"""The local stack: moto server + the module applied with Terraform + API Gateway and SQS played locally."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from . import moto_patches
from .apigw import ApiGateway, ApiServer
from .esm import SqsEventSource
from .sandbox import FunctionPool, FunctionSpec
from .terraform import FAKE_CREDENTIALS, Terraform

log = logging.getLogger("async_jobs_local")

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_EXAMPLE = PROJECT_ROOT / "examples" / "local"
KEEP_RUNS = 5
_REGION = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-\d):")
_EXECUTE_API = re.compile(r"^https://(?P<api_id>[a-z0-9]+)\.execute-api\.[^/]+(?:/(?P<stage>[^/]+))?")


class StackError(RuntimeError):
    pass


def _declares_variable(example_dir: Path, name: str) -> bool:
    pattern = re.compile(rf'^\s*variable\s+"{re.escape(name)}"', re.MULTILINE)
    return any(pattern.search(path.read_text()) for path in example_dir.glob("*.tf"))


def _prune_runs(runs_dir: Path, keep: int) -> None:
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep] if keep else runs:
        shutil.rmtree(old, ignore_errors=True)


class LocalStack:
    """The module running on this machine, with no AWS account.

    ::

        with LocalStack("examples/local", port=0) as stack:
            stack.url        # http://127.0.0.1:<port>  (the API; with or without the stage prefix)
            stack.outputs    # terraform output values
            stack.endpoint_url  # the moto server, for boto3 clients

    ``start()`` starts a moto server in this process, applies the example with Terraform,
    starts one local execution environment per function (processes with the deployed
    configuration), the HTTP front end and the worker's event source mapping. ``stop()``
    undoes all of it, running ``terraform destroy`` first unless ``destroy=False``.
    """

    def __init__(
        self,
        example_dir: str | Path | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        variables: dict[str, Any] | None = None,
        project_root: str | Path | None = None,
        work_dir: str | Path | None = None,
        prewarm: bool = True,
        destroy_on_stop: bool = True,
    ) -> None:
        self.project_root = Path(project_root or PROJECT_ROOT).resolve()
        self.example_dir = Path(example_dir or self.project_root / "examples" / "local").resolve()
        if not self.example_dir.is_dir():
            raise StackError(f"no such example: {self.example_dir}")
        self.host = host
        self.port = port
        self.extra_variables = dict(variables or {})
        runs_dir = self.project_root / ".local" / "runs"
        runs_dir.mkdir(parents=True, exist_ok=True)
        if work_dir is None:
            _prune_runs(runs_dir, KEEP_RUNS - 1)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            work_dir = runs_dir / f"{self.example_dir.name}-{stamp}-{os.getpid()}-{id(self) % 10000}"
        self.work_dir = Path(work_dir)
        self.log_dir = self.work_dir / "logs"
        self.prewarm = prewarm
        self.destroy_on_stop = destroy_on_stop
        self.outputs: dict[str, Any] = {}
        self.functions: dict[str, FunctionSpec] = {}
        self.pools: dict[str, FunctionPool] = {}
        self.event_source: SqsEventSource | None = None
        self.gateway: ApiGateway | None = None
        self.timings: dict[str, float] = {}
        self.region = FAKE_CREDENTIALS["AWS_REGION"]
        self._exit = ExitStack()
        self._moto: Any = None
        self._server: ApiServer | None = None
        self._server_thread: threading.Thread | None = None
        self._terraform: Terraform | None = None
        self._applied = False
        self._started = False
        self._api_key_ids: dict[str, str] = {}
        self.endpoint_url = ""

    # ------------------------------------------------------------------ public API

    @property
    def url(self) -> str:
        if self._server is None:
            raise StackError("the stack is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def stage_url(self) -> str:
        stage = self.gateway.stage if self.gateway else ""
        return self.url if stage in ("", "$default") else f"{self.url}/{stage}"

    def client(self, service: str) -> Any:
        """A boto3 client of the local moto server (fake credentials)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(max_pool_connections=50, retries={"mode": "standard", "max_attempts": 3}),
        )

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop pollers and HTTP, destroy the infrastructure, stop moto. Safe to call twice."""
        if self.event_source:
            self.event_source.stop()
            self.event_source = None
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        if self.destroy_on_stop and self._applied:
            try:
                self.destroy()
            except Exception as exc:  # noqa: BLE001 - keep tearing down; the error is reported
                log.error("terraform destroy failed: %s", exc)
        if self._moto is not None:
            self._reset_moto()
            self._moto.stop()
            self._moto = None
        self._exit.close()
        self._started = False

    def destroy(self) -> None:
        """``terraform destroy`` the example (the moto server keeps running)."""
        if not self._terraform or not self._applied:
            return
        if self.event_source:  # its queue is about to go
            self.event_source.stop()
            self.event_source = None
        started = time.monotonic()
        self._terraform.destroy()
        self._applied = False
        self.timings["destroy"] = time.monotonic() - started
        shutil.rmtree(self.work_dir / ".terraform", ignore_errors=True)

    def pause_event_source(self) -> None:
        """Stop polling the queue (as disabling the event source mapping does); messages wait."""
        if self.event_source:
            self.event_source.stop()

    def resume_event_source(self) -> None:
        if self.event_source:
            self.event_source.start()

    def plan_has_changes(self) -> bool:
        """``terraform plan`` against the live (moto) infrastructure: True if it would change anything."""
        if not self._terraform:
            raise StackError("the stack is not started")
        return self._terraform.plan_has_changes()

    def inventory(self) -> dict[str, list[str]]:
        """What exists in moto now: buckets, queues, functions, roles, APIs, mappings, alarms, topics..."""
        s3, sqs, lam, iam = self.client("s3"), self.client("sqs"), self.client("lambda"), self.client("iam")
        apigw, apigw2 = self.client("apigateway"), self.client("apigatewayv2")
        logs, cloudwatch, sns = self.client("logs"), self.client("cloudwatch"), self.client("sns")
        return {
            "buckets": [b["Name"] for b in s3.list_buckets().get("Buckets", [])],
            "queues": sqs.list_queues().get("QueueUrls", []),
            "functions": [f["FunctionName"] for f in lam.list_functions().get("Functions", [])],
            "event_source_mappings": [
                m["UUID"] for m in lam.list_event_source_mappings().get("EventSourceMappings", [])
            ],
            "roles": [
                r["RoleName"] for r in iam.list_roles().get("Roles", []) if not r["Path"].startswith("/aws-")
            ],
            "policies": [p["PolicyName"] for p in iam.list_policies(Scope="Local").get("Policies", [])],
            "rest_apis": [a["name"] for a in apigw.get_rest_apis().get("items", [])],
            "http_apis": [a["Name"] for a in apigw2.get_apis().get("Items", [])],
            "api_keys": [k["id"] for k in apigw.get_api_keys().get("items", [])],
            "log_groups": [g["logGroupName"] for g in logs.describe_log_groups().get("logGroups", [])],
            "alarms": [a["AlarmName"] for a in cloudwatch.describe_alarms().get("MetricAlarms", [])],
            "dashboards": [
                d["DashboardName"] for d in cloudwatch.list_dashboards().get("DashboardEntries", [])
            ],
            "topics": [t["TopicArn"] for t in sns.list_topics().get("Topics", [])],
        }

    # ------------------------------------------------------------------ start-up

    def _start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._exit.enter_context(moto_patches.local_patches())
        moto_patches.load_aws_managed_policies()

        started = time.monotonic()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        moto_host, moto_port = self._moto.get_host_and_port()
        self.endpoint_url = f"http://{moto_host}:{moto_port}"
        self.timings["moto"] = time.monotonic() - started
        log.info("moto server on %s", self.endpoint_url)

        variables = dict(self.extra_variables)
        if _declares_variable(self.example_dir, "aws_endpoint_url"):
            variables.setdefault("aws_endpoint_url", self.endpoint_url)
        self._terraform = Terraform(
            self.example_dir,
            self.work_dir,
            self.endpoint_url,
            variables=variables,
            project_root=self.project_root,
        )
        started = time.monotonic()
        log.info("terraform init + apply %s (log: %s)", self.example_dir, self._terraform.log_path)
        self._terraform.init()
        self.timings["init"] = time.monotonic() - started
        started = time.monotonic()
        self._applied = True  # a failed apply may have created some resources: destroy them too
        self._terraform.apply()
        self.timings["apply"] = time.monotonic() - started
        self.outputs = self._terraform.output()
        self._complete_outputs()

        started = time.monotonic()
        self._load_functions()
        self._start_api()
        self._start_event_source()
        self.timings["runtime"] = time.monotonic() - started

    def _complete_outputs(self) -> None:
        """Fill what the runtime needs and a root module does not output, from the live config in moto.

        examples/local outputs everything; a root module such as examples/complete outputs only
        ``api_routes``, ``jobs_url`` and ``queue_url``: the rest is read from the deployed resources.
        """
        outputs = self.outputs
        rendered = json.dumps(outputs)
        found = _REGION.search(rendered)
        if found:
            self.region = found.group(1)
        queue_url = outputs.get("queue_url")
        if queue_url and not outputs.get("queue_arn"):
            outputs["queue_arn"] = self.client("sqs").get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        if outputs.get("queue_arn") and not outputs.get("worker_event_source_mapping"):
            mappings = self.client("lambda").list_event_source_mappings(EventSourceArn=outputs["queue_arn"])
            for mapping in mappings.get("EventSourceMappings", []):
                outputs.setdefault("worker_function_name", mapping["FunctionArn"].split(":")[-1])
                outputs["worker_event_source_mapping"] = {
                    "batch_size": mapping.get("BatchSize", 10),
                    "maximum_batching_window_in_seconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
                    "maximum_concurrency": (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency", 2),
                    "function_response_types": mapping.get("FunctionResponseTypes", []),
                    "enabled": mapping.get("State") == "Enabled",
                }
                break
        match = _EXECUTE_API.match(str(outputs.get("jobs_url") or outputs.get("api_url") or ""))
        if match and not outputs.get("api_type"):
            api_id, stage = match.group("api_id"), match.group("stage") or "$default"
            outputs.setdefault("api_id", api_id)
            outputs.setdefault("api_stage_name", stage)
            try:
                self.client("apigateway").get_rest_api(restApiId=api_id)
                outputs["api_type"] = "rest"
            except Exception:  # noqa: BLE001 - not a REST API: an HTTP API
                outputs["api_type"] = "http"
        if not outputs.get("api_authorization") and outputs.get("api_id"):
            outputs["api_authorization"] = self._deployed_authorization(str(outputs["api_id"]))

    def _deployed_authorization(self, api_id: str) -> str:
        if self.outputs.get("api_type") == "http":
            routes = self.client("apigatewayv2").get_routes(ApiId=api_id).get("Items", [])
            kinds = {route.get("AuthorizationType", "NONE") for route in routes}
            return next((kind for kind in ("AWS_IAM", "JWT") if kind in kinds), "NONE")
        apigw = self.client("apigateway")
        for resource in apigw.get_resources(restApiId=api_id, embed=["methods"]).get("items", []):
            for method in (resource.get("resourceMethods") or {}).values():
                kind = method.get("authorizationType", "NONE")
                if kind == "COGNITO_USER_POOLS":
                    return "COGNITO"
                if kind in ("AWS_IAM", "CUSTOM"):
                    return "AWS_IAM" if kind == "AWS_IAM" else "JWT"
                if method.get("apiKeyRequired"):
                    return "API_KEY"
        return "NONE"

    def _runtime_environment(self) -> dict[str, str]:
        env = dict(FAKE_CREDENTIALS)
        env.update({"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region})
        env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    def _spec(self, function_name: str) -> FunctionSpec:
        config = self.client("lambda").get_function_configuration(FunctionName=function_name)
        handler = config["Handler"]
        module = handler.rpartition(".")[0]
        code_dir = self.project_root / "functions" / module.split(".")[0]
        source = code_dir / (module.replace(".", "/") + ".py")
        if not source.is_file():
            raise StackError(f"{function_name}: handler {handler} has no source at {source}")
        return FunctionSpec(
            name=function_name,
            arn=config.get("FunctionArn", ""),
            handler=handler,
            code_dir=code_dir,
            library_paths=(self.project_root / "functions" / "shared",),
            environment=dict((config.get("Environment") or {}).get("Variables") or {}),
            timeout=float(config.get("Timeout") or 3),
            memory_mb=int(config.get("MemorySize") or 128),
            runtime_environment=self._runtime_environment(),
            log_path=self.log_dir / f"{function_name}.log",
        )

    def _load_functions(self) -> None:
        names = set((self.outputs.get("api_routes") or {}).values())
        worker = self.outputs.get("worker_function_name")
        if worker:
            names.add(worker)
        for name in sorted(names):
            self.functions[name] = self._spec(name)
        mapping = self.outputs.get("worker_event_source_mapping") or {}
        worker_concurrency = int(mapping.get("maximum_concurrency") or 2)
        for name, spec in self.functions.items():
            is_worker = name == worker
            pool = FunctionPool(spec, max_size=worker_concurrency if is_worker else None)
            self.pools[name] = pool
            if self.prewarm:
                pool.warm(worker_concurrency if is_worker else 1)

    def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """Invoke a deployed function in its local execution environment (as Lambda Invoke would)."""
        pool = self.pools.get(function_name)
        if pool is None:
            raise StackError(f"no local function {function_name}")
        return pool.invoke(event)

    def _lookup_api_key(self, value: str) -> str | None:
        if value in self._api_key_ids:
            return self._api_key_ids[value]
        apigw = self.client("apigateway")
        for key in apigw.get_api_keys(includeValues=True).get("items", []):
            if key.get("value") == value and key.get("enabled", True):
                self._api_key_ids[value] = key["id"]
                return key["id"]
        return None

    def _start_api(self) -> None:
        self.gateway = ApiGateway(self.outputs, self.invoke, self._lookup_api_key, self.region)
        self._server = ApiServer((self.host, self.port), self.gateway)
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, name="api-gateway", kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._server_thread.start()
        log.info(
            "API on %s (stage %s, authorization %s)", self.url, self.gateway.stage, self.gateway.authorization
        )

    def _start_event_source(self) -> None:
        mapping = self.outputs.get("worker_event_source_mapping")
        worker = self.outputs.get("worker_function_name")
        queue_url = self.outputs.get("queue_url")
        if not mapping or not worker or not queue_url:
            log.warning("no worker_event_source_mapping output: the queue is not polled")
            return
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
            "Attributes"
        ]
        self.queue_attributes = attributes
        self.event_source = SqsEventSource(
            sqs=self.client("sqs"),
            queue_url=queue_url,
            queue_arn=attributes.get("QueueArn") or str(self.outputs.get("queue_arn")),
            function_name=worker,
            invoke=self.invoke,
            batch_size=int(mapping.get("batch_size") or 10),
            batching_window=float(mapping.get("maximum_batching_window_in_seconds") or 0),
            maximum_concurrency=int(mapping.get("maximum_concurrency") or 2),
            report_batch_item_failures="ReportBatchItemFailures"
            in (mapping.get("function_response_types") or []),
            region=self.region,
        )
        self.event_source.start()
        log.info(
            "worker mapping: batch %s, window %ss, concurrency %s, visibility %ss, redrive %s",
            self.event_source.batch_size,
            self.event_source.batching_window,
            self.event_source.maximum_concurrency,
            attributes.get("VisibilityTimeout"),
            attributes.get("RedrivePolicy"),
        )

    def _reset_moto(self) -> None:
        try:
            request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:
            log.debug("moto reset failed: %s", exc)
