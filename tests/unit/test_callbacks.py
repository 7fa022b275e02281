"""Callback rules: the URL checks at submit, the signature, the SSRF guard and the retry rules."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from async_jobs import callbacks
from async_jobs.callbacks import (
    AddressRefused,
    CallbackClient,
    allow_list_entry,
    backoff_seconds,
    classify,
    host_allowed,
    resolve,
    sign,
    validate_callback_url,
    verify_signature,
)
from async_jobs.config import ConfigError, NotifyConfig, _Env, declared
from async_jobs.problems import ProblemError

from ..tls import certificates

ALLOWED = ("hooks.example.com", "*.partner.example", "hooks.example.com:8443")


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
    assert host_allowed(host, 443, ALLOWED) is allowed


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("hooks.example.com", 443, True),
        ("hooks.example.com", 8443, True),  # named by its own entry
        ("hooks.example.com", 22, False),
        ("hooks.example.com", 6379, False),
        ("a.partner.example", 443, True),
        ("a.partner.example", 8443, False),  # the wildcard entry names no port: 443 only
    ],
)
def test_the_port_is_part_of_the_allow_list(host: str, port: int, allowed: bool) -> None:
    assert host_allowed(host, port, ALLOWED) is allowed


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:22/",
        "https://hooks.example.com:6379/x",
        "https://a.partner.example:8443/x",
    ],
)
def test_an_allowed_host_on_another_port_is_refused(url: str) -> None:
    with pytest.raises(ProblemError) as raised:
        validate_callback_url(url, ALLOWED)
    assert "not in the allowed callback hosts and ports" in raised.value.detail


@pytest.mark.parametrize("entry", ["hooks.example.com:http", "hooks.example.com:99999", "https://h", "h/p"])
def test_a_malformed_allow_list_entry_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ValueError):
        allow_list_entry(entry)
    with pytest.raises(ConfigError) as raised:
        NotifyConfig.from_env(
            _Env({"CALLBACK_ALLOWED_HOSTS": f"ok.example.com,{entry}"}, declared("notify_api")), worker=False
        )
    assert raised.value.name == "CALLBACK_ALLOWED_HOSTS"


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
        ("https://hooks.example.com:+443/x", ALLOWED, "not a valid URL"),
        ("https://hooks.example.com:" + "0" * 5000 + "443/x", ALLOWED, "2048"),
        ("https://hooks.example.com:/x", ALLOWED, "not a valid URL"),
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


BODY = b'{"job_id":"x","status":"succeeded"}'
EVENT = "0b7f4f0e-0000-4000-8000-000000000000:0"
NOW = 1_700_000_010


def test_a_signature_verifies_only_for_the_same_secret_body_event_and_a_recent_time() -> None:
    header = sign(b"secret", BODY, 1_700_000_000, EVENT)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(b"secret", BODY, header, EVENT, now=NOW)
    assert not verify_signature(b"other", BODY, header, EVENT, now=NOW)
    assert not verify_signature(b"secret", BODY + b" ", header, EVENT, now=NOW)
    assert not verify_signature(b"secret", BODY, header, EVENT, now=1_700_001_000)  # a replay, too late
    # the event id receivers de-duplicate on is signed: a replayer cannot change it
    assert not verify_signature(b"secret", BODY, header, EVENT[:-1] + "1", now=NOW)


def _valid() -> str:
    return sign(b"secret", BODY, 1_700_000_000, EVENT)


MALFORMED: dict[str, tuple[Any, Any, Any, Any]] = {
    "no timestamp": (b"secret", BODY, "v1=" + _valid().split("v1=")[1], EVENT),
    "no digest": (b"secret", BODY, "t=1700000000", EVENT),
    "empty header": (b"secret", BODY, "", EVENT),
    "non-ASCII digest": (b"secret", BODY, _valid()[:-1] + "\u00e9", EVENT),
    "non-ASCII timestamp": (b"secret", BODY, _valid().replace("t=1700000000", "t=\u00b2"), EVENT),
    "5,000-digit timestamp": (b"secret", BODY, _valid().replace("t=", "t=" + "0" * 5000), EVENT),
    "bad hex": (b"secret", BODY, _valid()[:-2] + "zz", EVENT),
    "short digest": (b"secret", BODY, _valid()[:-2], EVENT),
    "upper-case hex": (b"secret", BODY, _valid().upper().replace("T=", "t=").replace("V1=", "v1="), EVENT),
    "repeated part": (b"secret", BODY, _valid() + ",t=1700000000", EVENT),
    "spaces": (b"secret", BODY, _valid().replace(",", ", "), EVENT),
    "header as bytes": (b"secret", BODY, _valid().encode(), EVENT),
    "header None": (b"secret", BODY, None, EVENT),
    "body as str": (b"secret", BODY.decode(), _valid(), EVENT),
    "secret as str": ("secret", BODY, _valid(), EVENT),
    "event id None": (b"secret", BODY, _valid(), None),
    "event id non-ASCII": (b"secret", BODY, _valid(), EVENT + "\u00e9"),
    "event id with a dot": (b"secret", BODY, _valid(), EVENT + ".x"),
    "event id empty": (b"secret", BODY, _valid(), ""),
}


@pytest.mark.parametrize("form", sorted(MALFORMED))
def test_the_verifier_answers_false_to_every_malformed_form(form: str) -> None:
    secret, body, header, event_id = MALFORMED[form]
    assert verify_signature(secret, body, header, event_id, now=NOW) is False


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
    assert resolve("2606:4700:4700::1111", 443, allow_private=False) == "2606:4700:4700::1111"


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),  # mapped
        ("::ffff:8.8.8.8", "8.8.8.8"),  # mapped, public: refused as well
        ("::127.0.0.1", "127.0.0.1"),  # compatible
        ("::10.0.0.1", "10.0.0.1"),
        ("::ffff:0:a9fe:a9fe", "169.254.169.254"),  # SIIT
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64: is_global holds for it
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b::808:808", "8.8.8.8"),
        ("64:ff9b:1::a00:1", "10.0.0.1"),  # local-use NAT64
        ("2002:7f00:1::1", "127.0.0.1"),  # 6to4: is_global holds for it
        ("2002:a9fe:a9fe::", "169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo, client 127.0.0.1
    ],
)
def test_ipv6_forms_carrying_ipv4_are_refused_naming_the_address(address: str, carried: str) -> None:
    with pytest.raises(AddressRefused) as raised:
        resolve(address, 443, allow_private=False)
    assert f"IPv4 address {carried} " in str(raised.value)


# -- one attempt, one deadline ------------------------------------------------------------------
@pytest.fixture
def trickler(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """An HTTPS receiver that reads the request, then answers one byte every 0.4 s (for 8 s)."""
    ca, cert, key = certificates(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        raw, _ = listener.accept()
        try:
            with context.wrap_socket(raw, server_side=True) as conn:
                conn.settimeout(5)
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n":
                    if stop.wait(0.4):
                        return
                    conn.sendall(bytes([byte]))
        except OSError:
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], ca
    stop.set()
    listener.close()


def test_an_attempt_ends_at_its_deadline_however_slowly_the_receiver_answers(
    trickler: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a receiver that answers a byte every 0.4 s, each well within the socket timeout
    port, ca = trickler
    monkeypatch.setattr(callbacks, "resolve", lambda host, port, allow_private: "127.0.0.1")
    client = CallbackClient(
        secret=lambda: b"key",
        allowed_hosts=[f"localhost:{port}"],
        timeout_seconds=1.0,
        allow_private_addresses=True,
        ca_bundle_pem=ca,
    )
    # WHEN one attempt is made with timeout_seconds = 1
    started = time.monotonic()
    outcome = client.deliver(f"https://localhost:{port}/hook", b"{}", "job:0")
    elapsed = time.monotonic() - started
    # THEN it ends by its deadline (not after the whole trickled answer) and is retried
    assert elapsed < 1.8, elapsed
    assert (outcome.outcome, outcome.detail) == ("retry", "no complete answer within 1 s")
