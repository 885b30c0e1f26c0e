# -*- test-case-name: tests.management.test_api_call -*-
"""`POST /v0/management/api-call`: one HTTP call on behalf of the management caller.

The body is CLIProxyAPI's: `auth_index` (also `authIndex`/`AuthIndex`), `method`, `url`,
`proxy_url`, `header` (`{name: value}`) and `data` (the request body as a string).
`$TOKEN$` in a header value becomes the selected credential's token: an auth-dir
account's access token (refreshed first when it is expired, as a request would), else
the `api_key` of a config key. The answer is `{"status_code", "header", "body"}` with
the upstream's status, headers (`{name: [values]}`) and body text.

Only absolute `http`/`https` URLs are called (the schemes CLIProxyAPI's client speaks).
The proxy is `proxy_url`, else the credential's, else `proxy-url`, else none: the
environment's proxy is never used, as upstream. Nothing of the call (its URL, headers,
token or body) is logged; failures are answered with upstream's fixed messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IResponse
from twisted.web.server import NOT_DONE_YET, Request

from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.authdir import account_proxy, holder_of
from cliproxy.credentials.model import Credential
from cliproxy.credentials.net import HTTPRequester
from cliproxy.management.resource import BadRequest, Endpoint, answer, read_json
from cliproxy.upstream.body import read_body
from cliproxy.upstream.proxy import ProxyConfigError, parse_proxy_url
from cliproxy.web.state import client_gone

log = Logger()

TOKEN = "$TOKEN$"
#: seconds for the whole call (CLIProxyAPI's client timeout)
TIMEOUT = 60.0
#: the most of an upstream body relayed (it is answered inside a JSON string)
MAX_BODY = 16 * 1024 * 1024
#: record fields an account's token may be kept in, after the access token
_TOKEN_FIELDS = ("accessToken", "access_token", "token", "id_token", "cookie")


class CallFailed(Exception):
    """The call could not be made or read: answered 502 with `message`."""


def _auth_index(body: dict[str, Any]) -> str:
    for key in ("auth_index", "authIndex", "AuthIndex"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _record_token(record: dict[str, Any]) -> str:
    for key in _TOKEN_FIELDS:
        value = record.get(key)
        if isinstance(value, dict):
            value = value.get("access_token") or value.get("accessToken")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


class CallSpec:
    """A validated api-call body.

    Raises:
        BadRequest: with CLIProxyAPI's message for the first thing wrong.
    """

    def __init__(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BadRequest("invalid body")
        method, url = body.get("method", ""), body.get("url", "")
        proxy, header, data = body.get("proxy_url", ""), body.get("header"), body.get("data", "")
        header = {} if header is None else header
        if not all(isinstance(v, str) for v in (method, url, proxy, data)):
            raise BadRequest("invalid body")
        if not isinstance(header, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in header.items()
        ):
            raise BadRequest("invalid body")
        self.method: str = method.strip().upper()
        if not self.method:
            raise BadRequest("missing method")
        if not self.method.isalpha() or not self.method.isascii():
            raise BadRequest("failed to build request")
        self.url: str = url.strip()
        if not self.url:
            raise BadRequest("missing url")
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 (raises ValueError on a bad port)
        except ValueError:
            raise BadRequest("invalid url") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise BadRequest("invalid url")
        if any(c in self.url for c in "\r\n\0 "):
            raise BadRequest("invalid url")
        self.proxy_url: str = proxy.strip()
        if self.proxy_url:
            try:
                parse_proxy_url(self.proxy_url)
            except ProxyConfigError:
                raise BadRequest("invalid proxy_url") from None
        for name, value in header.items():
            if not name.strip() or any(c in name + value for c in "\r\n\0"):
                raise BadRequest("failed to build request")
        self.header: dict[str, str] = dict(header)
        self.data: bytes = data.encode("utf-8")
        self.auth_index = _auth_index(body)

    @property
    def wants_token(self) -> bool:
        return any(TOKEN in v for v in self.header.values())


class APICall(Endpoint):
    """POST `/v0/management/api-call`.

    Args:
        store: the live config (for `proxy-url`).
        credentials: every credential now (config keys and auth-dir accounts).
        http: the HTTP client.
        clock: for the call's deadline.
    """

    def __init__(
        self,
        store: ConfigStore,
        credentials: Callable[[], list[Credential]],
        http: HTTPRequester,
        clock: IReactorTime,
    ) -> None:
        super().__init__()
        self.store = store
        self.credentials = credentials
        self.http = http
        self.clock = clock

    def find(self, index: str) -> Credential | None:
        """The credential `index` names: its id, or the auth file it came from."""
        if not index:
            return None
        creds = self.credentials()
        for cred in creds:
            if cred.id == index:
                return cred
        for cred in creds:
            if holder_of(cred) is not None and cred.id.split(":", 1)[0] == index:
                return cred
        return None

    def proxy_for(self, spec: CallSpec, cred: Credential | None) -> str:
        global_proxy = str(self.store.current.proxy_url or "")
        if spec.proxy_url:
            return spec.proxy_url
        if cred is not None:
            holder = holder_of(cred)
            own = account_proxy(holder, "") if holder is not None else cred.proxy_url
            if own.strip():
                return own.strip()
        return global_proxy.strip() or "direct"

    def render_POST(self, request: Request) -> bytes | int:
        spec = CallSpec(read_json(request))
        cred = self.find(spec.auth_index)
        work = defer.ensureDeferred(self._call(spec, cred))
        timer = self.clock.callLater(TIMEOUT, work.cancel)
        request.notifyFinish().addErrback(lambda _: work.cancel())

        def done(result: tuple[int, dict[str, Any]] | Failure) -> None:
            if timer.active():
                timer.cancel()
            if client_gone(request):
                return
            if isinstance(result, Failure):
                reason = result.value
                if isinstance(reason, BadRequest):
                    status, body = reason.status, {"error": reason.message}
                elif isinstance(reason, CallFailed):
                    status, body = 502, {"error": str(reason)}
                else:
                    # the reason's kind only: its text may carry the URL or a header value
                    log.info("management api-call failed: {kind}", kind=type(reason).__name__)
                    status, body = 502, {"error": "request failed"}
            else:
                status, body = result
            request.write(answer(request, body, status))
            request.finish()

        work.addBoth(done)
        return NOT_DONE_YET

    async def _token(self, cred: Credential | None, proxy: str) -> str:
        if cred is None:
            return ""
        holder = holder_of(cred)
        if holder is None:
            return cred.api_key.strip()
        if not holder.access_token and not holder.refresh_token:
            return _record_token(holder.record)  # nothing to refresh from
        try:
            token = await holder.token(self.http, proxy)
        except Exception:
            raise BadRequest("auth token refresh failed") from None
        return token.strip() or _record_token(holder.record)

    async def _call(self, spec: CallSpec, cred: Credential | None) -> tuple[int, dict[str, Any]]:
        proxy = self.proxy_for(spec, cred)
        headers = dict(spec.header)
        if spec.wants_token and cred is not None:
            token = await self._token(cred, proxy)
            if not token:
                raise BadRequest("auth token not found")
            headers = {k: v.replace(TOKEN, token) for k, v in headers.items()}
        try:
            response: IResponse = await self.http.request(
                spec.method, spec.url, headers=headers, body=spec.data, proxy_url=proxy
            )
        except defer.CancelledError:
            raise
        except Exception as e:
            log.info("management api-call failed: {kind}", kind=type(e).__name__)
            raise CallFailed("request failed") from None
        try:
            raw = await read_body(response, MAX_BODY)
        except defer.CancelledError:
            raise
        except Exception:
            raise CallFailed("failed to read response") from None
        header: dict[str, list[str]] = {}
        decoded = response.headers.hasHeader(b"content-encoding")
        for name, values in response.headers.getAllRawHeaders():
            key = _canonical(name.decode("latin-1"))
            if decoded and key in ("Content-Encoding", "Content-Length"):
                continue  # the body below is decoded, as Go's client hands it over
            header.setdefault(key, []).extend(v.decode("latin-1") for v in values)
        return 200, {
            "status_code": response.code,
            "header": header,
            "body": raw.decode("utf-8", "replace"),
        }


def _canonical(name: str) -> str:
    """`content-type` -> `Content-Type`, as Go's http.Header keys are."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


__all__ = ["APICall", "CallSpec"]
