# -*- test-case-name: tests.formats.test_errors -*-
"""Error bodies in each client API family's own shape (core.md §1.8, translators.md §2.8)."""

from __future__ import annotations

import json

from cliproxy.formats import Family
from cliproxy.formats.json_types import JSONObject

_OPENAI_TYPES = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "insufficient_quota"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("invalid_request_error", "request_timeout"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}

_CLAUDE_TYPES = {
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    431: "INVALID_ARGUMENT",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def openai_type(status: int) -> tuple[str, str | None]:
    if status in _OPENAI_TYPES:
        return _OPENAI_TYPES[status]
    if status >= 500:
        return ("server_error", "internal_server_error")
    return ("invalid_request_error", None)


def claude_type(status: int) -> str:
    if status in _CLAUDE_TYPES:
        return _CLAUDE_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def gemini_status(status: int) -> str:
    if status in _GEMINI_STATUS:
        return _GEMINI_STATUS[status]
    return "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"


def error_object(
    family: Family,
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    extra: JSONObject | None = None,
) -> JSONObject:
    """An error body for `family`. `type`/`code` override the status-derived ones."""
    if family is Family.CLAUDE:
        err: JSONObject = {"type": type or claude_type(status), "message": message}
        if extra:
            err.update(extra)
        return {"type": "error", "error": err}
    if family is Family.GEMINI:
        err = {"code": status, "message": message, "status": gemini_status(status)}
        if extra:
            err.update(extra)
        return {"error": err}
    t, c = openai_type(status)
    err = {"message": message, "type": type or t, "param": None, "code": code or c}
    if extra:
        err.update(extra)
    return {"error": err}


def error_body(
    family: Family,
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    extra: JSONObject | None = None,
) -> bytes:
    """`error_object` as JSON bytes, ready to send."""
    body = error_object(family, status, message, type=type, code=code, extra=extra)
    return json.dumps(body).encode("utf-8")


def upstream_error_object(family: Family, status: int, body: bytes) -> JSONObject:
    """Turn an upstream error body (any provider's shape, or plain text) into `family`'s shape.

    Upstream's verbatim pass-through of JSON from another family is a quirk that leaves
    an OpenAI client reading a Gemini error; we re-shape it and keep the upstream status
    and message.
    """
    text = body.decode("utf-8", "replace").strip()
    message = text or f"upstream returned HTTP {status}"
    type_: str | None = None
    code: str | None = None
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict):
            if isinstance(err.get("message"), str):
                message = err["message"]
            if isinstance(err.get("type"), str):
                type_ = err["type"]
            if isinstance(err.get("code"), str):
                code = err["code"]
        elif isinstance(err, str):
            message = err
        else:
            if isinstance(parsed.get("message"), str):
                message = parsed["message"]
            if isinstance(parsed.get("type"), str) and parsed["type"] != "error":
                type_ = parsed["type"]
    if family is Family.GEMINI:
        # Gemini clients key on status names, not OpenAI/Claude types.
        type_ = None
    return error_object(family, status, message, type=type_, code=code)
