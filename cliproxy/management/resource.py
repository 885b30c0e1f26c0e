# -*- test-case-name: tests.management.test_access -*-
"""The `/v0/management` gate and the small Resource classes every endpoint builds on.

Answers are JSON; errors are `{"error": "..."}` as CLIProxyAPI sends them. The gate is a
leaf: once a request is admitted, it walks its own subtree with the rest of the path.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import threads
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET, Request

from cliproxy import __version__
from cliproxy.management.access import Denied, ManagementAccess, NeedsBcrypt, check_hash
from cliproxy.web.errors import json_response
from cliproxy.web.resources import add_cors
from cliproxy.web.state import client_gone

log = Logger()

VERSION_HEADERS = (
    (b"X-CPA-VERSION", __version__.encode("ascii")),
    (b"X-CPA-COMMIT", b"none"),
    (b"X-CPA-BUILD-DATE", b"unknown"),
    (b"X-CPA-SUPPORT-PLUGIN", b"false"),
)


class BadRequest(Exception):
    """A client mistake: answer `status` with `{"error": message}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def answer(request: Request, obj: Any, status: int = 200) -> bytes:
    return json_response(request, status, obj)


def error(request: Request, status: int, message: str) -> bytes:
    return json_response(request, status, {"error": message})


def read_json(request: Request, *, allow_empty: bool = False) -> Any:
    """The request body as JSON.

    Raises:
        BadRequest: `invalid body` when it is not JSON (or empty, unless allowed).
    """
    content = request.content
    if content is None:
        raw = b""
    else:
        content.seek(0)
        raw = content.read()
    if not raw.strip():
        if allow_empty:
            return None
        raise BadRequest("invalid body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid body") from None


def query(request: Request, name: str) -> str | None:
    values = (request.args or {}).get(name.encode("ascii"))
    if not values:
        return None
    return str(values[0].decode("utf-8", "replace"))


def query_all(request: Request, name: str) -> list[str]:
    values = (request.args or {}).get(name.encode("ascii")) or []
    return [v.decode("utf-8", "replace") for v in values]


class Endpoint(Resource):
    """One management leaf: `render_<METHOD>` methods; `BadRequest` becomes its answer."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def render(self, request: Request) -> bytes | int:
        method = request.method.decode("latin-1")
        handler = getattr(self, "render_" + method, None)
        if handler is None:
            return error(request, 405, "method not allowed")
        try:
            result: bytes | int = handler(request)
        except BadRequest as e:
            return error(request, e.status, e.message)
        return result


class Node(Resource):
    """A path segment with named children; anything else is a JSON 404.

    Reached with nothing after it, it renders `index` (if given) like its `""` child.
    """

    def __init__(self, index: Resource | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.index = index
        if index is not None:
            self.putChild(b"", index)

    def getChild(self, path: bytes, request: Request) -> IResource:
        return _NotFound()

    def render(self, request: Request) -> bytes | int:
        if self.index is not None:
            result: bytes | int = self.index.render(request)
            return result
        return error(request, 404, "not found")


class _NotFound(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def render(self, request: Request) -> bytes:
        return error(request, 404, "not found")


def offered_key(request: Request) -> str:
    """`Authorization: Bearer <k>` (or its raw value), else `X-Management-Key`."""
    headers = request.requestHeaders
    value = (headers.getRawHeaders(b"authorization") or [b""])[0].strip()
    if value[:7].lower() == b"bearer ":
        value = value[7:].strip()
    if not value:
        value = (headers.getRawHeaders(b"x-management-key") or [b""])[0].strip()
    return value.decode("utf-8", "replace")


def peer_host(request: Request) -> str:
    """The TCP peer's address (forwarded headers are ignored on purpose)."""
    address = request.getClientAddress()
    return str(getattr(address, "host", ""))


class ManagementGate(Resource):
    """`/v0/management`: access control, version headers, then the endpoint tree."""

    isLeaf = True

    def __init__(self, access: ManagementAccess, tree: Resource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.access = access
        self.tree = tree

    def render(self, request: Request) -> bytes | int:
        for name, value in VERSION_HEADERS:
            request.setHeader(name, value)
        add_cors(request)
        if not self.access.enabled():
            return error(request, 404, "not found")
        peer = peer_host(request)
        verdict = self.access.check(peer, offered_key(request))
        if isinstance(verdict, Denied):
            return error(request, verdict.status, verdict.error)
        if verdict is None:
            return self._dispatch(request)
        return self._bcrypt(request, peer, verdict)

    def _dispatch(self, request: Request) -> bytes | int:
        target = getChildForRequest(self.tree, request)
        result: bytes | int = target.render(request)
        return result

    def _bcrypt(self, request: Request, peer: str, pending: NeedsBcrypt) -> int:
        d = threads.deferToThread(check_hash, pending.key, pending.hashed)

        def checked(matched: bool) -> None:
            if client_gone(request):
                return
            denial = self.access.finish_bcrypt(peer, pending, matched)
            body = (
                error(request, denial.status, denial.error)
                if denial is not None
                else self._dispatch(request)
            )
            if body is not NOT_DONE_YET:
                assert isinstance(body, bytes)
                request.write(body)
                request.finish()

        def failed(reason: Failure) -> None:
            log.failure("management key check failed", reason)
            if not client_gone(request):
                request.write(error(request, 500, "internal error"))
                request.finish()

        d.addCallback(checked).addErrback(failed)
        return NOT_DONE_YET


__all__ = [
    "BadRequest",
    "Endpoint",
    "ManagementGate",
    "Node",
    "answer",
    "error",
    "query",
    "read_json",
]
