"""Client framing and in-stream error bodies shared by the encoders and the pass-throughs."""

from __future__ import annotations

from cliproxy.formats import Family
from cliproxy.formats.errors import upstream_error_object
from cliproxy.formats.json_types import JSONObject
from cliproxy.formats.responses_side.ir import dumps

DONE = b"data: [DONE]\n\n"


def sse(event: str, payload: JSONObject) -> bytes:
    return b"event: " + event.encode("ascii") + b"\ndata: " + dumps(payload) + b"\n\n"


def data_line(payload: JSONObject) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


def family_error(family: Family, status: int, message: str) -> JSONObject:
    """An error object in `family`'s shape; `message` may be an upstream JSON error body."""
    return upstream_error_object(family, status, message.encode("utf-8"))


_RESPONSES_CODES = {
    401: "invalid_api_key",
    403: "insufficient_quota",
    404: "model_not_found",
    408: "request_timeout",
    429: "rate_limit_exceeded",
}


def responses_error(status: int, message: str) -> tuple[str, str]:
    """(code, message) for a Responses `error` event (translators.md §2.8)."""
    err = family_error(Family.OPENAI, status, message)["error"]
    code = err.get("code")
    if not isinstance(code, str) or not code:
        code = _RESPONSES_CODES.get(status) or (
            "internal_server_error" if status >= 500 else "invalid_request_error"
        )
    return code, err.get("message") or message
