"""The environment contract: what Terraform sets for each function is what its parser reads.

The guard fixture is planned for every sink type, both API types and each authorization the
API type accepts (one `terraform init`, the plans in parallel threads). Each function's
planned `environment.variables` goes to that function's config parser: every variable
Terraform sets must be one the parser declares (bar the runtime's own, listed below), every
variable the parser requires must be set, and parsing must succeed with the values planned.
Lambda's own rules on environments are checked too: no reserved keys, at most 4 KB.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tftest

from async_jobs.config import CONFIGS, ConfigError

from .conftest import FIXTURES
from .plan_support import PlanSummary, summarize

# Read by Powertools itself (Logger, Tracer, Metrics), not by the functions' parsers.
POWERTOOLS_VARIABLES = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
}
# Lambda refuses a function whose environment sets one of these ("Reserved keys used").
LAMBDA_RESERVED = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
}
LAMBDA_ENVIRONMENT_BYTES = 4 * 1024

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:warehouse-AbCdEf"
COPY_ROLE = "arn:aws:iam::123456789012:role/redshift-copy"
USER_POOL = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI"
SINKS: dict[str, dict[str, Any]] = {
    "s3": {"type": "s3"},
    "redshift_data cluster": {
        "type": "redshift_data",
        "redshift": {
            "table": "job_records",
            "schema": "analytics",
            "database": "dev",
            "cluster_identifier": "warehouse",
            "db_user": "loader",
            "copy_role_arn": COPY_ROLE,
        },
    },
    "redshift_data workgroup": {
        "type": "redshift_data",
        "redshift": {
            "table": "job_records",
            "database": "dev",
            "workgroup_name": "jobs",
            "workgroup_arn": "arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/"
            + "0f8a9c1e-1111-4222-8333-444455556666",
            "secret_arn": SECRET,
        },
    },
    "redshift": {
        "type": "redshift",
        "redshift": {
            "table": "job_records",
            "schema": "analytics",
            "database": "dev",
            "host": "warehouse.example.internal",
            "secret_arn": SECRET,
            "copy_role_arn": COPY_ROLE,
        },
    },
    "postgres iam": {
        "type": "postgres",
        "postgres": {
            "host": "jobs.cluster-abc.us-east-1.rds.amazonaws.com",
            "database": "app",
            "user": "loader",
            "table": "job_records",
            "db_resource_id": "cluster-ABCDEFGHIJKL",
        },
    },
    "postgres secret": {
        "type": "postgres",
        "postgres": {
            "host": "db.example.internal",
            "port": 6432,
            "database": "app",
            "user": "loader",
            "table": "job_records",
            "schema": "ingest",
            "auth": "secret",
            "secret_arn": SECRET,
            "sslmode": "verify-full",
            "sslrootcert": "certs/global-bundle.pem",
        },
    },
}
# Each authorization with the API type(s) that accept it, and the inputs it needs.
APIS: dict[str, dict[str, Any]] = {
    "rest AWS_IAM": {},
    "rest COGNITO": {"cognito_user_pool_arns": [USER_POOL]},
    "rest API_KEY": {},
    "rest NONE": {},
    "http AWS_IAM": {},
    "http JWT": {"jwt_authorizer": {"issuer": "https://issuer.example.com", "audience": ["jobs"]}},
    "http NONE": {},
}
# Every API variant once and every sink variant at least once, in as few plans as that takes.
CASES: dict[str, dict[str, Any]] = {}
for number, (api, extra) in enumerate(APIS.items()):
    sink_name = list(SINKS)[number % len(SINKS)]
    api_type, authorization = api.split()
    CASES[f"{api} + {sink_name}"] = {
        "api_type": api_type,
        "authorization": authorization,
        "sink": SINKS[sink_name],
        # the optional worker inputs once each, and a FIFO queue once
        "record_schema": '{"type": "object"}' if number == 1 else None,
        "queue_fifo": number == 2,
        **extra,
    }


@pytest.fixture(scope="module")
def plans(
    terraform: Callable[[Path], tftest.TerraformTest], empty_state: str
) -> dict[str, PlanSummary | Exception]:
    """All cases planned, two at a time (each plan is one terraform process)."""
    tf = terraform(FIXTURES / "guards")

    def plan(tf_vars: dict[str, Any]) -> PlanSummary | Exception:
        # tftest passes scalars with str(): Terraform wants lowercase booleans
        values = {
            k: str(v).lower() if isinstance(v, bool) else v for k, v in tf_vars.items() if v is not None
        }
        try:
            # -lock=false: the plans share one (absent) state and change nothing
            return summarize(tf.plan(output=True, tf_vars=values, state=empty_state, lock=False)._raw)
        except tftest.TerraformTestError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(CASES, pool.map(plan, CASES.values()), strict=True))


def environment(plan: PlanSummary, function: str) -> dict[str, str]:
    address = f"module.{function}.aws_lambda_function.this"
    assert address in plan.values, (
        f"{address} not planned (have {sorted(plan.of_type('aws_lambda_function'))})"
    )
    blocks = plan.values[address].get("environment") or []
    assert blocks and blocks[0].get("variables") is not None, f"{function}: environment unknown at plan time"
    return dict(blocks[0]["variables"])


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("function", sorted(CONFIGS))
def test_terraform_environment_is_what_the_function_reads(
    plans: dict[str, PlanSummary | Exception], case: str, function: str
) -> None:
    # GIVEN the environment Terraform plans for the function
    plan = plans[case]
    if isinstance(plan, Exception):
        text = " ".join(str(arg) for arg in plan.args)
        pytest.fail(f"plan failed for {case}: {text[text.find('Error:') :][:1500]}")
    variables = environment(plan, function)
    parser = CONFIGS[function]

    # THEN Lambda accepts it
    assert not set(variables) & LAMBDA_RESERVED, f"{function} sets reserved keys"
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    assert size <= LAMBDA_ENVIRONMENT_BYTES, f"{function} environment is {size} bytes"

    # AND every variable set is one the parser reads, every required one is set
    declared = parser.env_vars(variables)
    reads = {var.name for var in declared}
    unread = sorted(set(variables) - reads - POWERTOOLS_VARIABLES)
    assert not unread, f"Terraform sets {unread} for {function}, which its parser never reads"
    missing = sorted(var.name for var in declared if var.required and not variables.get(var.name, "").strip())
    assert not missing, f"{function} requires {missing}, which Terraform does not set"

    # AND the parser accepts the values and reads what the inputs said
    try:
        config = parser.from_env(variables)
    except ConfigError as exc:
        pytest.fail(f"{function} would not start with the planned environment: {exc}")
    tf_vars = CASES[case]
    if function == "worker":
        assert config.sink == tf_vars["sink"]["type"]  # type: ignore[union-attr]
        redshift = config.redshift  # type: ignore[union-attr]
        if "redshift" in tf_vars["sink"]:
            assert redshift is not None
            wanted = tf_vars["sink"]["redshift"]
            assert (redshift.schema, redshift.table) == (wanted.get("schema", "public"), wanted["table"])
            assert redshift.copy_role_arn == wanted.get("copy_role_arn")
        postgres = config.postgres  # type: ignore[union-attr]
        assert (postgres is not None) is ("postgres" in tf_vars["sink"])
        if postgres is not None:
            wanted = tf_vars["sink"]["postgres"]
            assert (postgres.host, postgres.port, postgres.schema, postgres.table) == (
                wanted["host"],
                wanted.get("port", 5432),
                wanted.get("schema", "public"),
                wanted["table"],
            )
            assert (postgres.auth, postgres.secret_arn, postgres.sslmode) == (
                wanted.get("auth", "iam"),
                wanted.get("secret_arn"),
                wanted.get("sslmode", "require"),
            )
            # the statement timeout ends before the worker's (default worker.timeout 120 - 30)
            assert postgres.timeout_seconds == 90
        assert config.queue_fifo is tf_vars["queue_fifo"]  # type: ignore[union-attr]
        assert (config.record_schema_key is not None) is (tf_vars["record_schema"] is not None)  # type: ignore[union-attr]
    else:
        assert (config.api_type, config.authorization) == (  # type: ignore[union-attr]
            tf_vars["api_type"],
            tf_vars["authorization"],
        )
