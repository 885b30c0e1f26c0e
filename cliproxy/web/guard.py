# -*- test-case-name: tests.web.test_surface -*-
"""Client API keys: where a client may put one and how it is checked."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence

from twisted.web.http_headers import Headers
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from cliproxy.web.errors import error_response, family_for_path
from cliproxy.web.resources import add_cors
from cliproxy.web.state import state_of


def candidate_keys(request: Request) -> list[str]:
    """Every key the client offered, in CLIProxyAPI's order of precedence (`offered_keys`)."""
    return offered_keys(request.requestHeaders, request.args or {})


def offered_keys(headers: Headers, args: Mapping[bytes, Sequence[bytes]]) -> list[str]:
    """Every key in these headers and query arguments, in CLIProxyAPI's order of precedence.

    `Authorization: Bearer <k>` (the raw value when there is no Bearer scheme),
    `x-goog-api-key`, `x-api-key`, then `?key=` and `?auth_token=`.
    """
    found: list[str] = []
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
    return judge_keys(candidate_keys(request), api_keys)


def judge_keys(offered: list[str], api_keys: tuple[str, ...]) -> AuthResult:
    """Check offered keys against `api_keys`; an empty list means open access."""
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


def check_client_key(request: Request, api_keys: tuple[str, ...]) -> bytes | None:
    """Accept the request's key (recorded in its `RequestState`), or prepare a 401 in the
    family shape of its path and return the body to send."""
    offered = candidate_keys(request)
    auth = judge_keys(offered, api_keys)
    if not auth.ok:
        # counted against the peer by the Site's access log (cliproxy.web.admission)
        state_of(request).key_failed = bool(offered)
        return error_response(request, family_for_path(request.path), 401, auth.message)
    state_of(request).client_key = auth.key
    return None


class KeyGuard(Resource):
    """Wraps one endpoint: a request must carry an accepted client key to reach it.

    The tree puts one around every API leaf (`/v1/...`, `/v1beta/...` and Amp's provider
    routes); unknown paths stay 404s and a wrong method stays a 405 without a key.
    """

    def __init__(self, wrapped: IResource, api_keys: Callable[[], tuple[str, ...]]) -> None:
        Resource.__init__(self)
        self.wrapped = wrapped
        self.api_keys = api_keys

    @property
    def isLeaf(self) -> bool:  # type: ignore[override]
        return bool(self.wrapped.isLeaf)

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        child = self.wrapped.getChildWithDefault(path, request)
        return KeyGuard(child, self.api_keys)

    def render(self, request: Request) -> bytes | int:
        method = request.method.decode("latin-1")
        if getattr(self.wrapped, "render_" + method, None) is not None:
            add_cors(request)
            denied = check_client_key(request, self.api_keys())
            if denied is not None:
                return denied
        result: bytes | int = self.wrapped.render(request)
        return result
