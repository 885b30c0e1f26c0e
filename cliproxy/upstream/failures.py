# -*- test-case-name: tests.upstream.test_failures -*-
"""Why an upstream call failed, in one secret-free line for the log and the client.

Twisted reports a TLS handshake that failed as `ResponseNeverReceived` wrapping the real
cause (pyOpenSSL's `SSL.Error` for an untrusted certificate, service_identity's
`VerificationError` for a certificate issued to another name). `describe_failure` looks
inside and names it: "TLS certificate verify failed", "TLS certificate is not valid for
127.0.0.1".
"""

from __future__ import annotations

import re

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.error import ConnectingCancelledError, ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.web.client import (
    RequestGenerationFailed,
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseNeverReceived,
)

__all__ = ["describe_failure"]

#: Twisted's wrappers whose `reasons` hold the real causes
_WRAPPERS = (
    ResponseNeverReceived,
    ResponseFailed,
    RequestTransmissionFailed,
    RequestGenerationFailed,
)
#: a reason that only says the connection went away (the consequence, not the cause)
_MERE_CLOSE = (ConnectionDone, ConnectionLost)
#: query parameters that carry credentials (Gemini's `?key=`); never echoed
_SECRET_QUERY = re.compile(r"(?i)([?&](?:key|api_key|access_token|token)=)[^&\s'\"]+")
_LIMIT = 200


def describe_failure(error: Failure | BaseException) -> str:
    """A short line naming why an upstream could not be reached or stopped answering.

    Args:
        error: what `UpstreamHTTP.request` (or a body reader) failed with, as a
            `Failure` or the exception itself.

    Returns:
        e.g. `TLS certificate verify failed`, `TLS certificate is not valid for
        api.example.com`, `ConnectionRefusedError: Connection was refused by other side`.
        No URL query values (a `?key=` is masked), at most about 200 characters.
    """
    value = error.value if isinstance(error, Failure) else error
    if value is None:
        return "unknown error"
    return _clip(_describe(value))


def _describe(error: BaseException) -> str:
    if isinstance(error, _WRAPPERS):
        return _describe_reasons(error.reasons, type(error).__name__)
    if isinstance(error, SSL.Error):
        return _describe_ssl(error)
    if isinstance(error, VerificationError):
        return _describe_mismatch(error)
    if isinstance(error, ConnectingCancelledError):
        return "the connection attempt was given up (connect timeout or cancelled)"
    name = type(error).__name__
    text = str(error).strip()
    return f"{name}: {text}" if text and text != name else name


def _describe_reasons(reasons: object, wrapper: str) -> str:
    """The most telling of a wrapper's reasons: a cause before a mere 'connection lost'."""
    causes: list[BaseException] = []
    for reason in reasons if isinstance(reasons, list) else []:
        if isinstance(reason, Failure) and reason.value is not None:
            causes.append(reason.value)
    if not causes:
        return wrapper
    telling = [c for c in causes if not isinstance(c, _MERE_CLOSE)] or causes
    return _describe(telling[0])


def _describe_ssl(error: SSL.Error) -> str:
    """pyOpenSSL packs OpenSSL's error queue as [(library, function, reason), ...]."""
    queue = error.args[0] if error.args else None
    reasons: list[str] = []
    if isinstance(queue, list):
        for entry in queue:
            if isinstance(entry, tuple) and entry and str(entry[-1]) not in reasons:
                reasons.append(str(entry[-1]))
    detail = "; ".join(r for r in reasons if r) or str(error) or "handshake failed"
    return f"TLS {detail}"


def _describe_mismatch(error: VerificationError) -> str:
    """service_identity's errors: the certificate names none of the ids we asked for."""
    ids: list[str] = []
    for mismatch in error.errors:
        wanted = getattr(mismatch, "mismatched_id", None)
        for attr in ("hostname", "ip", "uri"):
            value = getattr(wanted, attr, None)
            if value is not None:
                text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
                ids.append(text)
                break
    if not ids:
        return "TLS certificate does not match the host name"
    return f"TLS certificate is not valid for {', '.join(ids)} (host name mismatch)"


def _clip(text: str) -> str:
    text = _SECRET_QUERY.sub(r"\1***", " ".join(text.split()))
    return text if len(text) <= _LIMIT else text[:_LIMIT] + "…"
