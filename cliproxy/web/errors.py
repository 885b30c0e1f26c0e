# -*- test-case-name: tests.web.test_surface -*-
"""Writing JSON answers and errors in the client's API family shape."""

from __future__ import annotations

from http import HTTPStatus

from twisted.web.server import Request

from cliproxy import jsonutil
from cliproxy.formats import Family
from cliproxy.formats.errors import error_body
from cliproxy.formats.json_types import JSON

_CLAUDE_PREFIXES = (b"/v1/messages", b"/api/provider/anthropic/")
_GEMINI_PREFIXES = (b"/v1beta", b"/v1internal", b"/api/provider/google/")


def family_for_path(path: bytes | None) -> Family:
    """Guess the API family from a raw request path (used before routing knows better)."""
    if not path:
        return Family.OPENAI
    path = path.split(b"?", 1)[0]
    if path.startswith(_CLAUDE_PREFIXES) or b"/v1/messages" in path:
        return Family.CLAUDE
    if path.startswith(_GEMINI_PREFIXES) or b"/v1beta" in path:
        return Family.GEMINI
    return Family.OPENAI


def json_bytes(obj: JSON) -> bytes:
    """Compact UTF-8 JSON; a lone surrogate (from a client or an upstream) is \\u-escaped."""
    return jsonutil.dumps(obj)


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase, also for codes old Twisted does not know (429, 431, ...)."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return {499: b"Client Closed Request", 529: b"Overloaded"}.get(status, b"Error")


def set_json_response(request: Request, status: int, body: bytes) -> bytes:
    """Prepare `request` for a JSON answer of `body` and return the bytes to write."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"content-length", b"%d" % len(body))
    if request.method == b"HEAD":
        return b""
    return body


def json_response(request: Request, status: int, obj: JSON) -> bytes:
    return set_json_response(request, status, json_bytes(obj))


def error_response(
    request: Request,
    family: Family,
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
) -> bytes:
    """Set status and headers for an error and return its body, for `render_*` to return."""
    body = error_body(family, status, message, type=type, code=code)
    return set_json_response(request, status, body)


def raw_error_bytes(status: int, reason: bytes, family: Family, message: str) -> bytes:
    """A whole HTTP/1.1 response for errors found before twisted.web builds a Request."""
    body = error_body(family, status, message)
    return (
        b"HTTP/1.1 %d %s\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n"
        b"\r\n" % (status, reason, len(body))
    ) + body


def finish_with_error(request: Request, status: int, message: str) -> None:
    """Answer a request that has written nothing yet with a JSON error, now."""
    if request.finished or request.startedWriting:
        return
    body = set_json_response(
        request, status, error_body(family_for_path(request.path), status, message)
    )
    if body:
        request.write(body)
    request.finish()
