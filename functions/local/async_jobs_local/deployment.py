"""The local deployment: moto server + the module applied by Terraform + API Gateway and SQS played."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import re
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from . import moto_patches
from .apigw import ApiGateway, ApiServer, GatewayResponses
from .cloudwatch import LocalCloudWatch
from .credentials import RoleSessions, create_admin, delete_admin
from .databases import LocalDatabases
from .esm import SqsEventSource, dead_letter_source
from .faults import FaultPlan, Faults
from .instrumentation import Instruments
from .local_functions import LocalFunction, package_for
from .moto_patches.lambda_ import on_configuration_update
from .outputs import complete_outputs, region_of
from .packages import build_packages
from .pool import DEFAULT_CONCURRENCY, FunctionPool
from .postgres import PostgresServer
from .sandbox import FunctionSpec, InitError
from .terraform import FAKE_CREDENTIALS, Terraform

log = logging.getLogger("async_jobs_local")

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_EXAMPLE = PROJECT_ROOT / "examples" / "local"
KEEP_RUNS = 5
API_THROTTLE_WAIT = 10.0  # seconds a request waits for a free environment before 429


# The work directories of the deployments started and not yet stopped in this process.
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()


class DeploymentError(RuntimeError):
    pass


def _declares_variable(example_dir: Path, name: str) -> bool:
    pattern = re.compile(rf'^\s*variable\s+"{re.escape(name)}"', re.MULTILINE)
    return any(pattern.search(path.read_text()) for path in example_dir.glob("*.tf"))


def _in_use(run: Path) -> bool:
    """A run whose deployment is alive holds an exclusive lock on its ``.lock`` file."""
    try:
        with (run / ".lock").open("r") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


MANAGED_POLICIES_SETTING = "MOTO_IAM_LOAD_MANAGED_POLICIES"


def _restore_environ(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _prune_runs(runs_dir: Path, keep: int) -> None:
    # Several deployments may run at once (tests, `make local`): never delete a live one's files.
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep] if keep else runs:
        if not _in_use(old):
            shutil.rmtree(old, ignore_errors=True)


class RoleClient:
    """A boto3 client that signs with a role's current session, rebuilt when the session is renewed."""

    def __init__(self, make: Any, service: str, credentials: Any) -> None:
        self._make = make
        self._service = service
        self._credentials = credentials
        self._key: str | None = None
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        credentials = self._credentials()
        with self._lock:
            if credentials.access_key_id != self._key:
                self._client = self._make(self._service, credentials)
                self._key = credentials.access_key_id
            return getattr(self._client, name)


class LocalDeployment:
    """The module deployed on this machine, with no AWS account.

    ::

        with LocalDeployment("examples/local", port=0) as deployment:
            deployment.url           # http://127.0.0.1:<port>  (the API; with or without the stage prefix)
            deployment.outputs       # terraform output values
            deployment.endpoint_url  # the moto server
            deployment.client("s3")  # a boto3 client as the administrator

    ``start()`` builds the functions' packages (``functions/build.py --host``), starts a moto
    server in this process, applies the example with Terraform, switches moto's IAM checks on,
    starts execution environments of each function (its package alone on ``sys.path``, its
    deployed configuration, its role's credentials), the HTTP front end and the worker's event
    source mapping. ``stop()`` undoes all of it, running ``terraform destroy`` first unless
    ``destroy_on_stop=False``.
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
        enforce_iam: bool = True,
        instruments: Instruments | None = None,
        faults: FaultPlan | None = None,
        extra_routes: dict[str, LocalFunction] | None = None,
        account_concurrency: moto_patches.AccountConcurrency | None = None,
        alarm_time_scale: float | None = None,
        postgres: PostgresServer | None = None,
        prepare: Callable[[LocalDeployment], dict[str, Any]] | None = None,
    ) -> None:
        self.project_root = Path(project_root or PROJECT_ROOT).resolve()
        self.example_dir = Path(example_dir or self.project_root / "examples" / "local").resolve()
        if not self.example_dir.is_dir():
            raise DeploymentError(f"no such example: {self.example_dir}")
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
        self.events_log = self.log_dir / "events.ndjson"
        self.packages_dir = self.work_dir / "packages"
        self.prewarm = prewarm
        self.destroy_on_stop = destroy_on_stop
        self.enforce_iam = enforce_iam
        self.instruments = instruments
        self.extra_routes = dict(extra_routes or {})
        # Injected failures of the worker and its event source mapping (faults.py), counted.
        self.faults = Faults(faults, self.log_dir / "faults") if faults else None
        # The server that answers the example's RDS endpoints (databases.py), if it has any.
        self.postgres = postgres
        self.databases: LocalDatabases | None = None
        # Called once moto runs, before Terraform: more variables, from what exists in moto
        # (an example's VPC and subnets, say).
        self.prepare = prepare
        # The examples reserve concurrency, as an established account (1000, 100 unreserved) allows;
        # moto_patches.AccountConcurrency() is a fresh account's quota, where any reservation fails.
        self.account_concurrency = account_concurrency or moto_patches.AccountConcurrency(1000, 100)
        # Real seconds per alarm second (1.0: CloudWatch's pace; tests run a 60 s period in ~1 s).
        self.alarm_time_scale = (
            alarm_time_scale
            if alarm_time_scale is not None
            else float(os.environ.get("ASYNC_JOBS_LOCAL_ALARM_TIME_SCALE", "1.0"))
        )
        self.cloudwatch: LocalCloudWatch | None = None
        self.outputs: dict[str, Any] = {}
        self.functions: dict[str, FunctionSpec] = {}
        self.pools: dict[str, FunctionPool] = {}
        self.init_errors: dict[str, str] = {}
        self.event_source: SqsEventSource | None = None
        self.gateway: ApiGateway | None = None
        self.queue_attributes: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.region = FAKE_CREDENTIALS["AWS_REGION"]
        self.iam = moto_patches.IamEnforcement()
        self.roles: RoleSessions | None = None
        self._admin: dict[str, str] | None = None
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
            raise DeploymentError("the deployment is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def stage_url(self) -> str:
        stage = self.gateway.stage if self.gateway else ""
        return self.url if stage in ("", "$default") else f"{self.url}/{stage}"

    def _boto3_client(self, service: str, **credentials: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=Config(max_pool_connections=50, retries={"mode": "standard", "max_attempts": 3}),
            **credentials,
        )

    def client(self, service: str) -> Any:
        """A boto3 client of the local moto server, as the administrator (fake keys before apply)."""
        credentials = self._admin or {
            "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }
        return self._boto3_client(service, **credentials)

    def admin_credentials(self) -> tuple[str, str]:
        """The administrator's access key id and secret (for the aws CLI against the moto endpoint)."""
        if not self._admin:
            return FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        return self._admin["aws_access_key_id"], self._admin["aws_secret_access_key"]

    def role_client(self, function_name: str, service: str) -> Any:
        """A boto3 client signing with ``function_name``'s execution role (as Lambda's pollers do)."""
        spec = self.functions[function_name]
        if spec.credentials is None:
            return self.client(service)
        return RoleClient(
            lambda name, creds: self._boto3_client(
                name,
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
            ),
            service,
            spec.credentials,
        )

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalDeployment:
        if self._started:
            return self
        with _LIVE_LOCK:
            # moto's backends are global to the process: a second deployment here would share
            # (and, at its stop, reset) the first one's AWS resources.
            if _LIVE:
                raise DeploymentError(
                    f"another local deployment is running in this process ({next(iter(_LIVE))}); "
                    "stop it first, or run this one in another process"
                )
            _LIVE.add(str(self.work_dir))
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop pollers and HTTP, destroy the infrastructure, stop moto. Safe to call twice."""
        if self.cloudwatch:
            self.cloudwatch.stop()
            self.cloudwatch = None
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
        self.iam.off()
        if self._moto is not None:
            self._reset_moto()
            self._moto.stop()
            self._moto = None
        self._exit.close()
        self._started = False
        with _LIVE_LOCK:
            _LIVE.discard(str(self.work_dir))

    @contextmanager
    def iam_suspended(self) -> Iterator[None]:
        """moto's IAM checks off for the block: Terraform runs with fake, all-powerful credentials."""
        was_on = self.iam.active
        self.iam.off()
        try:
            yield
        finally:
            if was_on:
                self.iam.on()

    def destroy(self) -> None:
        """``terraform destroy`` the example (the moto server keeps running, IAM checks off)."""
        if not self._terraform or not self._applied:
            return
        if self.cloudwatch:  # its alarms are about to go
            self.cloudwatch.stop()
            self.cloudwatch = None
        if self.event_source:  # its queue is about to go
            self.event_source.stop()
            self.event_source = None
        self.iam.off()
        started = time.monotonic()
        self._terraform.destroy()
        self._applied = False
        self.timings["destroy"] = time.monotonic() - started
        if self._admin:
            delete_admin(self.client("iam"))
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
            raise DeploymentError("the deployment is not started")
        with self.iam_suspended():
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
            "users": [u["UserName"] for u in iam.list_users().get("Users", [])],
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

    def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """Invoke a deployed function in its local execution environment (as Lambda Invoke would)."""
        pool = self.pools.get(function_name)
        if pool is None:
            raise DeploymentError(f"no local function {function_name}")
        if function_name in self._reconfigured:
            self._reconfigure(function_name)
        if self.cloudwatch is not None:
            return self.cloudwatch.observe_invocation(function_name, lambda: pool.invoke(event))
        return pool.invoke(event)

    # ------------------------------------------------------------------ start-up

    def _start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        lock = self._exit.enter_context((self.work_dir / ".lock").open("a"))
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until stop(): other deployments leave this run alone
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        started = time.monotonic()
        build_packages(self.project_root, self.packages_dir)
        self.timings["packages"] = time.monotonic() - started
        self._exit.enter_context(moto_patches.local_patches())
        # every event accepted on any bus, one JSON line each (the local event log)
        moto_patches.EVENT_LOG.path = self.events_log
        quota = moto_patches.ACCOUNT_CONCURRENCY  # global to the process: put back at stop()
        self._exit.callback(setattr, quota, "concurrent_executions", quota.concurrent_executions)
        self._exit.callback(setattr, quota, "minimum_unreserved", quota.minimum_unreserved)
        quota.concurrent_executions = self.account_concurrency.concurrent_executions
        quota.minimum_unreserved = self.account_concurrency.minimum_unreserved
        # load_aws_managed_policies() tells moto, through the environment, to load them into every
        # IAM backend it creates; later moto users of this process (unit tests) are spared that
        self._exit.callback(
            _restore_environ, MANAGED_POLICIES_SETTING, os.environ.get(MANAGED_POLICIES_SETTING)
        )
        moto_patches.load_aws_managed_policies()

        started = time.monotonic()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        moto_host, moto_port = self._moto.get_host_and_port()
        self.endpoint_url = f"http://{moto_host}:{moto_port}"
        self.timings["moto"] = time.monotonic() - started
        log.info("moto server on %s", self.endpoint_url)
        # moto's backends are global to the process: what an earlier user of moto in this process
        # left there (a test's own moto server, a plan test's apply) goes before this apply, so the
        # deployment starts in an empty account, as its inventory and fresh-account checks assume.
        self._reset_moto()

        self._apply_example()

        started = time.monotonic()
        self._log_denials()
        self._admin = create_admin(self.client("iam"))
        self.roles = RoleSessions(self.client("iam"), self.region)
        if self.enforce_iam:
            self.iam.on()
        self._load_functions()
        self._start_api()
        # CloudWatch first: its SQS operation counts must see the pollers' very first receives
        # (a receive already waiting when the counting starts would go uncounted).
        self._start_cloudwatch()
        self._start_event_source()
        self.timings["runtime"] = time.monotonic() - started

    def _apply_example(self) -> None:
        """Terraform init + apply of the example against moto; its outputs; its RDS endpoints routed."""
        variables = dict(self.extra_variables)
        if self.prepare is not None:
            variables.update(self.prepare(self))
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
        self.region = region_of(self.outputs, self.region)
        complete_outputs(self.outputs, self.client)
        if self.postgres is not None:
            self.databases = LocalDatabases(self.postgres, self.log_dir / "databases", self.region)
            self.databases.discover(self.client("rds"))

    def _log_denials(self) -> None:
        """Each request moto's IAM checks refuse (principal, action, resource), in logs/iam.log."""
        handler = logging.FileHandler(self.log_dir / "iam.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        denials = logging.getLogger("async_jobs_local.iam")
        denials.addHandler(handler)
        self._exit.callback(denials.removeHandler, handler)
        self._exit.callback(handler.close)

    def _runtime_environment(self) -> dict[str, str]:
        return {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def _spec(self, function_name: str, package: Path | None = None) -> FunctionSpec:
        """The deployed configuration of ``function_name``; its code from ``package`` (by default
        the package its handler's module names)."""
        config = self.client("lambda").get_function_configuration(FunctionName=function_name)
        handler = config["Handler"]
        package = package or self.packages_dir / handler.split(".")[0]
        if not package.is_dir():
            raise DeploymentError(
                f"{function_name}: handler {handler} matches no package in {self.packages_dir}"
            )
        role = config.get("Role", "")
        assert self.roles is not None
        return FunctionSpec(
            name=function_name,
            arn=config.get("FunctionArn", ""),
            handler=handler,
            code_dir=package,
            environment=dict((config.get("Environment") or {}).get("Variables") or {}),
            timeout=float(config.get("Timeout") or 3),
            memory_mb=int(config.get("MemorySize") or 128),
            runtime_environment={
                **self._runtime_environment(),
                **self._fault_environment(function_name),
                **self._database_environment(function_name),
            },
            credentials=self.roles.provider(role, function_name) if role else None,
            log_path=self.log_dir / f"{function_name}.log",
            role=role,
            instruments=self.instruments,
        )

    def _fault_environment(self, function_name: str) -> dict[str, str]:
        is_worker = function_name == self.outputs.get("worker_function_name")
        return self.faults.environment() if self.faults and is_worker else {}

    def _database_environment(self, function_name: str) -> dict[str, str]:
        is_worker = function_name == self.outputs.get("worker_function_name")
        return self.databases.environment() if self.databases and is_worker else {}

    def _concurrency(self, function_name: str) -> int:
        reserved = self.client("lambda").get_function_concurrency(FunctionName=function_name)
        value = reserved.get("ReservedConcurrentExecutions")
        return int(value) if value is not None else DEFAULT_CONCURRENCY

    def _reconfigure(self, function_name: str) -> None:
        """Run ``function_name`` with its configuration as updated (environment, handler, role, timeout,
        memory): Lambda's next invocations start new environments with it. The code stays the one
        deployed, so a handler naming a module it lacks fails at init, as on AWS."""
        self._reconfigured.discard(function_name)
        spec = self._spec(function_name, self.functions[function_name].code_dir)
        self.functions[function_name] = spec
        self.pools[function_name].reconfigure(spec)
        log.info("%s: configuration updated; new environments start with it", function_name)

    def _configuration_updated(self, function_name: str) -> None:
        if function_name in self.functions and function_name in self.pools:
            self._reconfigured.add(function_name)

    def _load_functions(self) -> None:
        # functions whose configuration changed (UpdateFunctionConfiguration) since their spec was read
        self._reconfigured: set[str] = set()
        self._exit.callback(on_configuration_update(self._configuration_updated))
        names = set((self.outputs.get("api_routes") or {}).values())
        worker = self.outputs.get("worker_function_name")
        if worker:
            names.add(worker)
        for name in sorted(names):
            self.functions[name] = self._spec(name)
        self._load_local_functions()
        mapping = self.outputs.get("worker_event_source_mapping") or {}
        worker_concurrency = int(mapping.get("maximum_concurrency") or 2)
        local = {function.name: function.concurrency for function in self.extra_routes.values()}
        for name, spec in self.functions.items():
            is_worker = name == worker
            # The mapping's pollers never exceed maximum_concurrency; an API call beyond the
            # function's limit waits briefly, then is throttled.
            pool = FunctionPool(
                spec,
                max_size=(local[name] or DEFAULT_CONCURRENCY) if name in local else self._concurrency(name),
                throttle_wait=spec.timeout if is_worker else API_THROTTLE_WAIT,
                faults=self.faults if is_worker else None,
            )
            self.pools[name] = pool
            if self.prewarm:
                try:
                    pool.warm(worker_concurrency if is_worker else 1)
                except InitError as exc:
                    # As on AWS the deployment stands; every invocation fails (502 on the API).
                    self.init_errors[name] = str(exc)

    def _load_local_functions(self) -> None:
        """Specs of the extra routes' local-only functions, each like the deployed one it names."""
        for function in self.extra_routes.values():
            like = self.outputs.get(f"{function.like}_function_name")
            if not like or like not in self.functions:
                raise DeploymentError(f"{function.name}: no deployed {function.like} function to run like")
            base = self.functions[like]
            self.functions[function.name] = dataclasses.replace(
                base,
                name=function.name,
                handler=function.handler,
                code_dir=package_for(function, self.packages_dir, base.code_dir),
                environment={**base.environment, **function.environment},
                timeout=function.timeout,
                log_path=self.log_dir / f"{function.name}.log",
            )

    def set_worker_concurrency(self, concurrency: int) -> None:
        """Run the worker's mapping with ``concurrency`` pollers and as many environments, as
        ``update-event-source-mapping`` (ScalingConfig) with a matching function concurrency does."""
        if self.event_source is None:
            raise DeploymentError("the worker's queue is not polled")
        worker = str(self.outputs.get("worker_function_name"))
        self.event_source.stop()
        self.pools[worker].max_size = max(1, concurrency)
        self.event_source.maximum_concurrency = max(1, concurrency)
        self.event_source.start()

    def _lookup_api_key(self, value: str) -> str | None:
        if value in self._api_key_ids:
            return self._api_key_ids[value]
        apigw = self.client("apigateway")
        for key in apigw.get_api_keys(includeValues=True).get("items", []):
            if key.get("value") == value and key.get("enabled", True):
                self._api_key_ids[value] = key["id"]
                return key["id"]
        return None

    def _gateway_responses(self, outputs: dict[str, Any]) -> GatewayResponses | None:
        """The deployed REST API's gateway responses (its own errors as the module shapes them)."""
        api_id = str(outputs.get("api_id") or "")
        if str(outputs.get("api_type") or "rest") != "rest" or not api_id:
            return None
        answer = self.client("apigateway").get_gateway_responses(restApiId=api_id)
        return GatewayResponses.from_api(answer.get("items", []))

    def _start_api(self) -> None:
        outputs = self.outputs
        if self.extra_routes:
            routes = {key: function.name for key, function in self.extra_routes.items()}
            outputs = {**outputs, "api_routes": {**(outputs.get("api_routes") or {}), **routes}}
        self.gateway = ApiGateway(
            outputs, self.invoke, self._lookup_api_key, self.region, self._gateway_responses(outputs)
        )
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
            # Lambda's pollers receive and delete with the function's execution role.
            sqs=self.role_client(worker, "sqs"),
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
            faults=self.faults,
        )
        # the DLQ's mapping (dead-letter accounting) polls under the same role
        dead_letters = dead_letter_source(
            self.outputs,
            sqs=self.role_client(worker, "sqs"),
            function_name=worker,
            invoke=self.invoke,
            region=self.region,
        )
        self.event_source.companions = [dead_letters] if dead_letters else []
        self.event_source.start()
        log.info(
            "worker mapping: batch %s, window %ss, concurrency %s, visibility %ss, redrive %s",
            self.event_source.batch_size,
            self.event_source.batching_window,
            self.event_source.maximum_concurrency,
            attributes.get("VisibilityTimeout"),
            attributes.get("RedrivePolicy"),
        )

    def _start_cloudwatch(self) -> None:
        """Metrics published and the module's alarms evaluated and delivered (cloudwatch/)."""
        api_type = str(self.outputs.get("api_type") or "rest")
        api_id = str(self.outputs.get("api_id") or "")
        api = {"type": api_type, "id": api_id, "stage": self.gateway.stage if self.gateway else ""}
        if api_type == "rest" and api_id:
            api["name"] = self.client("apigateway").get_rest_api(restApiId=api_id)["name"]
        self.cloudwatch = LocalCloudWatch(
            self.client,
            region=self.region,
            api=api,
            log_dir=self.log_dir,
            history_path=self.log_dir / "alarms.log",
            time_scale=self.alarm_time_scale,
        ).start()
        if self.gateway is not None:
            self.gateway.observer = self.cloudwatch.observe_request

    def _reset_moto(self) -> None:
        try:
            request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:
            log.debug("moto reset failed: %s", exc)
