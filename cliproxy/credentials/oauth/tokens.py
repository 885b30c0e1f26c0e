# -*- test-case-name: tests.oauth.test_tokens -*-
"""Calls to a token endpoint (code exchange, refresh) and what their failures mean.

The HTTP client is passed in (the daemon's `UpstreamHTTP`, so per-account proxies apply);
anything with `request(method, url, headers=, body=, proxy_url=, timeout_headers=)`
returning an `IResponse` works. Error messages name the endpoint, the status and the
provider's error code and description; they never contain a token.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from cliproxy.credentials.net import HTTPRequester, body_transport

__all__ = [
    "LOGIN_ERRORS",
    "OAuthError",
    "describe_network_error",
    "parse_error_body",
    "read_limited",
    "token_request",
]

#: token endpoint error codes that only a new login can fix
LOGIN_ERRORS = frozenset(
    {"invalid_grant", "refresh_token_reused", "refresh_token_expired", "refresh_token_invalidated"}
)
#: a token endpoint answer larger than this is not a token answer
MAX_ANSWER_BYTES = 1024 * 1024
#: seconds to wait for the token endpoint's response headers
DEFAULT_TIMEOUT = 30.0


class OAuthError(Exception):
    """A token endpoint call that failed.

    Attributes:
        message: one line for a person (no secrets).
        status: the HTTP status (0 when the endpoint was not reached).
        error: the provider's error code (`invalid_grant`, ...), or "".
        needs_login: only a new login can fix it (the refresh token is dead).
        retry_after: seconds the endpoint asked us to wait, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        error: str = "",
        needs_login: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error
        self.needs_login = needs_login
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth trying again soon: network trouble, 429 or a 5xx."""
        return not self.needs_login and (
            self.status == 0 or self.status == 429 or self.status >= 500
        )


class _Collector(Protocol):
    def __init__(self, done: defer.Deferred[bytes], limit: int) -> None:
        self.done = done
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.stop()
            self.done.errback(OAuthError(f"answer larger than {self.limit} bytes"))
            return
        self.parts.append(data)

    def stop(self) -> None:
        """Drop the connection the body comes on."""
        transport = body_transport(self)
        if transport is not None:
            transport.stopProducing()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.done.called:
            return
        if reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


def read_limited(response: IResponse, limit: int = MAX_ANSWER_BYTES) -> defer.Deferred[bytes]:
    """The whole body of `response` (at most `limit` bytes) as a Deferred[bytes]."""
    holder: list[_Collector] = []

    def cancel(_: defer.Deferred[bytes]) -> None:
        if holder:
            holder[0].stop()

    done: defer.Deferred[bytes] = defer.Deferred(cancel)
    proto = _Collector(done, limit)
    holder.append(proto)
    response.deliverBody(proto)
    return done


def describe_network_error(error: BaseException) -> str:
    """A short, secret-free phrase for a failure to reach a server."""
    name = type(error).__name__
    reasons = getattr(error, "reasons", None)
    if reasons:  # ResponseNeverReceived & co. wrap the real cause
        inner = reasons[0]
        if isinstance(inner, Failure) and inner.value is not None:
            return describe_network_error(inner.value)
    text = str(error).strip()
    if len(text) > 160:
        text = text[:160] + "…"
    return f"{name}: {text}" if text and text != name else name


def _header(response: IResponse, name: bytes) -> str | None:
    headers: Headers | None = getattr(response, "headers", None)  # fakes may have none
    values = headers.getRawHeaders(name) if headers is not None else None
    return values[0].decode("latin-1") if values else None


def _retry_after(response: IResponse) -> float | None:
    raw = _header(response, b"retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw.strip()))
    except ValueError:
        return None


_PRINTABLE = re.compile(r"[^\x20-\x7e]+")


def parse_error_body(data: bytes) -> tuple[str, str]:
    """(error code, description) from an RFC 6749 or OpenAI-style error body."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    err = body.get("error")
    if isinstance(err, dict):  # OpenAI: {"error": {"code", "type", "message"}}
        code = str(err.get("code") or err.get("type") or "")
        desc = str(err.get("message") or "")
    else:
        code = str(err or "")
        desc = str(body.get("error_description") or body.get("message") or "")
    return _PRINTABLE.sub(" ", code)[:80], _PRINTABLE.sub(" ", desc).strip()[:300]


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def token_request(
    http: HTTPRequester,
    url: str,
    fields: dict[str, str],
    *,
    json_body: bool,
    proxy_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "token request",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST `fields` to a token endpoint; the parsed JSON answer (with an access token).

    Raises:
        OAuthError: not reached, an error status, or an answer without `access_token`.
        CancelledError: the caller gave up.
    """
    sent = {"Accept": "application/json", **(headers or {})}
    if json_body:
        sent["Content-Type"] = "application/json"
        body = json.dumps(fields).encode("utf-8")
    else:
        sent["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode(fields).encode("ascii")
    where = _host(url)
    try:
        response = await http.request(
            "POST", url, headers=sent, body=body, proxy_url=proxy_url, timeout_headers=timeout
        )
        data = await read_limited(response)
    except defer.CancelledError:
        raise
    except OAuthError as e:
        raise OAuthError(f"{what} to {where}: {e.message}") from None
    except Exception as e:
        raise OAuthError(
            f"{what} to {where} failed: could not reach it ({describe_network_error(e)})"
        ) from None
    status = response.code
    if status >= 400:
        code, desc = parse_error_body(data)
        detail = f"{code}: {desc}" if code and desc else (code or desc)
        if not detail:
            kind = _header(response, b"content-type") or "no content type"
            detail = f"{len(data)} bytes of {kind.split(';')[0]}"
        needs_login = code in LOGIN_ERRORS or (status == 401 and "refresh_token" in fields)
        raise OAuthError(
            f"{what} to {where} was refused: HTTP {status} ({detail})",
            status=status,
            error=code,
            needs_login=needs_login,
            retry_after=_retry_after(response),
        )
    try:
        answer = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise OAuthError(f"{what} to {where} answered {status} but not with JSON") from None
    if not isinstance(answer, dict) or not answer.get("access_token"):
        raise OAuthError(f"{what} to {where} answered {status} without an access_token")
    return answer
