"""examples/postgres on the local stack: its RDS endpoint answered by a local PostgreSQL server.

Shared by its end-to-end test and the database benchmark: the deployment (moto's default VPC,
TLS verified against the server's certificate, no deletion protection) and the set-up its
README asks of the database owner before the first job.
"""

from __future__ import annotations

from typing import Any

from .deployment import PROJECT_ROOT, LocalDeployment
from .postgres import PostgresServer

DATABASE = "app"  # the example's db_name
LOADER = "async_jobs_loader"
# The database owner's set-up, as examples/postgres/README.md gives it.
OWNER_SETUP = (
    f"CREATE USER {LOADER}",
    f"GRANT rds_iam TO {LOADER}",
    "CREATE TABLE public.job_records (job_id text NOT NULL, record_index bigint NOT NULL, "
    "record jsonb NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), "
    "PRIMARY KEY (job_id, record_index))",
    f"GRANT SELECT, INSERT, UPDATE ON public.job_records TO {LOADER}",
)


def default_network(stack: LocalDeployment) -> dict[str, Any]:
    """moto's default VPC and two of its subnets (in two Availability Zones)."""
    ec2 = stack.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    by_zone = {subnet["AvailabilityZone"]: subnet["SubnetId"] for subnet in subnets}
    return {"vpc_id": vpc, "subnet_ids": sorted(by_zone.values())[:2]}


def postgres_deployment(
    server: PostgresServer, variables: dict[str, Any] | None = None, **kwargs: Any
) -> LocalDeployment:
    """examples/postgres, not started. The state bucket is not force_destroy (a production
    example), so pass ``destroy_on_stop=False`` unless the jobs' objects are removed first."""
    return LocalDeployment(
        PROJECT_ROOT / "examples" / "postgres",
        port=0,
        postgres=server,
        prepare=default_network,
        variables={
            "deletion_protection": False,
            "database_ca_bundle": server.certificate,
            **(variables or {}),
        },
        **kwargs,
    )


def set_up_database(server: PostgresServer) -> None:
    """The owner's set-up, once the deployment runs (it creates the database and ``rds_iam``)."""
    server.execute(*OWNER_SETUP, dbname=DATABASE)
