"""Callback rules: the URL checks at submit, the signature, the SSRF guard and the retry rules."""

from __future__ import annotations

import pytest

from async_jobs.callbacks import (
    AddressRefused,
    backoff_seconds,
    classify,
    host_allowed,
    resolve,
    sign,
    validate_callback_url,
    verify_signature,
)
from async_jobs.problems import ProblemError

ALLOWED = ("hooks.example.com", "*.partner.example")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("hooks.example.com", True),
        ("HOOKS.example.com.", True),
        ("a.partner.example", True),
        ("a.b.partner.example", True),
        ("partner.example", False),  # the wildcard names subdomains only
        ("evilpartner.example", False),
        ("hooks.example.com.evil.test", False),
        ("example.com", False),
    ],
)
def test_hosts_match_exactly_or_below_a_wildcard(host: str, allowed: bool) -> None:
    assert host_allowed(host, ALLOWED) is allowed


def test_an_allowed_https_url_is_accepted() -> None:
    url = "https://hooks.example.com:8443/jobs/ended?tenant=1"
    assert validate_callback_url(url, ALLOWED) == url
    assert validate_callback_url(None, ()) is None


@pytest.mark.parametrize(
    ("url", "allowed", "why"),
    [
        ("https://hooks.example.com/x", (), "not enabled"),
        ("http://hooks.example.com/x", ALLOWED, "https"),
        ("ftp://hooks.example.com/x", ALLOWED, "https"),
        ("https://other.example.com/x", ALLOWED, "not in the allowed callback hosts"),
        ("https://user:pw@hooks.example.com/x", ALLOWED, "credentials"),
        ("https://hooks.example.com/x#frag", ALLOWED, "fragment"),
        ("https://hooks.example.com:99999/x", ALLOWED, "not a valid URL"),
        ("https://hooks.example.com/a b", ALLOWED, "printable"),
        ("https:///x", ALLOWED, "host"),
        ("https://hooks.example.com/" + "a" * 2100, ALLOWED, "2048"),
    ],
)
def test_a_bad_callback_url_is_a_400_naming_the_field(url: str, allowed: tuple[str, ...], why: str) -> None:
    with pytest.raises(ProblemError) as raised:
        validate_callback_url(url, allowed)
    problem = raised.value.to_dict()
    assert problem["status"] == 400
    assert problem["errors"][0]["parameter"] == "Callback-Url"
    assert why in problem["detail"]


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_recent_time() -> None:
    body = b'{"job_id":"x","status":"succeeded"}'
    header = sign(b"secret", body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(b"secret", body, header, now=1_700_000_010)
    assert not verify_signature(b"other", body, header, now=1_700_000_010)
    assert not verify_signature(b"secret", body + b" ", header, now=1_700_000_010)
    assert not verify_signature(b"secret", body, header, now=1_700_001_000)  # a replay, too late
    assert not verify_signature(b"secret", body, "v1=" + header.split("v1=")[1], now=1_700_000_010)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "delivered"), (204, "delivered"), (500, "retry"), (503, "retry"), (429, "retry"), (408, "retry")]
    + [(400, "failed"), (404, "failed"), (301, "failed"), (302, "failed")],
)
def test_answers_decide_retry_or_not(status: int, outcome: str) -> None:
    assert classify(status).outcome == outcome


def test_backoff_doubles_up_to_sqs_limit() -> None:
    assert [backoff_seconds(n) for n in range(1, 9)] == [15, 30, 60, 120, 240, 480, 900, 900]


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.8", "169.254.169.254", "192.168.1.1", "::1", "fd00::1"]
)
def test_private_addresses_are_refused_unless_allowed(address: str) -> None:
    with pytest.raises(AddressRefused):
        resolve(address, 443, allow_private=False)
    assert resolve(address, 443, allow_private=True) == address


def test_a_public_address_is_used_as_resolved() -> None:
    assert resolve("93.184.215.14", 443, allow_private=False) == "93.184.215.14"
