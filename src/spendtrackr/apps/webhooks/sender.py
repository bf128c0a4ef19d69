"""One signed HTTP request to an endpoint, with the destination checked after DNS resolution.

The address checked is the address connected to: the request goes to the resolved IP, with the
URL's host in `Host` and in TLS's SNI and certificate check, so a name that resolves to a public
address for the check and to a private one for the connection (DNS rebinding) cannot reach
inside. Redirects are not followed (a 3xx is a failed attempt).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx
from standardwebhooks.webhooks import Webhook

USER_AGENT = "SpendTrackr-Webhooks/1"


class Refused(Exception):
    """The destination may not be sent to."""


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def check_url(url: str) -> str:
    """The URL's host, if the URL is one an endpoint may have (http or https, a host, no
    credentials); ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("only http and https URLs are allowed")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.username or parts.password:
        raise ValueError("the URL may not carry credentials")
    return parts.hostname


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to: the first one the name resolves to, when every one of them is
    public (or private ones are allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"cannot resolve {host}: {exc.strerror}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise Refused(f"cannot resolve {host}")
    if not allow_private:
        blocked = [a for a in addresses if not is_public(a)]
        if blocked:
            raise Refused(
                f"{host} resolves to a private, loopback or link-local address ({blocked[0]})"
            )
    return addresses[0]


def signature(secrets: list[str], msg_id: str, at: datetime, body: bytes) -> str:
    """`webhook-signature`: one `v1,` signature per secret, space-separated."""
    return " ".join(Webhook(s).sign(msg_id=msg_id, timestamp=at, data=body) for s in secrets)


def send(
    client: httpx.Client,
    *,
    url: str,
    msg_id: str,
    body: bytes,
    secrets: list[str],
    at: datetime,
    allow_private: bool,
) -> Outcome:
    started = time.monotonic()

    def done(status_code: int | None, error: str | None) -> Outcome:
        return Outcome(status_code, int((time.monotonic() - started) * 1000), error)

    parts = urlsplit(url)
    host = check_url(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = resolve(host, port, allow_private=allow_private)
    except Refused as exc:
        return done(None, str(exc))
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": parts.netloc.rsplit("@", 1)[-1],
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(secrets, msg_id, at, body),
    }
    try:
        response = client.post(
            target, content=body, headers=headers, extensions={"sni_hostname": host}
        )
    except httpx.TimeoutException:
        return done(None, "timed out")
    except httpx.HTTPError as exc:
        return done(None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return done(response.status_code, None)
    return done(response.status_code, f"HTTP {response.status_code}")
