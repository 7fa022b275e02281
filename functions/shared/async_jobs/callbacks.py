"""Per-job callbacks: the URL rules at submit, the signature, and one HTTPS delivery attempt.

A callback URL is `https://` only and its host and port must match the module's allow-list: an
entry is a host (`hooks.example.com`) or a wildcard (`*.example.com`, any depth below it), for
port 443 unless the entry names another (`hooks.example.com:8443`). At delivery the host is
resolved once and the connection goes to that address (no second lookup an attacker's DNS could
answer differently); private, loopback, link-local and other non-public addresses are refused
unless the module allows them, and so is every IPv6 form that carries an IPv4 address (mapped,
compatible, NAT64, 6to4, Teredo), whatever the address it carries. No redirect is followed and
every attempt ends by its deadline (`timeout_seconds`, connection to last byte read), however
slowly the receiver answers.

The receiver checks `Async-Jobs-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
`t + "." + event id + "." + body`, with the secret the module keeps in Secrets Manager, and
de-duplicates on the signed `Async-Jobs-Event-Id` (`verify_signature` is the reference).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from async_jobs import parameters
from async_jobs.problems import ProblemError, bad_request

SIGNATURE_HEADER = "Async-Jobs-Signature"
EVENT_ID_HEADER = "Async-Jobs-Event-Id"
MAX_URL_LENGTH = 2048
# 429 and 5xx are worth another attempt; any other answer is the receiver's final word.
RETRY_STATUSES = frozenset({408, 425, 429})
HTTPS_PORT = 443
# The signature header as `sign` writes it: a timestamp of at most 12 digits and 64 hex digits.
_SIGNATURE = re.compile(r"t=([0-9]{1,12}),v1=([0-9a-f]{64})")
# An allow-list entry: a host name or `*.` wildcard, and an optional port (ASCII digits).
_ALLOW_LIST_ENTRY = re.compile(r"((?:\*\.)?[a-z0-9.-]+)(?::([0-9]{1,5}))?")
# An event id the signature can cover unambiguously: visible ASCII without the "." separator.
_EVENT_ID = re.compile(r"[!-\-/-~]{1,200}")


def allow_list_entry(item: str) -> tuple[str, int]:
    """(host or `*.domain`, port) of one allow-list entry: `host` is port 443, `host:8443` names
    one. ValueError for an entry that is not of that form (the configuration refuses it)."""
    matched = _ALLOW_LIST_ENTRY.fullmatch(item.strip().lower())
    if matched is None or not 1 <= int(matched.group(2) or HTTPS_PORT) <= 65535:
        raise ValueError(f"{item!r} is not a host, *.domain, host:port or *.domain:port")
    return matched.group(1).rstrip("."), int(matched.group(2) or HTTPS_PORT)


def host_allowed(host: str, port: int, allowed: Sequence[str]) -> bool:
    """True when an entry of `allowed` names this host (exactly, or below a wildcard) and port."""
    host = host.lower().rstrip(".")
    for item in allowed:
        entry, entry_port = allow_list_entry(item)
        if entry_port != port:
            continue
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def url_port(parts: SplitResult) -> int:
    """The URL's port (443 when it names none), read as ASCII digits from 1 to 65535."""
    authority = parts.netloc.rpartition("@")[2]
    after_host = authority[authority.find("]") + 1 :] if authority.startswith("[") else authority
    if ":" not in after_host:
        return HTTPS_PORT
    text = after_host.partition(":")[2]
    return parameters.integer(text, "Callback-Url", minimum=1, maximum=65535, where="header")


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
        hostname = parts.hostname
    except ValueError:
        raise refuse("is not a valid URL") from None
    if parts.scheme != "https":
        raise refuse("must use https")
    if not hostname or parts.username or parts.password or parts.fragment:
        raise refuse("must name a host, with no credentials and no fragment")
    try:
        port = url_port(parts)
    except ProblemError:
        raise refuse("is not a valid URL: the port must be ASCII digits from 1 to 65535") from None
    if not host_allowed(hostname, port, allowed):
        raise refuse(f"host {hostname} port {port} is not in the allowed callback hosts and ports")
    return url


def _digest(secret: bytes, body: bytes, timestamp: int, event_id: str) -> bytes:
    signed = f"{timestamp}.{event_id}.".encode("ascii") + body
    return hmac.new(secret, signed, hashlib.sha256).hexdigest().encode("ascii")


def sign(secret: bytes, body: bytes, timestamp: int, event_id: str) -> str:
    """The `Async-Jobs-Signature` value: HMAC-SHA256 over timestamp, event id and body."""
    if not _EVENT_ID.fullmatch(event_id):
        raise ValueError("an event id is 1-200 visible ASCII characters without '.'")
    return f"t={timestamp},v1={_digest(secret, body, timestamp, event_id).decode('ascii')}"


def verify_signature(
    secret: bytes,
    body: bytes,
    header: str,
    event_id: str,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: the HMAC over (timestamp, event id, body) matches and the timestamp
    is recent (no replays). Anything malformed (a value of the wrong type, non-ASCII text, a
    missing or repeated part, a digest that is not 64 lower-case hex digits, an event id with a
    "." or outside visible ASCII) is False, never an exception. Digests compare as bytes."""
    if not (
        isinstance(secret, bytes)
        and isinstance(body, bytes)
        and isinstance(header, str)
        and isinstance(event_id, str)
    ):
        return False
    matched = _SIGNATURE.fullmatch(header)
    if matched is None or not _EVENT_ID.fullmatch(event_id):
        return False
    timestamp = int(matched.group(1))
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, body, timestamp, event_id)
    return hmac.compare_digest(expected, matched.group(2).encode("ascii"))


class AddressRefused(Exception):
    """The callback host resolves to an address the module does not call."""


# IPv6 prefixes whose addresses carry an IPv4 address (RFC 4291 mapped and compatible, RFC 6052
# and RFC 8215 NAT64, RFC 6145 SIIT, RFC 3056 6to4, RFC 4380 Teredo). `is_global` judges some of
# them by the IPv6 prefix alone: NAT64 and 6to4 forms of 127.0.0.1 read as global.
_IPV4_CARRYING = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in (
        "::ffff:0:0/96",
        "::/96",
        "::ffff:0:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
    )
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, when it is of a form that carries one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in _IPV4_CARRYING):
        # the low 32 bits: compatible, SIIT, NAT64 /96 (the /48 local-use prefix included)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(address: str) -> str | None:
    """Why the module does not call `address`, or None for a public address it calls."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        carried = embedded_ipv4(ip)
        if carried is not None:
            kind = "public" if carried.is_global else "non-public"
            return f"an IPv6 address carrying the {kind} IPv4 address {carried} ({address})"
    if not ip.is_global or ip.is_multicast:
        return f"a non-public address ({address})"
    return None


def public_address(address: str) -> bool:
    return refusal(address) is None


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """One address of `host` to connect to; every address must be public unless allowed."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise AddressRefused(f"{host} has no address")
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                raise AddressRefused(f"{host} resolves to {why}")
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address resolved beforehand, with SNI and certificate checks for the host.

    A socket timeout bounds each wait for a byte, not the attempt: a receiver sending one byte
    every few tenths of a second would hold it for as long as it likes. `cut()`, called by a
    timer at the attempt's deadline, shuts the socket down under whatever the attempt is
    blocked in (connect, TLS handshake, send, or reading the answer), which then fails."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._context = context
        self._lock = threading.Lock()
        self._live: socket.socket | None = None
        self.was_cut = False

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self._hold(raw)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)
        self._hold(self.sock)  # wrap_socket moved the descriptor to the TLS socket

    def _hold(self, sock: socket.socket) -> None:
        with self._lock:
            self._live = sock
            if self.was_cut:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            self.was_cut = True
            if self._live is None:
                return
            try:
                # the plain socket's shutdown, also on a TLS socket: the descriptor is shut under
                # the blocked read; SSLSocket.shutdown would pull its TLS state from under it
                socket.socket.shutdown(self._live, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


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
        host = parts.hostname or ""
        try:
            port = url_port(parts)
        except ProblemError:
            return Delivery("failed", None, "the URL's port is not valid")
        if parts.scheme != "https" or not host_allowed(host, port, self.allowed_hosts):
            return Delivery("failed", None, f"host {host} port {port} is no longer allowed")
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
            SIGNATURE_HEADER: sign(self.secret(), body, int(self.clock()), event_id),
        }
        connection = _PinnedHTTPSConnection(
            host, port, address, tls_context(self.ca_bundle_pem), self.timeout_seconds
        )
        return self._post(connection, path, body, headers)

    def _post(
        self, connection: _PinnedHTTPSConnection, path: str, body: bytes, headers: dict[str, str]
    ) -> Delivery:
        """One POST, cut at `timeout_seconds` from its start whatever it is waiting for."""
        deadline = threading.Timer(self.timeout_seconds, connection.cut)
        deadline.daemon = True
        deadline.start()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(4096)
        except ssl.SSLCertVerificationError as exc:
            return Delivery("retry", None, f"TLS: {exc.verify_message}")
        except (OSError, http.client.HTTPException) as exc:
            if connection.was_cut:
                return Delivery("retry", None, f"no complete answer within {self.timeout_seconds:g} s")
            return Delivery("retry", None, f"{exc.__class__.__name__}")
        finally:
            deadline.cancel()
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
