"""A throwaway PostgreSQL server: initdb, TLS only, password auth, a free port.

The database of the sink tests, of the local stack's RDS instances (``LocalDeployment(postgres=...)``
answers an RDS endpoint with it) and of the database benchmark.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user the Debian
package creates (`.ci/run` installs the package when `initdb` is missing). Connections must use
TLS (`hostssl` only) with SCRAM passwords, as RDS with `rds.force_ssl` does, so the sink's
default `sslmode=require` is what the tests exercise; the certificate is self-signed for
127.0.0.1 (and any ``dns_names``, e.g. the RDS endpoints it stands for) and doubles as the root
certificate for `verify-full`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "local-superuser-password"  # noqa: S105 - a throwaway local server
USER = "async_jobs"
DATABASE = "sinks"


def bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin: Path
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def certificate(self) -> str:
        return str(self.root / "server.crt")

    def settings(self, **overrides: object) -> dict[str, object]:
        """psycopg.connect keyword arguments for the test user over TLS."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "dbname": DATABASE,
            "user": USER,
            "password": PASSWORD,
            "sslmode": "require",
            **overrides,
        }

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self, max_connections: int = 20, dns_names: tuple[str, ...] = ()) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._certify(dns_names)
        (self.root / "pwfile").write_text(PASSWORD + "\n")
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            for path in (self.root, self.root / "pwfile"):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "--auth=scram-sha-256",
            f"--pwfile={self.root / 'pwfile'}", "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = {max_connections}\n"
                f"ssl = on\nssl_cert_file = '{self.certificate}'\n"
                f"ssl_key_file = '{self.root / 'server.key'}'\nfsync = off\n"
            )
        self._write_hba()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "start")
        self.execute(f"CREATE DATABASE {DATABASE}", dbname="postgres")

    def _certify(self, dns_names: tuple[str, ...]) -> None:
        names = ",".join(["IP:127.0.0.1", *(f"DNS:{name}" for name in dns_names)])
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", f"subjectAltName={names}",
             "-keyout", str(self.root / "server.key"), "-out", self.certificate],
            check=True, capture_output=True,
        )  # fmt: skip
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            for path in (self.root / "server.key", self.root / "server.crt"):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(self.root / "server.key", 0o600)

    def recertify(self, dns_names: tuple[str, ...]) -> None:
        """A new certificate (same file) for 127.0.0.1 and ``dns_names``, taken up by the server."""
        self._certify(dns_names)
        self._run("pg_ctl", "-D", str(self.data), "reload")

    def _write_hba(self, iam_role: bool = False) -> None:
        # TLS or nothing: a plain-text connection is refused, as on RDS with rds.force_ssl
        lines = ["local all all scram-sha-256"]
        if iam_role:
            # Members of rds_iam log in with an IAM token, which no PostgreSQL can check: the local
            # runtime checks it on the client's side (databases.py) and the server lets them in.
            lines.append("hostssl all +rds_iam 127.0.0.1/32 trust")
        lines.append("hostssl all all 127.0.0.1/32 scram-sha-256")
        (self.data / "pg_hba.conf").write_text("\n".join(lines) + "\n")

    def enable_iam_auth(self) -> None:
        """The ``rds_iam`` role of RDS IAM database authentication: its members log in by token."""
        self.execute(
            "DO $$ BEGIN CREATE ROLE rds_iam NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            dbname="postgres",
        )
        self._write_hba(iam_role=True)
        self._run("pg_ctl", "-D", str(self.data), "reload")

    def create_database(self, name: str) -> None:
        """``name`` exists (created if it did not)."""
        import psycopg  # noqa: PLC0415

        with psycopg.connect(**self.settings(dbname="postgres"), autocommit=True) as conn:  # type: ignore[arg-type]
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')

    def execute(self, *statements: str, dbname: str = DATABASE) -> None:
        """Run statements as the server's superuser (the database owner's set-up)."""
        import psycopg  # noqa: PLC0415

        with psycopg.connect(**self.settings(dbname=dbname), autocommit=True) as conn:  # type: ignore[arg-type]
            for statement in statements:
                conn.execute(statement)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_server(max_connections: int = 20, dns_names: tuple[str, ...] = ()) -> PostgresServer | None:
    """A running server, or None when PostgreSQL is not installed on this machine."""
    binaries = bin_dir()
    if binaries is None:
        return None
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="async-jobs-pg-"))
    if run_as:
        os.chmod(root, 0o755)
    server = PostgresServer(root, _free_port(), binaries, run_as)
    deadline = time.monotonic() + 5
    while True:
        try:
            server.start(max_connections, dns_names)
            return server
        except subprocess.CalledProcessError:
            # the port may have been taken between choosing and binding it
            if time.monotonic() > deadline:
                raise
            shutil.rmtree(root / "data", ignore_errors=True)
            server.port = _free_port()
