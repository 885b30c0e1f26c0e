# -*- test-case-name: tests.security.test_origin -*-
"""Which browsers and which Host names may talk to cliproxy.

A web page the user visits can make the browser send requests to `localhost:8317`. Two
checks keep such pages out, both decided from the headers alone:

- **Host** (DNS rebinding): a connection that arrived on a loopback address is served only
  for `localhost`, `127.0.0.1`, `[::1]` (any port) and the names in `allowed-hosts`; a page
  whose own name was rebound to 127.0.0.1 sends its own name and gets 421. On other
  addresses the check applies once `allowed-hosts` is set.
- **Origin**: a request whose `Origin` is not cliproxy's own (the scheme and Host it was
  sent to), or that a browser marks `Sec-Fetch-Site: cross-site`, is refused unless the
  origin is in `cors.allow-origins`. Clients that send neither header (SDKs, CLIs, curl)
  are not affected. Allowed cross origins get CORS headers on every reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from cliproxy.config.exposure import is_loopback_host

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}

CORS_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_EXPOSED = b"X-Request-Id, X-CPA-VERSION, X-SERVER-VERSION"


def host_name(host: bytes) -> str | None:
    """The name part of a Host header value (port dropped, lowercased), or None if malformed."""
    try:
        text = host.decode("ascii").strip().lower()
    except UnicodeDecodeError:
        return None
    if text.startswith("["):
        end = text.find("]")
        port = text[end + 1 :]
        if end < 0 or (port and not (port[:1] == ":" and port[1:].isdigit())):
            return None
        return text[: end + 1]
    name, _, port = text.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def host_allowed(host: bytes | None, allowed: tuple[str, ...], on_loopback: bool) -> bool:
    """Whether a request with this Host header may be served (see the module docstring)."""
    if "*" in allowed or (not on_loopback and not allowed):
        return True
    name = host_name(host) if host is not None else None
    if name is None:
        return False
    if on_loopback and (name in LOOPBACK_NAMES or is_loopback_host(name)):
        return True
    return name in allowed


def _canonical(origin: str) -> str:
    """`http://LocalHost:80` -> `http://localhost` (default ports dropped), for comparing."""
    origin = origin.strip().lower().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    default = _DEFAULT_PORTS.get(scheme)
    if sep and default and rest.endswith(default):
        rest = rest[: -len(default)]
    return f"{scheme}{sep}{rest}"


@dataclass(frozen=True, slots=True)
class OriginVerdict:
    """`allowed`; `cors`: the `Access-Control-Allow-Origin` value to send (None: none)."""

    allowed: bool
    cors: bytes | None = None
    reason: str = ""


def judge_origin(
    origin: bytes | None,
    fetch_site: bytes | None,
    own_origin: str,
    allow: tuple[str, ...],
) -> OriginVerdict:
    """Whether a browser request from `origin` may be served (see the module docstring)."""
    cross = fetch_site is not None and fetch_site.strip().lower() == b"cross-site"
    if origin is None:
        if cross:
            return OriginVerdict(
                False,
                reason="cross-site browser requests are refused; "
                "add the page's origin to cors.allow-origins in config.yaml to allow it",
            )
        return OriginVerdict(True)
    text = origin.decode("latin-1")
    canonical = _canonical(text)
    if canonical == _canonical(own_origin) and not cross:
        return OriginVerdict(True)
    if canonical in allow:
        return OriginVerdict(True, cors=text.encode("latin-1"))
    if "*" in allow:
        return OriginVerdict(True, cors=b"*")
    return OriginVerdict(
        False,
        reason=f"requests from the web page at {text!r} are refused; "
        "add its origin to cors.allow-origins in config.yaml to allow it",
    )


def cors_headers(allow_origin: bytes, *, preflight: bool) -> list[tuple[bytes, bytes]]:
    """The CORS headers for an allowed cross origin (preflight: also methods and headers)."""
    out = [
        (b"access-control-allow-origin", allow_origin),
        (b"access-control-expose-headers", CORS_EXPOSED),
    ]
    if allow_origin != b"*":
        out.append((b"vary", b"Origin"))
    if preflight:
        out.append((b"access-control-allow-methods", CORS_METHODS))
        out.append((b"access-control-allow-headers", b"*"))
        out.append((b"access-control-max-age", b"600"))
    return out


__all__ = [
    "LOOPBACK_NAMES",
    "OriginVerdict",
    "cors_headers",
    "host_allowed",
    "host_name",
    "judge_origin",
]
