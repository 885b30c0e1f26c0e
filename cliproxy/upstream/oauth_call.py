# -*- test-case-name: tests.oauth.test_executors -*-
"""What the three subscription executors share: a bearer token fetched at send time.

`build` stays pure: it returns an `OAuthCall` that carries the account's `TokenHolder`
but no token. `send` asks the holder for a usable token (the holder refreshes first
when it is nearly expired, one refresh for all waiting requests), sends, and on a 401
refreshes once and sends again. An account that needs a new login, or whose token
cannot be refreshed now, answers with a local 401 or 503 in the provider's error shape,
so routing benches it like any failing credential instead of retrying it at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import cast

from twisted.internet import defer
from twisted.internet.interfaces import IProtocol, IPushProducer, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse
from zope.interface import implementer

from cliproxy.credentials.authdir import holder_of
from cliproxy.credentials.model import Credential
from cliproxy.credentials.net import HTTPRequester
from cliproxy.credentials.oauth.holder import NeedsLogin, RefreshFailed, TokenHolder
from cliproxy.upstream.base import UpstreamCall, UpstreamConfigError
from cliproxy.upstream.body import read_body

log = Logger()

#: a 401 body read before the retry is kept up to this size
_ERROR_BODY_LIMIT = 256 * 1024


@dataclass(frozen=True)
class OAuthCall(UpstreamCall):
    """An `UpstreamCall` whose bearer token is added by `send` from `holder`."""

    holder: TokenHolder | None = field(default=None, repr=False, compare=False)
    #: a label for logs (the credential id)
    account: str = ""


def oauth_call(
    call: UpstreamCall,
    holder: TokenHolder,
    account: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> OAuthCall:
    """`call` with the holder attached (and its headers or body replaced when given)."""
    values = {f.name: getattr(call, f.name) for f in fields(UpstreamCall)}
    if headers is not None:
        values["headers"] = headers
    if body is not None:
        values["body"] = body
    return OAuthCall(**values, holder=holder, account=account)


def require_holder(cred: Credential) -> TokenHolder:
    """The credential's TokenHolder.

    Raises:
        UpstreamConfigError: the credential did not come from an auth file.
    """
    holder = holder_of(cred)
    if holder is None:
        raise UpstreamConfigError(f"credential {cred.label} carries no OAuth token")
    return holder


@implementer(IPushProducer)
class _NoTransport:
    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


@implementer(IResponse)
class BufferedResponse:
    """An `IResponse` whose body is already in memory (a local answer, or a read 401)."""

    version = (b"HTTP", 1, 1)

    def __init__(self, code: int, body: bytes, headers: Headers | None = None) -> None:
        self.code = code
        self.phrase = b"Unauthorized" if code == 401 else b"Error"
        self.headers = headers if headers is not None else Headers()
        if headers is None:
            self.headers.setRawHeaders(b"content-type", [b"application/json"])
        self.headers.removeHeader(b"content-encoding")
        self.headers.removeHeader(b"content-length")
        self.length = len(body)
        self._body = body
        self.request = None
        self.previousResponse: IResponse | None = None

    def deliverBody(self, protocol: IProtocol) -> None:
        # a body protocol's transport is a push producer, not a connection: Twisted's own
        # (TransportProxyProducer) is no ITransport either
        protocol.makeConnection(cast(ITransport, _NoTransport()))
        if self._body:
            protocol.dataReceived(self._body)
        protocol.connectionLost(Failure(ResponseDone()))

    def setPreviousResponse(self, response: IResponse) -> None:
        self.previousResponse = response


def local_error(status: int, message: str, kind: str) -> BufferedResponse:
    """A provider-shaped error answered without calling the provider."""
    body = {"error": {"message": message, "type": kind, "code": kind}}
    return BufferedResponse(status, json.dumps(body).encode("utf-8"))


class OAuthSender:
    """Mixin for executors whose calls are `OAuthCall`s."""

    def auth_headers(self, call: OAuthCall, token: str) -> dict[str, str]:
        """The headers to send with `token` (subclasses add account headers)."""
        headers = dict(call.headers)
        headers["Authorization"] = f"Bearer {token}"
        return headers

    async def before_send(
        self, http: HTTPRequester, call: OAuthCall, token: str, proxy_url: str | None
    ) -> OAuthCall | BufferedResponse:
        """A hook run once the token is known (Gemini CLI finds its project here)."""
        return call

    def wrap_response(self, call: OAuthCall, response: IResponse) -> IResponse:
        """A hook over a successful answer (Gemini CLI unwraps its envelope)."""
        return response

    async def send(
        self, http: HTTPRequester, call: UpstreamCall, proxy_url: str | None, timeout: float | None
    ) -> IResponse:
        if not isinstance(call, OAuthCall) or call.holder is None:
            raise UpstreamConfigError("an OAuth executor was given a call without a token holder")
        holder = call.holder
        try:
            token = await holder.token(http, proxy_url)
            prepared = await self.before_send(http, call, token, proxy_url)
        except NeedsLogin as e:
            return local_error(401, e.message, "authentication_error")
        except RefreshFailed as e:
            return local_error(503, e.message, "auth_unavailable")
        if isinstance(prepared, BufferedResponse):
            return prepared  # the hook answered (e.g. no Gemini project)
        oauth = prepared
        response = await self._request(http, oauth, token, proxy_url, timeout)
        if response.code != 401 or not holder.refresh_token:
            return self._wrapped(oauth, response)
        # The provider says the token is no good although it looked valid: refresh once.
        body = await _read_quietly(response)
        log.info(
            "{account}: upstream answered 401; refreshing the token once", account=call.account
        )
        try:
            token = await holder.refresh(http, proxy_url, stale=token)
        except (NeedsLogin, RefreshFailed) as e:
            log.warn("{account}: refresh after 401 failed: {error}", account=oauth.account, error=e)
            return BufferedResponse(401, body, response.headers.copy())
        response = await self._request(http, oauth, token, proxy_url, timeout)
        return self._wrapped(oauth, response)

    def _wrapped(self, call: OAuthCall, response: IResponse) -> IResponse:
        if 200 <= response.code < 300:
            return self.wrap_response(call, response)
        return response

    async def _request(
        self,
        http: HTTPRequester,
        call: OAuthCall,
        token: str,
        proxy_url: str | None,
        timeout: float | None,
    ) -> IResponse:
        return await http.request(
            call.method,
            call.url,
            headers=self.auth_headers(call, token),
            body=call.body,
            proxy_url=proxy_url,
            timeout_headers=timeout,
        )


async def _read_quietly(response: IResponse) -> bytes:
    try:
        return await read_body(response, _ERROR_BODY_LIMIT)
    except defer.CancelledError:
        raise
    except Exception:
        return b""
