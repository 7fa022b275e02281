"""The shipped example processor (functions/worker/record_processors.py): its rules, the worker
applying it through RECORD_PROCESSOR, and its presence in the worker zip."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from .conftest import ROOT, Api, Aws, Worker, load_handler, result_lines

WORKER_DIR = ROOT / "functions" / "worker"


@pytest.fixture
def processors(monkeypatch: pytest.MonkeyPatch) -> object:
    # in Lambda the worker package's root is on sys.path; here its source directory is
    monkeypatch.syspath_prepend(str(WORKER_DIR))
    import record_processors  # noqa: PLC0415

    return record_processors


def test_contact_is_normalized(processors: object) -> None:
    normalize = processors.normalize_contact  # type: ignore[attr-defined]
    record = {"id": "c1", "email": "  Ann.Lee@Example.COM "}
    assert normalize(record) == {"id": "c1", "email": "ann.lee@example.com", "email_domain": "example.com"}
    assert record["email"] == "  Ann.Lee@Example.COM "  # the input is left as it was


@pytest.mark.parametrize(
    ("email", "message"),
    [
        (None, "email must be a string"),
        ("no-at-sign", "no user@domain.tld form"),
        ("@example.com", "no user@domain.tld form"),
        ("ann@localhost", "no user@domain.tld form"),
        ("a" * 250 + "@x.com", "more than 254"),
    ],
)
def test_bad_contact_is_refused(processors: object, email: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        processors.normalize_contact({"id": "c1", "email": email})  # type: ignore[attr-defined]


def test_worker_applies_it_and_fails_only_the_refused_record(
    processors: object, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the worker configured as examples/complete configures it
    monkeypatch.setenv("RECORD_PROCESSOR", "record_processors:normalize_contact")
    monkeypatch.setenv("TOLERATED_FAILURE_PERCENT", "50")
    api = Api(submit=load_handler("submit"), status=load_handler("status"))
    worker = Worker(load_handler("worker"), aws)
    records = [
        {"id": "a", "email": "A@Example.com"},
        {"id": "b", "email": "nobody"},
        {"id": "c", "email": "c@x.io"},
    ]
    reply = api.submit_json({"records": records})
    assert reply.status == 202, reply.body
    job_id = str(reply.body["job_id"])
    # WHEN the job runs
    worker.drain()
    # THEN the sink holds the normalized records and the refused one is a failed record
    job = api.get(job_id).body
    assert (job["succeeded_records"], job["failed_records"]) == (2, 1)
    stored = sorted((line["record_index"], line["record"]) for line in result_lines(aws, job_id))
    assert stored == [
        (0, {"id": "a", "email": "a@example.com", "email_domain": "example.com"}),
        (2, {"id": "c", "email": "c@x.io", "email_domain": "x.io"}),
    ]


def test_it_ships_in_the_worker_zip_and_imports_from_it() -> None:
    package = ROOT / "dist" / "worker.zip"
    if not package.exists():
        pytest.fail("dist/worker.zip is missing: run `make build`")
    with zipfile.ZipFile(package) as archive:
        assert "record_processors.py" in archive.namelist()
    # the zip alone on sys.path, no site-packages: what the Lambda runtime resolves
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]; import record_processors as p; "
        "print(p.normalize_contact({'email': 'X@Y.ORG'})['email_domain'])"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(package)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "y.org"
