"""Per-job callbacks: the URL rules at submit, the signature, and one HTTPS delivery attempt.

A callback URL is `https://` only and its host must match the module's allow-list (an exact host
or `*.example.com`, any depth below it). At delivery the host is resolved once and the
connection goes to that address (no second lookup an attacker's DNS could answer differently);
private, loopback, link-local and other non-public addresses are refused unless the module
allows them. No redirect is followed and every attempt has a short timeout.

The receiver checks `Async-Jobs-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`
with the secret the module keeps in Secrets Manager (`verify_signature` is the reference).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from async_jobs.problems import bad_request

SIGNATURE_HEADER = "Async-Jobs-Signature"
EVENT_ID_HEADER = "Async-Jobs-Event-Id"
MAX_URL_LENGTH = 2048
# 429 and 5xx are worth another attempt; any other answer is the receiver's final word.
RETRY_STATUSES = frozenset({408, 425, 429})


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for item in allowed:
        entry = item.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def validate_callback_url(value: str | None, allowed: Sequence[str]) -> str | None:
    """The submitted callback URL, or a 400 problem naming the field."""
    if value is None:
        return None

    def refuse(detail: str) -> Exception:
        return bad_request(
            f"Callback-Url: {detail}",
            errors=[{"parameter": "Callback-Url", "detail": detail}],
            slug="invalid-callback-url",
        )

    if not allowed:
        raise refuse("callbacks are not enabled on this API (no host is allowed)")
    url = value.strip()
    if len(url) > MAX_URL_LENGTH or any(ord(c) < 33 or ord(c) > 126 for c in url):
        raise refuse(f"must be an absolute https URL of at most {MAX_URL_LENGTH} printable characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of range
    except ValueError:
        raise refuse("is not a valid URL") from None
    if parts.scheme != "https":
        raise refuse("must use https")
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        raise refuse("must name a host, with no credentials and no fragment")
    if port == 0:
        raise refuse("has an invalid port")
    if not host_allowed(parts.hostname, allowed):
        raise refuse(f"host {parts.hostname} is not in the allowed callback hosts")
    return url


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: bytes, body: bytes, header: str, *, tolerance_seconds: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: the HMAC matches and the timestamp is recent (no replays)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


class AddressRefused(Exception):
    """The callback host resolves to an address the module does not call."""


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """One address of `host` to connect to; every address must be public unless allowed."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise AddressRefused(f"{host} has no address")
    if not allow_private:
        refused = [address for address in addresses if not public_address(address)]
        if refused:
            raise AddressRefused(f"{host} resolves to a non-public address ({refused[0]})")
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address resolved beforehand, with SNI and certificate checks for the host."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


@dataclass(frozen=True)
class Delivery:
    """One attempt's outcome: delivered, retry later, or failed for good."""

    outcome: str  # "delivered" | "retry" | "failed"
    http_status: int | None
    detail: str


def tls_context(ca_bundle_pem: str | None) -> ssl.SSLContext:
    """The system's trust store, plus a given CA bundle (a test receiver's own CA)."""
    context = ssl.create_default_context()
    if ca_bundle_pem:
        context.load_verify_locations(cadata=ca_bundle_pem)
    return context


@dataclass
class CallbackClient:
    """POSTs a signed body to one callback URL; the secret comes from `secret()` (cached)."""

    secret: Callable[[], bytes]
    allowed_hosts: Sequence[str]
    timeout_seconds: float = 5.0
    allow_private_addresses: bool = False
    ca_bundle_pem: str | None = None
    clock: Callable[[], float] = time.time

    def deliver(self, url: str, body: bytes, event_id: str) -> Delivery:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        if parts.scheme != "https" or not host_allowed(host, self.allowed_hosts):
            return Delivery("failed", None, f"host {host} is no longer allowed")
        try:
            address = resolve(host, port, allow_private=self.allow_private_addresses)
        except AddressRefused as exc:
            return Delivery("failed", None, str(exc))
        except OSError as exc:
            return Delivery("retry", None, f"cannot resolve {host}: {exc.__class__.__name__}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "async-jobs-callback/1",
            EVENT_ID_HEADER: event_id,
            SIGNATURE_HEADER: sign(self.secret(), body, int(self.clock())),
        }
        connection = _PinnedHTTPSConnection(
            host, port, address, tls_context(self.ca_bundle_pem), self.timeout_seconds
        )
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(4096)
        except ssl.SSLCertVerificationError as exc:
            return Delivery("retry", None, f"TLS: {exc.verify_message}")
        except (OSError, http.client.HTTPException) as exc:
            return Delivery("retry", None, f"{exc.__class__.__name__}")
        finally:
            connection.close()
        return classify(response.status)


def classify(status: int) -> Delivery:
    """2xx delivered; 429, 408 and 5xx retried; anything else (4xx, a redirect) failed."""
    if 200 <= status < 300:
        return Delivery("delivered", status, "delivered")
    if status in RETRY_STATUSES or status >= 500:
        return Delivery("retry", status, f"HTTP {status}")
    return Delivery("failed", status, f"HTTP {status} (not retried; redirects are not followed)")


def backoff_seconds(attempt: int, base: int = 15, ceiling: int = 900) -> int:
    """Delay before attempt `attempt + 1`: 15 s, 30 s, 60 s ... at most SQS's 900 s."""
    return int(min(ceiling, base * 2 ** max(0, attempt - 1)))


def secret_cache(read: Callable[[], str], ttl_seconds: float = 300.0) -> Callable[[], bytes]:
    """The secret, read again at most every `ttl_seconds` (a rotated secret is picked up)."""
    cached: dict[str, Any] = {}

    def get() -> bytes:
        if "value" not in cached or time.monotonic() - cached["at"] > ttl_seconds:
            cached["value"] = read().encode("utf-8")
            cached["at"] = time.monotonic()
        return bytes(cached["value"])

    return get
