# -*- test-case-name: tests.test_routing -*-
"""What an upstream failure means: fail over, give up, or rest the credential, and for how long.

Also how routing's own failures (unknown model, no credential, all resting) and the last
upstream error look to the client.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass

from twisted.web.http_headers import Headers

from cliproxy.credentials._cooldown import RETRY_AFTER_CAP, clean_retry_after
from cliproxy.credentials.pool import AllCoolingDown, NoCredential, SelectionError
from cliproxy.formats import Format, family_of
from cliproxy.formats.errors import upstream_error_object
from cliproxy.registry import UnknownModel
from cliproxy.routing.results import RouteError
from cliproxy.upstream.resets import quota_reset


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """One credential's attempt that failed before anything reached the client."""

    status: int
    body: bytes
    retry_after: float | None = None
    #: another credential would answer the same way: stop trying others
    request_invalid: bool = False


@dataclass(frozen=True, slots=True)
class RetryHint:
    """How long an upstream asked us to wait, and the provider's reason when it gave one."""

    seconds: float | None
    #: e.g. "Codex usage_limit_reached resets" (upstream/resets.py); "" for a plain Retry-After
    reason: str = ""


_INVALID_MARKERS = (b"invalid_request_error", b"INVALID_ARGUMENT", b"FAILED_PRECONDITION")
_UNSUPPORTED = re.compile(
    rb"model[^\"]{0,40}(not supported|not found|does not exist|unsupported)", re.I
)
_RETRY_DELAY = re.compile(rb'"retryDelay"\s*:\s*"([0-9.]+)s"')


def is_request_invalid(status: int, body: bytes) -> bool:
    """Errors that another credential would answer the same way (core.md §4.3)."""
    if status == 422:
        return True
    if status == 400:
        if _UNSUPPORTED.search(body):
            return False
        return any(m in body for m in _INVALID_MARKERS)
    if status == 404 and b"store" in body and b"not found" in body:
        return True
    return status == 500 and b'"status":"UNKNOWN"' in body.replace(b" ", b"")


def is_model_unsupported(status: int, body: bytes) -> bool:
    """A 400/422 saying this credential does not serve the model (benched longer)."""
    return status in (400, 422) and bool(_UNSUPPORTED.search(body))


def parse_retry_after(headers: Headers | None, body: bytes, now: float) -> float | None:
    """Seconds from a provider's quota reset (upstream/resets.py), else from Retry-After."""
    return retry_hint(headers, body, now).seconds


def retry_hint(headers: Headers | None, body: bytes, now: float) -> RetryHint:
    """`parse_retry_after` with the provider's reason for a quota reset."""
    reset = quota_reset(headers, body, now)
    if reset is not None:
        return RetryHint(reset.seconds, reset.reason)
    return RetryHint(_plain_retry_after(headers, body, now))


def _plain_retry_after(headers: Headers | None, body: bytes, now: float) -> float | None:
    values = headers.getRawHeaders(b"retry-after") if headers is not None else None
    if values:
        raw = values[0].decode("latin-1").strip()
        try:
            return clean_retry_after(float(raw))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw).timestamp()
                return clean_retry_after(max(0.0, when - now))
            except (TypeError, ValueError, OverflowError):
                pass
    m = _RETRY_DELAY.search(body)
    if m:
        return clean_retry_after(float(m.group(1)))
    return None


def retry_after_header(seconds: float) -> str:
    """A Retry-After value: whole seconds, rounded up, at least 1 (and never absurd)."""
    return str(max(1, int(min(clean_retry_after(seconds) or 0.0, RETRY_AFTER_CAP) + 0.999)))


def selection_error(error: SelectionError) -> RouteError:
    """Routing's answer when no credential can be tried."""
    if isinstance(error, UnknownModel):
        return RouteError(404, error.message, code="model_not_found")
    if isinstance(error, AllCoolingDown):
        return RouteError(
            429,
            error.message,
            headers={"Retry-After": retry_after_header(error.reset_seconds)},
            code="model_cooldown",
            type="rate_limit_error",
        )
    if isinstance(error, NoCredential):
        return RouteError(503, error.message, code="auth_not_found", type="api_error")
    return RouteError(error.status, error.message, code=error.code)


def upstream_error(client: Format, failure: AttemptFailure) -> RouteError:
    """The last upstream failure, in the client's family shape."""
    body = upstream_error_object(family_of(client), failure.status, failure.body)
    headers = {}
    if failure.retry_after is not None:
        headers["Retry-After"] = retry_after_header(failure.retry_after)
    return RouteError(failure.status, "upstream error", body=body, headers=headers)
