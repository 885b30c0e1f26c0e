# -*- test-case-name: tests.amp.test_management -*-
"""Who may use Amp's management routes: the TCP peer decides, never a header."""

from __future__ import annotations

import ipaddress
from typing import Any

#: RTE-05's body, word for word (Amp users search for it)
LOCALHOST_ONLY = {"error": "Access denied: management routes restricted to localhost"}
NOT_CONFIGURED = {"error": "amp upstream proxy not available"}


def is_loopback_peer(address: Any) -> bool:
    """True when `address` (an `IAddress`) is a loopback IP; anything unparseable is not.

    `X-Forwarded-For` and friends are never consulted: a client can write them.
    """
    host = getattr(address, "host", None)
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str) or not host:
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def peer_of(request: Any) -> Any:
    """The TCP peer of a twisted.web request."""
    return request.getClientAddress()
