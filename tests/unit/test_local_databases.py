"""The local runtime's stand-in for RDS IAM database authentication (async_jobs_local.databases)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from async_jobs_local.databases import token_problem

HOST, PORT, USER, REGION = (
    "db-1.aaaaaaaaaa.us-east-1.rds.amazonaws.com",
    5432,
    "async_jobs_loader",
    "us-east-1",
)
KEY = "ASIAEXAMPLEROLESESSION"


def token(
    *, host: str = HOST, port: int = PORT, user: str = USER, region: str = REGION, key: str = KEY
) -> str:
    rds = boto3.client(
        "rds",
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key="secret",
        aws_session_token="t",
    )
    return str(rds.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user))


def check(value: str, seconds_later: float = 0, **overrides: Any) -> str | None:
    settings: dict[str, Any] = {
        "host": HOST,
        "port": PORT,
        "user": USER,
        "region": REGION,
        "access_key": KEY,
        "now": time.time() + seconds_later,
    }
    return token_problem(value, **{**settings, **overrides})


def test_a_token_rds_would_take_is_taken() -> None:
    assert check(token()) is None


@pytest.mark.parametrize(
    ("value", "overrides", "problem"),
    [
        (lambda: token(host="db-2.aaaaaaaaaa.us-east-1.rds.amazonaws.com"), {}, "another endpoint"),
        (lambda: token(port=5433), {}, "another endpoint"),
        (lambda: token(user="app_admin"), {}, "connect token for async_jobs_loader"),
        (lambda: token(region="eu-west-1"), {}, "rds-db in this region"),
        (lambda: token(key="ASIAANOTHERSIGNER"), {}, "function's credentials"),
        (token, {"seconds_later": 901}, "expired"),
        (lambda: token().replace("X-Amz-Signature=", "X-Amz-Unsigned="), {}, "not signed"),
    ],
)
def test_a_token_rds_would_refuse_is_refused(value: Any, overrides: dict[str, Any], problem: str) -> None:
    found = check(value(), **overrides)
    assert found is not None and problem in found
