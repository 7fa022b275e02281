"""openapi.yaml against the running local stack: generated requests, every answer checked.

schemathesis generates requests from the document (valid ones and, in its negative mode,
requests that break the schema) and sends them over HTTP to ``examples/local`` applied to moto,
served by the local runtime. Each answer must not be a server error, and must be documented:
status code, content type, headers and body schema. The number of cases per operation is
bounded so the run stays under two minutes on a 2-core machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from async_jobs_local import LocalDeployment

from .conftest import ROOT

SCHEMA = schemathesis.openapi.from_path(ROOT / "openapi.yaml")


def _operations() -> list[tuple[str, str]]:
    found = []
    for result in SCHEMA.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()  # a document schemathesis cannot read is a failure, not fewer tests
        found.append((result.ok().method.upper(), result.ok().path))
    return found


OPERATIONS = _operations()
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation and generation mode: 5 operations x 2 modes x 30 cases take about 15 s here.
MAX_EXAMPLES = 30
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module")
def api_stack(faulty_stack: LocalDeployment) -> Iterator[LocalDeployment]:
    # The fault test's stack: its faults are the worker's, the API functions answer unharmed.
    yield faulty_stack
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(TALLY.items()))
    print(f"\nschemathesis: {sum(TALLY.values())} cases against the local stack ({statuses})")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_answers_as_documented(
    api_stack: LocalDeployment, method: str, path: str, mode: GenerationMode
) -> None:
    operation = SCHEMA[path][method.lower()]
    session = requests.Session()
    base_url = api_stack.stage_url
    server_errors: list[str] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a failure here is reproducible
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exchange(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, timeout=30)
        TALLY[str(response.status_code)] += 1
        if response.status_code >= 500:
            server_errors.append(f"{response.status_code} {case.method} {case.formatted_path}")
        case.validate_response(response, checks=CHECKS)

    exchange()
    assert server_errors == []
