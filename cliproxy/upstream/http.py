# -*- test-case-name: tests.upstream.test_http -*-
"""The one HTTP client every executor sends through.

`UpstreamHTTP` is built once at startup with the reactor. It keeps one persistent
connection pool and one treq `HTTPClient` per proxy setting (so a connection opened
through one proxy is never reused for another), and always asks for unbuffered
responses so bodies stream.

treq traps handled here:
* treq adds `Accept-Encoding: gzip` after ours (its `ContentDecoderAgent`); an agent
  under it puts our value back, so streams really ask for `identity`.
* treq keeps a cookie jar per client; upstream cookies must not travel between
  credentials, so ours refuses every cookie (and skips the stdlib's per-request work).
* redirects are never followed (a POST body must not be replayed elsewhere).
* treq 22.2 calls `method.encode()`: methods are passed as `str`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from http.cookiejar import Cookie, DefaultCookiePolicy
from typing import IO, Any, TypeVar, cast
from urllib.parse import urlsplit

from hyperlink import EncodedURL
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.abstract import isIPv6Address
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import IConsumer, IDelayedCall
from twisted.internet.ssl import Certificate
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import (
    URI,
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    ProxyAgent,
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IPolicyForHTTPS, IResponse
from zope.interface import implementer

from cliproxy.credentials.net import IClientReactor
from cliproxy.upstream.handshakes import basic_proxy_authorization
from cliproxy.upstream.headers import HeaderMap
from cliproxy.upstream.proxy import (
    DIRECT_VALUES,
    ProxyConfigError,
    ProxySpec,
    parse_proxy_url,
    proxy_from_environment,
)
from cliproxy.upstream.tunnel import UpstreamEndpointFactory

try:  # treq >= 23 types its jar; older treq uses the stdlib one
    from treq.cookies import IndexableCookieJar as _CookieJar
except ImportError:  # pragma: no cover - depends on the installed treq
    # treq 22.2 has no IndexableCookieJar and takes the stdlib jar; mypy sees treq 26
    from http.cookiejar import CookieJar as _CookieJar  # type: ignore[assignment]

log = Logger()

_R = TypeVar("_R")

#: seconds to open a TCP connection (and to finish a proxy handshake)
DEFAULT_CONNECT_TIMEOUT = 10.0
#: idle keep-alive connections kept per (scheme, host, port)
DEFAULT_MAX_PERSISTENT_PER_HOST = 256
#: seconds an idle pooled connection is kept; below common server idle timeouts
#: (nginx 75 s) so we rarely write a request into a connection the server is closing
DEFAULT_CACHED_CONNECTION_TIMEOUT = 60


class HeaderTimeout(Exception):
    """The upstream sent no response headers in time; the connection was dropped."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"upstream sent no response headers within {seconds:g}s")
        self.seconds = seconds


def _is_cancellation(failure: Failure) -> bool:
    """Twisted wraps a cancelled request in ResponseNeverReceived & co.; look inside."""
    if failure.check(defer.CancelledError, ConnectingCancelledError):
        return True
    error = failure.value
    if isinstance(error, ResponseNeverReceived | ResponseFailed | RequestTransmissionFailed):
        return any(isinstance(r, Failure) and _is_cancellation(r) for r in error.reasons)
    return False


def _producer(body: bytes | bytearray | IO[bytes]) -> IBodyProducer | None:
    """Bytes go in one write; a file (e.g. Twisted's spooled request body) is streamed
    from where it is in chunks, so a large body is never copied into memory."""
    if not body:
        return None
    if isinstance(body, bytes | bytearray):
        return BytesProducer(bytes(body))
    return FileBodyProducer(_Borrowed(body))


def _headers(headers: Mapping[str, Any] | None) -> Headers | dict[Any, Any]:
    """The `Headers` treq would build from a dict (`addRawHeader` per text value,
    `setRawHeaders` per list), built here: treq takes a `Headers` as it is, which saves
    its copy of the dict on the way. Any other value goes to treq to refuse as it does."""
    h = Headers()
    for name, value in (headers or {}).items():
        if isinstance(value, str | bytes):
            h.addRawHeader(name, value)
        elif isinstance(value, list):
            h.setRawHeaders(name, value)
        else:
            return dict(headers or {})
    return h


class _Borrowed:
    """A file lent to FileBodyProducer, which closes what it reads: the owner (the
    client's Request) still needs it, so closing is left to the owner."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        pass


@implementer(IBodyProducer)
class BytesProducer:
    """A request body already in memory: written in one go, with a known length."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> defer.Deferred[None]:
        consumer.write(self._body)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _ReadyURI(EncodedURL):
    """An already-encoded URI whose text is computed once: treq calls
    `url.to_uri().to_text()` on every request, which re-runs hyperlink's IDNA and
    percent-encoding checks (a measurable share of a request)."""

    _text: str

    def to_uri(self) -> _ReadyURI:
        return self

    def to_text(self, with_password: bool = False) -> str:
        return self._text if not with_password else super().to_text(with_password)


@lru_cache(maxsize=512)
def _encoded_url(url: str) -> EncodedURL:
    """`url` parsed once (treq takes a hyperlink URL as well as text): executors send to a
    handful of URLs, and parsing each on every request cost a measurable share of a
    request (bench/RESULTS.md)."""
    uri = EncodedURL.from_text(url).to_uri()
    ready = _ReadyURI.from_text(uri.to_text())
    assert isinstance(ready, _ReadyURI)
    ready._text = uri.to_uri().to_text()  # what treq would compute from `uri`
    return ready


@lru_cache(maxsize=512)
def _host_value(uri: bytes) -> bytes:
    """The `Host` header Twisted's Agent computes for `uri` (`Agent._computeHostValue`):
    set here so the Agent does not copy the headers again to add it."""
    parsed = URI.fromBytes(uri)
    host: bytes = parsed.host
    if isIPv6Address(host.decode("ascii")):
        host = b"[" + host + b"]"
    if (parsed.scheme, parsed.port) in ((b"http", 80), (b"https", 443)):
        return host
    return b"%b:%d" % (host, parsed.port)


@lru_cache(maxsize=512)
def _target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an upstream URL, for the environment's proxy rules."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80)


class _NoCookies(_CookieJar):
    """A jar that never holds, sends or takes a cookie: provider cookies must not travel
    between credentials. treq wraps every request in a `CookieAgent` on its client's jar;
    doing nothing here skips the stdlib's URL parsing of each request and answer."""

    def __init__(self) -> None:
        super().__init__(policy=DefaultCookiePolicy(allowed_domains=[]))

    def add_cookie_header(self, request: Any) -> None:
        pass

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass

    def set_cookie(self, cookie: Cookie) -> None:
        pass


#: handed to treq as `cookies=` too: a jar (not a dict) spares treq building a new one
#: per request to merge into ours
_NO_COOKIES = _NoCookies()


@implementer(IAgent)
class _CallerAcceptEncoding:
    """Undo the `Accept-Encoding: gzip` treq appends after the caller's own value, and
    add the `Host` header the Agent would add.

    It sits under treq's `ContentDecoderAgent`, which hands it a fresh copy of the
    caller's headers: that copy is edited in place, where copying it again (here, then in
    the Agent for `Host`) cost two more passes over every header per request.
    """

    def __init__(self, agent: IAgent) -> None:
        self._agent = agent

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> defer.Deferred[IResponse]:
        if headers is not None:
            values = headers.getRawHeaders(b"accept-encoding")
            if values and len(values) > 1:
                headers.setRawHeaders(b"accept-encoding", values[:-1])
            if not headers.hasHeader(b"host"):
                headers.addRawHeader(b"host", _host_value(uri))
        return self._agent.request(method, uri, headers, bodyProducer)


@implementer(IAgent)
class _HTTPProxyAgent:
    """Through an HTTP(S) proxy: absolute-form for http:// targets, CONNECT for https://."""

    def __init__(self, forward: IAgent, tunnel: IAgent, proxy_authorization: bytes | None) -> None:
        self._forward = forward
        self._tunnel = tunnel
        self._auth = proxy_authorization

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> defer.Deferred[IResponse]:
        if uri.lower().startswith(b"http:"):
            headers = Headers() if headers is None else headers.copy()
            if self._auth is not None:
                headers.setRawHeaders(b"proxy-authorization", [self._auth])
            return self._forward.request(method, uri, headers, bodyProducer)
        return self._tunnel.request(method, uri, headers, bodyProducer)


class UpstreamHTTP:
    """The shared upstream HTTP client.

    Args:
        reactor: the reactor (connections, timers, name resolution).
        connect_timeout: seconds per TCP connect and per proxy handshake.
        max_persistent_per_host: idle connections kept per host and proxy setting.
        cached_connection_timeout: seconds an idle connection is kept.
        trust_root: the CA certificate for https:// upstreams and proxies; `None` uses
            the platform's CA store. Tests pass a self-signed certificate here.
        tls_policy: a whole `IPolicyForHTTPS` instead of `trust_root`.
        environ: environment for proxy fallback (`HTTPS_PROXY`, `NO_PROXY`...); read
            when a request has no `proxy_url`. `None` means `os.environ`.
    """

    def __init__(
        self,
        reactor: IClientReactor,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_persistent_per_host: int = DEFAULT_MAX_PERSISTENT_PER_HOST,
        cached_connection_timeout: float = DEFAULT_CACHED_CONNECTION_TIMEOUT,
        trust_root: Certificate | None = None,
        tls_policy: IPolicyForHTTPS | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.reactor = reactor
        self._connect_timeout = connect_timeout
        self._max_per_host = max_persistent_per_host
        self._cached_timeout = cached_connection_timeout
        self._tls_policy: IPolicyForHTTPS = tls_policy or BrowserLikePolicyForHTTPS(
            trustRoot=trust_root
        )
        self._environ = environ
        self._clients: dict[str, HTTPClient] = {}
        self._pools: dict[str, HTTPConnectionPool] = {}

    # -- building clients ----------------------------------------------------------------

    def _pool(self, key: str) -> HTTPConnectionPool:
        pool = HTTPConnectionPool(self.reactor, persistent=True)
        pool.maxPersistentPerHost = self._max_per_host
        # Twisted infers `int` from its class default; the pool only hands it to callLater
        pool.cachedConnectionTimeout = self._cached_timeout  # type: ignore[assignment]
        self._pools[key] = pool
        return pool

    def _build_agent(self, proxy: ProxySpec | None, pool: HTTPConnectionPool) -> IAgent:
        factory = UpstreamEndpointFactory(
            self.reactor, proxy, self._tls_policy, self._connect_timeout
        )
        agent: IAgent = Agent.usingEndpointFactory(self.reactor, factory, pool=pool)
        if proxy is not None and proxy.scheme in ("http", "https"):
            auth = (
                basic_proxy_authorization(proxy.username, proxy.password)
                if proxy.username is not None
                else None
            )
            forward = ProxyAgent(factory.proxy_endpoint(), self.reactor, pool=pool)
            agent = _HTTPProxyAgent(forward, agent, auth)
        return _CallerAcceptEncoding(agent)

    def client_for(self, proxy_url: str | None) -> HTTPClient:
        """The treq client for one proxy setting: a URL, or `direct`/`none`/`None`.

        Raises:
            ProxyConfigError: the URL cannot be used.
        """
        spec = None if not proxy_url else parse_proxy_url(proxy_url)
        key = "direct" if spec is None or proxy_url is None else proxy_url.strip()
        client = self._clients.get(key)
        if client is None:
            if spec is not None:
                log.info("upstream connections via proxy {proxy}", proxy=spec.redacted)
            agent = self._build_agent(spec, self._pool(key))
            client = HTTPClient(agent, cookiejar=_NO_COOKIES)
            self._clients[key] = client
        return client

    def _proxy_for(self, url: str, proxy_url: str | None) -> str | None:
        proxy_url = (proxy_url or "").strip()
        if proxy_url:
            return None if proxy_url.lower() in DIRECT_VALUES else proxy_url
        scheme, host, port = _target(url)
        return proxy_from_environment(scheme, host, port, self._environ)

    # -- sending -------------------------------------------------------------------------

    def request(
        self,
        method: str | bytes,
        url: str,
        *,
        headers: Mapping[str, str] | HeaderMap | None = None,
        body: bytes | IO[bytes] = b"",
        proxy_url: str | None = None,
        timeout_headers: float | None = None,
    ) -> defer.Deferred[IResponse]:
        """Send one request; the Deferred fires with an unbuffered `IResponse`.

        Args:
            method: `"POST"`, `"GET"`... (str, for treq 22.2).
            url: absolute http(s) URL.
            headers: sent as given (values are str).
            body: request body: bytes, or a seekable binary file positioned at its start
                (streamed from there); sent with a Content-Length either way.
            proxy_url: `proxy-url` to use: a URL, `direct`/`none`, or `""`/`None` for the
                environment's proxy (loopback targets never use it).
            timeout_headers: seconds to wait for the response headers; on expiry the
                Deferred fails with `HeaderTimeout` and the connection is dropped.
                The body is not covered: stream readers bound it with an idle timer.

        Cancelling the Deferred before the headers arrive drops the connection and
        fails it with plain `CancelledError` (not Twisted's `ResponseNeverReceived`
        wrapper), so callers can tell a client that left from an upstream fault.
        Other failures: `ConnectError` & co. (connect), `ProxyError` (proxy handshake),
        `ResponseNeverReceived`/`ResponseFailed` (the upstream hung up).
        """
        try:
            client = self.client_for(self._proxy_for(url, proxy_url))
        except ProxyConfigError as e:
            return defer.fail(e)
        if isinstance(headers, HeaderMap):
            headers = headers.to_dict()
        if isinstance(method, bytes):  # callers typed loosely may still pass bytes
            method = method.decode("ascii")
        try:
            d = client.request(
                method,
                _encoded_url(url),
                headers=_headers(headers),
                data=_producer(body),
                cookies=_NO_COOKIES,
                allow_redirects=False,
                unbuffered=True,
            )
        except Exception:  # a URL the agent cannot even start on (bad host name...)
            return defer.fail()
        # treq's response provides IResponse; Deferred's typing is invariant, hence the cast
        return self._bound_header_wait(cast("defer.Deferred[IResponse]", d), timeout_headers)

    def _bound_header_wait(
        self, d: defer.Deferred[_R], timeout_headers: float | None
    ) -> defer.Deferred[_R]:
        """Our own timer rather than treq's `timeout=`, so expiry is told apart from a
        cancel; Twisted's wrappers around a cancel become plain `CancelledError`."""
        timed_out = []
        timer: IDelayedCall | None = None
        if timeout_headers:

            def expire() -> None:
                timed_out.append(True)
                d.cancel()

            timer = self.reactor.callLater(timeout_headers, expire)

        def settled(result: _R | Failure) -> _R | Failure:
            if timer is not None and timer.active():
                timer.cancel()
            if isinstance(result, Failure) and _is_cancellation(result):
                if timed_out:
                    return Failure(HeaderTimeout(timeout_headers or 0))
                return Failure(defer.CancelledError("upstream request cancelled"))
            return result

        return d.addBoth(settled)

    def close(self) -> defer.Deferred[None]:
        """Close every idle pooled connection (service shutdown)."""
        pools = list(self._pools.values())
        self._pools.clear()
        self._clients.clear()
        return defer.DeferredList(
            [p.closeCachedConnections() for p in pools], consumeErrors=True
        ).addCallback(lambda _: None)


__all__ = ["BytesProducer", "HeaderTimeout", "UpstreamHTTP"]
