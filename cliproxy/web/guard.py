# -*- test-case-name: tests.web.test_surface -*-
"""Client API keys: where a client may put one and how it is checked."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from twisted.web.server import Request


def candidate_keys(request: Request) -> list[str]:
    """Every key the client offered, in CLIProxyAPI's order of precedence.

    `Authorization: Bearer <k>` (the raw value when there is no Bearer scheme),
    `x-goog-api-key`, `x-api-key`, then `?key=` and `?auth_token=`.
    """
    found: list[str] = []
    headers = request.requestHeaders
    for value in headers.getRawHeaders(b"authorization", []):
        value = value.strip()
        if value[:7].lower() == b"bearer ":
            value = value[7:].strip()
        if value:
            found.append(value.decode("latin-1"))
    for name in (b"x-goog-api-key", b"x-api-key"):
        for value in headers.getRawHeaders(name, []):
            value = value.strip()
            if value:
                found.append(value.decode("latin-1"))
    args = request.args or {}
    for name in (b"key", b"auth_token"):
        for value in args.get(name, []):
            if value:
                found.append(value.decode("latin-1"))
    return found


def match_key(offered: Iterable[str], allowed: Iterable[str]) -> str | None:
    """The first offered key that is allowed, compared in constant time.

    Every allowed key is compared against every offered key, so the time taken does
    not tell which key, or which prefix, came close. An offered key that fails (such
    as the literal `placeholder` Amp sends in x-goog-api-key next to a real bearer
    key) does not spoil a good one.
    """
    allowed_b = [k.encode("utf-8") for k in allowed]
    winner: str | None = None
    for key in offered:
        kb = key.encode("utf-8")
        hit = False
        for a in allowed_b:
            hit |= hmac.compare_digest(kb, a)
        if hit and winner is None:
            winner = key
    return winner


class AuthResult:
    __slots__ = ("ok", "key", "message")

    def __init__(self, ok: bool, key: str | None, message: str) -> None:
        self.ok = ok
        self.key = key
        self.message = message


def authenticate(request: Request, api_keys: tuple[str, ...]) -> AuthResult:
    """Check the request against `api_keys`; an empty list means open access."""
    offered = candidate_keys(request)
    if not api_keys:
        return AuthResult(True, None, "")
    if not offered:
        return AuthResult(
            False,
            None,
            "Missing API key: send one of the api-keys from config.yaml as "
            "'Authorization: Bearer <key>', 'x-api-key', 'x-goog-api-key' or '?key='",
        )
    key = match_key(offered, api_keys)
    if key is None:
        return AuthResult(False, None, "Invalid API key")
    return AuthResult(True, key, "")
