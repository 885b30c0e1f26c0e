# -*- test-case-name: tests.amp.test_proxy -*-
"""Our streaming reverse proxy Resource, on the shared treq client (`UpstreamHTTP`).

twisted.web.proxy's ReverseProxyResource speaks plain-TCP HTTP/1.0, buffers a slow
client's answer in memory and calls `finish()` after the client has gone. This one:

* sends through `UpstreamHTTP` (TLS, pooled HTTP/1.1, proxy-url, header timeout);
* drops hop-by-hop headers both ways (and any named in `Connection:`), lets the agent
  write `Host` for the upstream, and leaves the rest of the header policy to
  `build_call` in a subclass;
* streams the upstream body into the client with the upstream socket registered as the
  client's producer (a slow client pauses the upstream), and an idle timer per chunk;
* answers 502 (504 on a header timeout) with a JSON body when the upstream cannot be
  reached, truncates the client's answer when the upstream dies mid-body, and writes
  nothing once the client has gone (the upstream connection is dropped instead);
* undoes gzip that an upstream sent without `Content-Encoding` on non-SSE bodies,
  incrementally and within size bounds, with a corrected `Content-Length`; bodies
  that only look like gzip pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import ITCPTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from cliproxy.upstream.body import (
    GZIP_MAGIC,
    BodyDecodeError,
    BodyTooLarge,
    Decompressor,
    declared_encoding,
)
from cliproxy.upstream.http import HeaderTimeout
from cliproxy.upstream.stream import StreamReader
from cliproxy.web.errors import json_bytes
from cliproxy.web.state import client_gone

log = Logger()

#: never forwarded in either direction (RFC 9110 §7.6.1, plus the old proxy-connection)
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
#: request headers the agent writes itself for the upstream
_AGENT_WRITES = frozenset({b"host", b"content-length", b"expect"})
#: response headers we set ourselves
_WE_WRITE = frozenset({b"content-length", b"date", b"server"})

#: a sniffed-gzip body is buffered up to this many compressed bytes ...
MAX_GZIP_INPUT = 16 * 1024 * 1024
#: ... and this many decompressed ones; past either it passes through as it came
MAX_GZIP_OUTPUT = 64 * 1024 * 1024


def connection_tokens(headers: Headers) -> set[bytes]:
    """Header names listed in `Connection:` (they are hop-by-hop too)."""
    out: set[bytes] = set()
    for value in headers.getRawHeaders(b"connection", []):
        for token in value.split(b","):
            token = token.strip().lower()
            if token:
                out.add(token)
    return out


def end_to_end(headers: Headers, drop: Iterable[bytes] = ()) -> list[tuple[bytes, list[bytes]]]:
    """The headers a proxy may pass on: no hop-by-hop ones and nothing in `drop`."""
    skip = HOP_BY_HOP | connection_tokens(headers) | {d.lower() for d in drop}
    return [
        (name, list(values))
        for name, values in headers.getAllRawHeaders()
        if name.lower() not in skip
    ]


def is_event_stream(headers: Headers) -> bool:
    value = b",".join(headers.getRawHeaders(b"content-type", [])).lower()
    return b"text/event-stream" in value


@dataclass
class ProxyCall:
    """What to send upstream for one client request."""

    method: str
    url: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    #: bytes, or a seekable file at its start (streamed, never copied into memory)
    body: Any = b""
    #: `proxy-url` for this call ("" = environment, "direct" = none)
    proxy_url: str | None = None


class ProxyRefused(Exception):
    """Raised by `build_call` to answer the client without contacting the upstream."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class ReverseProxyResource(Resource):
    """Base class: subclasses say where a request goes (`build_call`) and how errors look.

    Args:
        http: the shared `UpstreamHTTP` (anything with its `request(...)` signature).
        clock: `IReactorTime` for the idle timer.
        header_timeout: callable giving seconds to wait for response headers (None: no limit).
        idle_timeout: callable giving seconds allowed between body chunks (None: no limit).
    """

    isLeaf = True
    #: undo gzip sent without Content-Encoding on non-SSE bodies
    fix_unlabelled_gzip = True
    #: upstream response headers never passed to the client (lowercase)
    drop_response_headers: frozenset[bytes] = frozenset()

    def __init__(
        self,
        http: Any,
        clock: Any,
        *,
        header_timeout: Callable[[], float | None] = lambda: None,
        idle_timeout: Callable[[], float | None] = lambda: None,
    ) -> None:
        Resource.__init__(self)
        self.http = http
        self.clock = clock
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout

    # -- hooks --------------------------------------------------------------------------

    def build_call(self, request: Request) -> ProxyCall:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> bytes:
        return json_bytes({"error": "upstream_proxy_error", "message": message})

    # -- serving ------------------------------------------------------------------------

    def render(self, request: Request) -> bytes | int:
        return self.proxy(request)

    def proxy(self, request: Request, tap: Any = None) -> bytes | int:
        """Proxy `request`; `tap` (optional) sees the body as sent: `feed(bytes)`, `end(status)`."""
        try:
            call = self.build_call(request)
        except ProxyRefused as e:
            request.setResponseCode(e.status)
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"content-length", b"%d" % len(e.body))
            return e.body
        _Exchange(self, request, call, tap).start()
        return NOT_DONE_YET


class _Exchange:
    """One proxied request from the first upstream byte sent to the last client byte."""

    def __init__(self, resource: ReverseProxyResource, request: Request, call: ProxyCall, tap: Any):
        self.resource = resource
        self.request = request
        self.call = call
        self.tap = tap
        self.gone = False
        self.done = False
        self.status = 0
        self._pending: defer.Deferred[Any] | None = None
        self._body: StreamReader | None = None
        self._registered = False
        self._committed = False
        # body handling: "stream" (as it comes), "sniff" (first bytes decide) or "gzip"
        self._mode = "stream"
        self._raw: list[bytes] = []
        self._raw_size = 0
        self._decoded: list[bytes] = []
        self._decoder: Decompressor | None = None
        self._length: int | None = None
        #: the URL for logs: no query string (it may carry credentials)
        self.where = call.url.split("?", 1)[0]

    # -- start --------------------------------------------------------------------------

    def start(self) -> None:
        r = self.resource
        call = self.call
        self.request.notifyFinish().addBoth(self._client_finished)
        d = r.http.request(
            call.method,
            call.url,
            headers=call.headers,
            body=call.body,
            proxy_url=call.proxy_url,
            timeout_headers=r.header_timeout(),
        )
        self._pending = d
        d.addCallbacks(self._response, self._failed)
        d.addErrback(self._log_failure, call.method)

    def _log_failure(self, failure: Failure, method: str) -> None:
        log.failure("proxying {method} {url}", failure, method=method, url=self.where)

    def _client_finished(self, result: Any) -> None:
        if not isinstance(result, Failure) or self.done:
            return
        # the client hung up before the answer was complete
        self.gone = True
        if self._pending is not None:
            # (`called` can already be true while the chain waits on treq's Deferred;
            # cancel() reaches that one too)
            self._pending.cancel()
        elif self._body is not None:
            self._body.stop()

    # -- upstream failed before answering -------------------------------------------------

    def _failed(self, failure: Failure) -> None:
        self._pending = None
        if self.gone or failure.check(defer.CancelledError):
            log.info("proxied request to {url} cancelled: the client left", url=self.where)
            self._tap_end(499)
            return
        if failure.check(HeaderTimeout):
            status, message = 504, failure.getErrorMessage()
        else:
            kind = failure.type.__name__ if failure.type is not None else "error"
            status, message = 502, f"{kind}: {failure.getErrorMessage()}"
        log.warn(
            "upstream {url} unreachable ({status}): {why}",
            url=self.where,
            status=status,
            why=message,
        )
        self._answer_error(status, message)

    def _answer_error(self, status: int, message: str) -> None:
        request = self.request
        self._tap_end(status)
        if self.gone or client_gone(request):
            return
        body = self.resource.error_body(status, message)
        self.done = True
        request.setResponseCode(status)
        request.responseHeaders.setRawHeaders(b"content-type", [b"application/json"])
        request.responseHeaders.setRawHeaders(b"content-length", [b"%d" % len(body)])
        request.responseHeaders.removeHeader(b"content-encoding")
        request.write(body)
        request.finish()

    # -- upstream answered ----------------------------------------------------------------

    def _response(self, response: Any) -> None:
        self._pending = None
        request = self.request
        self.status = response.code
        body = StreamReader(
            self.body_data,
            self.body_ended,
            idle_timeout=self.resource.idle_timeout(),
            clock=self.resource.clock,
            decode=False,
        )
        self._body = body
        if self.gone:
            response.deliverBody(body)
            body.stop()
            return
        headers = response.headers
        drop = _WE_WRITE | self.resource.drop_response_headers
        request.setResponseCode(response.code, response.phrase or None)
        encoding = declared_encoding(headers)
        for name, values in end_to_end(headers, drop | {b"content-encoding"}):
            request.responseHeaders.setRawHeaders(name, values)
        if encoding:
            # (treq's decoder leaves an empty Content-Encoding behind when there was none)
            request.responseHeaders.setRawHeaders(b"content-encoding", [encoding.encode()])
        length = response.length
        if request.method == b"HEAD":
            # no body follows; the upstream's length describes the GET answer
            declared = headers.getRawHeaders(b"content-length")
            if declared:
                request.responseHeaders.setRawHeaders(b"content-length", declared[:1])
        elif length is not UNKNOWN_LENGTH and isinstance(length, int):
            self._length = length
        if (
            self.resource.fix_unlabelled_gzip
            and request.method != b"HEAD"
            and not encoding
            and not is_event_stream(headers)
        ):
            self._mode = "sniff"
        response.deliverBody(body)
        if not body.ended:
            request.registerProducer(body, True)
            self._registered = True

    # -- body ---------------------------------------------------------------------------

    def body_data(self, data: bytes) -> None:
        if self.gone:
            return
        if self._mode == "stream":
            self._write(data)
            return
        self._raw.append(data)
        self._raw_size += len(data)
        if self._mode == "sniff":
            head = b"".join(self._raw)
            if len(head) < len(GZIP_MAGIC):
                return
            if not head.startswith(GZIP_MAGIC):
                self._pass_through()
                return
            self._mode = "gzip"
            self._decoder = Decompressor("gzip", MAX_GZIP_OUTPUT)
            self._decode(head)
            return
        self._decode(data)

    def _decode(self, data: bytes) -> None:
        assert self._decoder is not None
        if self._raw_size > MAX_GZIP_INPUT:
            log.warn("unlabelled gzip body over {n} bytes: passed through", n=MAX_GZIP_INPUT)
            self._pass_through()
            return
        try:
            out = self._decoder.feed(data)
        except BodyTooLarge:
            log.warn(
                "unlabelled gzip body inflates past {n} bytes: passed through", n=MAX_GZIP_OUTPUT
            )
            self._pass_through()
            return
        except BodyDecodeError:
            # gzip magic and then garbage: not gzip after all
            self._pass_through()
            return
        if out:
            self._decoded.append(out)

    def _pass_through(self) -> None:
        """Give up sniffing: send what was buffered as it came, then stream the rest."""
        raw, self._raw, self._decoded = b"".join(self._raw), [], []
        self._decoder = None
        self._mode = "stream"
        if raw:
            self._write(raw)

    def _commit(self) -> None:
        if self._committed:
            return
        self._committed = True
        if self._length is not None:
            self.request.responseHeaders.setRawHeaders(b"content-length", [b"%d" % self._length])

    def _write(self, data: bytes) -> None:
        if self.gone or not data:
            return
        self._commit()
        if self.tap is not None:
            self.tap.feed(data)
        self.request.write(data)

    def body_ended(self, reason: Failure | None) -> None:
        request = self.request
        if self.gone:
            self._tap_end(499)
            return
        if reason is not None and not reason.check(defer.CancelledError):
            log.info(
                "upstream {url} body ended early: {why}",
                url=self.where,
                why=reason.getErrorMessage(),
            )
            self._unregister()
            if not self._committed:
                self._answer_error(502, "upstream connection lost before the body was complete")
                return
            # the client must see a truncated answer, not a complete-looking one
            self.done = True
            self._tap_end(502)
            channel = getattr(request, "channel", None)
            if channel is not None and hasattr(channel, "forceAbortClient"):
                channel.forceAbortClient()
            elif ITCPTransport.providedBy(request.transport):
                request.transport.abortConnection()
            return
        if self._mode == "gzip":
            self._finish_gzip()
        elif self._mode == "sniff":
            self._pass_through()
        self._unregister()
        if client_gone(request):
            return
        self._commit()
        self.done = True
        self._tap_end(self.status)
        request.finish()

    def _finish_gzip(self) -> None:
        assert self._decoder is not None
        try:
            tail = self._decoder.flush()
        except BodyDecodeError:
            # a truncated gzip body: pass on exactly what came
            self._pass_through()
            return
        body = b"".join(self._decoded) + tail
        self._raw, self._decoded, self._decoder = [], [], None
        self._mode = "stream"
        self._length = len(body)
        log.debug("unlabelled gzip body decompressed to {n} bytes", n=len(body))
        self._commit()
        self._write(body)

    def _unregister(self) -> None:
        if self._registered:
            self._registered = False
            if not client_gone(self.request):
                self.request.unregisterProducer()

    def _tap_end(self, status: int) -> None:
        tap, self.tap = self.tap, None
        if tap is not None:
            try:
                tap.end(status)
            except Exception:
                log.failure("proxy tap failed")


__all__ = [
    "HOP_BY_HOP",
    "ProxyCall",
    "ProxyRefused",
    "ReverseProxyResource",
    "connection_tokens",
    "end_to_end",
    "is_event_stream",
]
