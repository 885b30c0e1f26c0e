# -*- test-case-name: tests.upstream.test_proxy_config -*-
"""Which proxy an upstream request goes through: parsing `proxy-url` values and the
environment fallback (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit

#: `proxy-url` values that force a direct connection (spec core §2.0).
DIRECT_VALUES = frozenset({"direct", "none"})

_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


class ProxyConfigError(ValueError):
    """A `proxy-url` that cannot be used; the message never contains its password."""


@dataclass(frozen=True)
class ProxySpec:
    """One parsed proxy: scheme in http|https|socks5|socks5h, with optional credentials."""

    scheme: str
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def remote_dns(self) -> bool:
        """socks5h (and HTTP proxies) resolve the target name on the proxy's side."""
        return self.scheme != "socks5"

    @property
    def redacted(self) -> str:
        """For logs: the URL without any credentials."""
        user = "***@" if self.username is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"


def parse_proxy_url(url: str) -> ProxySpec | None:
    """Parse a `proxy-url`; `None` for `direct`/`none`.

    Raises:
        ProxyConfigError: unknown scheme, no host, or a bad port.
    """
    url = url.strip()
    if url.lower() in DIRECT_VALUES:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ProxyConfigError(
            f"unsupported proxy scheme {scheme or '(none)'!r}: use http, https, socks5 or socks5h"
        )
    try:
        port = parts.port
    except ValueError:
        raise ProxyConfigError(f"bad port in proxy-url for host {parts.hostname!r}")
    if not parts.hostname:
        raise ProxyConfigError(f"proxy-url with scheme {scheme!r} has no host")
    return ProxySpec(
        scheme=scheme,
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def effective_proxy_url(credential_proxy: str, global_proxy: str) -> str:
    """The credential's `proxy-url`, else the global one; `""` means "ask the environment"."""
    return (credential_proxy or "").strip() or (global_proxy or "").strip()


@lru_cache(maxsize=256)
@lru_cache(maxsize=512)
def _is_loopback(host: str) -> bool:
    # cached: asked on every upstream request, and a host name fails ipaddress's IPv4 and
    # IPv6 parsers (two exceptions) before it is known not to be an address
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _no_proxy_matches(host: str, port: int, no_proxy: str) -> bool:
    host = host.lower().rstrip(".")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port = None
        if entry.count(":") == 1 and not entry.startswith("["):
            entry, _, p = entry.partition(":")
            entry_port = int(p) if p.isdigit() else None
        entry = entry.strip("[]")
        if entry_port is not None and entry_port != port:
            continue
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip("*").rstrip(".")
        if entry.startswith("."):
            if host.endswith(entry) or host == entry[1:]:
                return True
        elif host == entry or host.endswith("." + entry):
            return True
    return False


def proxy_from_environment(
    scheme: str, host: str, port: int, environ: Mapping[str, str] | None = None
) -> str | None:
    """The environment's proxy for a target, as Go's default transport would pick it.

    Loopback targets are never proxied; `NO_PROXY` entries (`*`, names, `.suffix`,
    `host:port`, CIDR) exclude targets. Returns a proxy URL or `None`.
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name) or env.get(name.lower()) or ""

    if _is_loopback(host):
        return None
    if _no_proxy_matches(host, port, get("NO_PROXY")):
        return None
    value = get("HTTPS_PROXY") if scheme == "https" else get("HTTP_PROXY")
    value = value or get("ALL_PROXY")
    if not value:
        return None
    if "://" not in value:
        # Go accepts a bare host:port and means http://
        value = "http://" + value
    return value
