"""RDS instances of a local deployment, answered by a local PostgreSQL server.

moto records an ``aws_db_instance`` (endpoint, port, IAM authentication) but runs no database.
``LocalDeployment(postgres=server)`` gives the worker a real one: each RDS endpoint is routed to
``server`` (async_jobs_local.postgres), whose certificate also carries the endpoints' names,
so the worker's ``sslmode`` and CA bundle are used exactly as deployed.

RDS IAM database authentication is played on the client's side, since no PostgreSQL can check
an AWS signature: a connection to an IAM-enabled endpoint whose password is an auth token is let
in only if the token is one RDS would take (this endpoint and user, ``rds-db``, this region,
not expired, signed with the function's own role credentials); the server then trusts members
of ``rds_iam``, as RDS does. A wrong token fails as RDS fails it (``PAM authentication failed``).

One fault, for tests: ``LocalDatabases.arm_kill()`` makes the next sink transaction that has
COPYed and run its next statement (the upsert) record its transaction id and SIGKILL its own
process, before COMMIT, as Lambda does to a worker that times out there.

Like faults.py, the process side imports only the standard library at the top: the runtime loop
loads this file by path inside a process whose ``sys.path`` is the function's package, and
takes psycopg from that package.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .postgres import PostgresServer

ENV_VAR = "ASYNC_JOBS_LOCAL_DATABASES"
ARMED = "kill-armed"
TOKEN_LIFETIME = 900  # seconds RDS accepts an auth token for


@dataclass(frozen=True)
class Route:
    """An RDS endpoint and the local server port that answers it."""

    host: str
    port: int
    local_port: int
    iam: bool


class LocalDatabases:
    """The parent's side: which endpoints go where, and the transaction kills made."""

    def __init__(self, server: PostgresServer, state_dir: Path, region: str) -> None:
        self.server = server
        self.state_dir = state_dir
        self.region = region
        self.routes: list[Route] = []
        state_dir.mkdir(parents=True, exist_ok=True)

    def discover(self, rds: Any) -> list[Route]:
        """Route every RDS instance of the deployment to the local server."""
        for page in rds.get_paginator("describe_db_instances").paginate():
            for instance in page.get("DBInstances", []):
                endpoint = instance.get("Endpoint") or {}
                if not endpoint.get("Address"):
                    continue
                self.routes.append(
                    Route(
                        host=endpoint["Address"],
                        port=int(endpoint.get("Port") or 5432),
                        local_port=self.server.port,
                        iam=bool(instance.get("IAMDatabaseAuthenticationEnabled")),
                    )
                )
                # RDS creates the instance's initial database (db_name)
                if instance.get("DBName"):
                    self.server.create_database(instance["DBName"])
        if self.routes:
            self.server.recertify(tuple(route.host for route in self.routes))
        if any(route.iam for route in self.routes):
            self.server.enable_iam_auth()
        return self.routes

    def environment(self) -> dict[str, str]:
        """What a worker process inherits to reach the routed endpoints."""
        config = {
            "routes": [asdict(route) for route in self.routes],
            "state_dir": str(self.state_dir),
            "region": self.region,
        }
        return {ENV_VAR: json.dumps(config)}

    def arm_kill(self) -> None:
        """The next sink transaction to reach its upsert dies before COMMIT."""
        (self.state_dir / ARMED).touch()

    def kills(self) -> list[dict[str, Any]]:
        """Each killed transaction: ``xid`` (None if the upsert ran outside a transaction), ``rows``."""
        return [json.loads(path.read_text()) for path in sorted(self.state_dir.glob("killed-*.json"))]


# ---------------------------------------------------------------------- inside a function process


def token_problem(
    token: str, *, host: str, port: int, user: str, region: str, access_key: str, now: float
) -> str | None:
    """Why RDS would refuse ``token`` for ``user`` at ``host:port``, or None if it would take it."""
    prefix = f"{host}:{port}/?"
    if not token.startswith(prefix):
        return "the token is for another endpoint"
    query = urllib.parse.parse_qs(token[len(prefix) :])

    def one(name: str) -> str:
        return (query.get(name) or [""])[0]

    credential = one("X-Amz-Credential").split("/")
    try:
        signed = datetime.strptime(one("X-Amz-Date"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        expires = int(one("X-Amz-Expires"))
    except ValueError:
        signed, expires = 0.0, 0
    checks = (
        (
            one("Action") == "connect" and one("DBUser") == user,
            f"the token is not a connect token for {user}",
        ),
        (
            len(credential) == 5 and credential[2] == region and credential[3] == "rds-db",
            "the token is not signed for rds-db in this region",
        ),
        (
            not access_key or credential[0] == access_key,
            "the token is not signed with the function's credentials",
        ),
        (
            0 < expires <= TOKEN_LIFETIME and now <= signed + expires,
            "the token has expired or has no valid date",
        ),
        (bool(one("X-Amz-Signature")), "the token is not signed"),
    )
    return next((problem for passed, problem in checks if not passed), None)


def _is_token(password: str) -> bool:
    return "X-Amz-Signature=" in password and "Action=connect" in password


class _Connector:
    def __init__(self, config: dict[str, Any], psycopg: Any) -> None:
        self.routes = {(route["host"], int(route["port"])): route for route in config["routes"]}
        self.state_dir = Path(config["state_dir"])
        self.region = config["region"]
        self.psycopg = psycopg
        self.original = psycopg.connect
        self.cursor_class = _killing_cursor(psycopg.Cursor, self.state_dir)

    def connect(self, conninfo: str = "", **kwargs: Any) -> Any:
        host, port = str(kwargs.get("host") or ""), int(kwargs.get("port") or 5432)
        route = self.routes.get((host, port))
        if route is not None:
            user, password = str(kwargs.get("user") or ""), str(kwargs.get("password") or "")
            if route["iam"] and _is_token(password):
                problem = token_problem(
                    password,
                    host=host,
                    port=port,
                    user=user,
                    region=self.region,
                    access_key=os.environ.get("AWS_ACCESS_KEY_ID", ""),
                    now=time.time(),
                )
                if problem:
                    print(f"local RDS: refused {user}@{host}: {problem}", file=sys.stderr)
                    raise self.psycopg.OperationalError(
                        f'connection to server at "{host}", port {port} failed: '
                        f'FATAL:  PAM authentication failed for user "{user}"'
                    )
            # the name stays: TLS checks the certificate against it (verify-full)
            kwargs["hostaddr"] = "127.0.0.1"
            kwargs["port"] = route["local_port"]
        kwargs.setdefault("cursor_factory", self.cursor_class)
        return self.original(conninfo, **kwargs)


def _killing_cursor(base: Any, state_dir: Path) -> Any:
    """A cursor that, when a kill is armed, dies in the statement right after a COPY."""

    class KillingCursor(base):
        _copied = False

        def copy(self, *args: Any, **kwargs: Any) -> Any:
            self._copied = True
            return super().copy(*args, **kwargs)

        def execute(self, *args: Any, **kwargs: Any) -> Any:
            result = super().execute(*args, **kwargs)
            if self._copied:
                self._copied = False
                self._maybe_die()
            return result

        def _maybe_die(self) -> None:
            claimed = state_dir / f"claimed-{os.getpid()}"
            try:
                os.rename(state_dir / ARMED, claimed)  # atomic: one transaction takes the kill
            except FileNotFoundError:
                return
            rows = self.rowcount
            # the upsert's transaction id, if it runs in one (None: it committed on its own)
            xid = self.connection.execute("SELECT pg_current_xact_id_if_assigned()::text").fetchone()[0]
            record = state_dir / f"killed-{time.time_ns()}.json"
            record.write_text(json.dumps({"xid": xid, "rows": rows, "pid": os.getpid()}))
            os.kill(os.getpid(), signal.SIGKILL)

    return KillingCursor


def install_from_environment(code_dir: str) -> None:
    """In a function process: route psycopg's connections to the local server."""
    value = os.environ.pop(ENV_VAR, None)
    if not value:
        return
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    try:
        import psycopg  # noqa: PLC0415 - from the function's package
    except ImportError:
        return  # a function without the postgres driver never connects
    psycopg.connect = _Connector(json.loads(value), psycopg).connect
