# -*- test-case-name: tests.web.test_limits -*-
"""The HTTP server plumbing: limits, timeouts, request ids, the access log, draining.

twisted.web has no body-size limit, answers an oversized header block with a bare 400
and lets a client drip headers forever. `LimitedHTTPChannel` adds what a proxy facing
arbitrary clients needs: 413 before reading an oversized body, 431 for oversized
headers, 408 when headers or the body take too long. Limits come from the current
config snapshot, so they change with a reload.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource

from cliproxy.config.exposure import is_loopback_host
from cliproxy.formats import Family
from cliproxy.formats.errors import error_body
from cliproxy.twisted_compat import request_init_kwargs
from cliproxy.web.admission import Admission, Admitted, Refusal, RequestHead
from cliproxy.web.errors import family_for_path, reason_phrase
from cliproxy.web.framing import HeaderFraming
from cliproxy.web.origin import cors_headers
from cliproxy.web.paths import normalise
from cliproxy.web.sessions import Sessions
from cliproxy.web.state import IRequestState, RequestState, state_of

if TYPE_CHECKING:
    from cliproxy.config.model import Limits

log = Logger(namespace="cliproxy.access")
_ids = itertools.count(1)
_id_prefix = os.urandom(3).hex()

_REASONS = {
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    421: b"Misdirected Request",
    429: b"Too Many Requests",
    503: b"Service Unavailable",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    431: b"Request Header Fields Too Large",
}


def _raw_answer(
    status: int, family: Family, message: str, headers: tuple[tuple[bytes, bytes], ...]
) -> bytes:
    """A whole HTTP/1.1 error response, for answers given before a Request is served."""
    body = error_body(family, status, message)
    extra = b"".join(b"%s: %s\r\n" % pair for pair in headers)
    return (
        b"HTTP/1.1 %d %s\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n%s"
        b"\r\n" % (status, _REASONS[status], len(body), extra)
    ) + body


class LimitedHTTPChannel(HTTPChannel):
    """An HTTPChannel that enforces header/body size caps and read timeouts.

    It counts header bytes and remembers the request path itself (from the request line it
    is handed), so nothing here reads HTTPChannel's private parsing state.
    """

    #: one timer per connection for the header and body read timeouts (see `_arm`)
    _timer: IDelayedCall | None = None
    #: what the timer guards now ("headers", "body" or None) and the reactor time it ends
    _timer_phase: str | None = None
    _deadline = 0.0
    rejected = False
    _body_received = 0
    #: header bytes of the request being read, and bytes seen since the last request ended
    _header_bytes = 0
    _bytes_since_idle = 0
    _request_path: bytes | None = None
    _request_method: bytes = b""
    _framing: HeaderFraming | None = None
    peer_host: str = "-"
    #: the connection's (loopback, secure) facts, worked out at its first request
    _local_facts: tuple[bool, bool] | None = None
    _counted = False
    site: CliproxySite

    @property
    def _limits(self) -> Limits:
        return self.site.limits()

    # -- lifecycle -------------------------------------------------------------

    def connectionMade(self) -> None:
        limits = self._limits
        self.totalHeadersSize = limits.max_header_bytes
        self.MAX_LENGTH = limits.max_header_bytes
        HTTPChannel.connectionMade(self)
        assert self.transport is not None
        self.peer_host = getattr(self.transport.getPeer(), "host", "-")
        refused = self.site.channel_opened(self)
        if refused is not None:
            self._refuse_connection(refused)
            return
        self._counted = True
        self._arm("headers", self._limits.header_timeout_seconds)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_timers()
        if self._counted:
            self._counted = False
            self.site.channel_closed(self)
        HTTPChannel.connectionLost(self, reason)

    def requestDone(self, request: http.Request) -> None:
        HTTPChannel.requestDone(self, request)
        if self.transport is not None and not self.rejected and not self.requests:
            self._body_received = 0
            self._bytes_since_idle = 0
            self._arm("headers", self._limits.header_timeout_seconds)

    def dataReceived(self, data: bytes) -> None:
        if self.rejected:
            return  # answered and closing: read nothing more
        self._bytes_since_idle += len(data)
        HTTPChannel.dataReceived(self, data)

    # -- header phase ----------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        if self.rejected:
            return
        if self._header_bytes == 0 and line:
            # the request line: remember the path for an early rejection's error shape
            parts = line.split(b" ")
            self._request_method = parts[0]
            self._request_path = parts[1] if len(parts) > 1 else None
            self._framing = HeaderFraming()
        elif line and self._framing is not None:
            problem = self._framing.problem(line)
            if problem is not None:
                self._reject(400, problem)
                return
        self._header_bytes += len(line)
        if self._header_bytes > self.totalHeadersSize:
            self._reject(431, "request headers are larger than %d bytes" % self.totalHeadersSize)
            return
        HTTPChannel.lineReceived(self, line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._reject(431, "a request header line is longer than %d bytes" % self.MAX_LENGTH)

    def allHeadersReceived(self) -> None:
        self._timer_phase = None  # the headers are in
        self._header_bytes = 0
        self._framing = None
        limits = self._limits
        if self.length is not None and self.length > limits.max_body_bytes:
            # Before Twisted answers Expect: 100-continue, and before reading a byte of body.
            self._reject(
                413,
                "request body of %d bytes is larger than the %d byte limit"
                % (self.length, limits.max_body_bytes),
            )
            return
        # Host, Origin and the client key, also before 100-continue and the body
        if not self._admit():
            return
        HTTPChannel.allHeadersReceived(self)
        if self.length != 0:
            self._arm("body", limits.body_timeout_seconds)

    def allContentReceived(self) -> None:
        if self.rejected:
            return
        self._timer_phase = None  # the body is in
        HTTPChannel.allContentReceived(self)

    def rawDataReceived(self, data: bytes) -> None:
        if self.rejected:
            return
        HTTPChannel.rawDataReceived(self, data)

    def body_chunk_received(self, size: int) -> None:
        """Called by the request for each body chunk; enforces the cap on chunked bodies."""
        self._body_received += size
        limit = self._limits.max_body_bytes
        if self._body_received > limit and not self.rejected:
            self._reject(413, "request body is larger than the %d byte limit" % limit)

    def _admit(self) -> bool:
        """The header-time checks (`cliproxy.web.admission`): False when refused."""
        admission = self.site.admission
        if admission is None or not self.requests:
            return True
        request = self.requests[-1]
        facts = self._local_facts
        if facts is None:
            # the same for every request on this connection: parsed once, not per request
            assert self.transport is not None
            local = getattr(self.transport.getHost(), "host", "")
            facts = self._local_facts = (is_loopback_host(local), request.isSecure())
        on_loopback, secure = facts
        verdict = admission.check(
            RequestHead(
                method=self._request_method,
                target=self._request_path or b"/",
                headers=request.requestHeaders,
                peer=self.peer_host,
                on_loopback=on_loopback,
                secure=secure,
                has_body=self.length != 0,
            )
        )
        if isinstance(verdict, Admitted):
            state_of(request).cors_origin = verdict.cors
            return True
        self._reject(verdict.status, verdict.message, verdict.headers)
        return False

    def _refuse_connection(self, refused: Refusal) -> None:
        self.site.log_refusal(self.peer_host, refused.message)
        self.rejected = True
        assert self.transport is not None
        self.transport.write(
            _raw_answer(refused.status, family_for_path(None), refused.message, refused.headers)
        )
        self.transport.loseConnection()

    # -- timers ------------------------------------------------------------------

    def _arm(self, phase: str, seconds: float) -> None:
        """Time out `phase` `seconds` from now (0: never).

        A pending timer that fires no later than that is kept, and re-aimed when it fires
        (`_timer_fired`): a keep-alive request then costs no callLater/cancel pair per phase.
        """
        if not seconds:
            self._timer_phase = None
            return
        reactor = self.site.reactor
        self._timer_phase, self._deadline = phase, reactor.seconds() + seconds
        timer = self._timer
        if timer is not None:
            if timer.getTime() <= self._deadline:
                return
            timer.cancel()
        self._timer = reactor.callLater(seconds, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        phase = self._timer_phase
        if phase is None:
            return  # the phase it was set for ended in time
        left = self._deadline - self.site.reactor.seconds()
        if left > 0:
            self._timer = self.site.reactor.callLater(left, self._timer_fired)
            return
        self._timer_phase = None
        self._timed_out(phase)

    def _cancel_timers(self) -> None:
        self._timer_phase = None
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _timed_out(self, phase: str) -> None:
        if phase == "headers":
            if not self._bytes_since_idle:
                # An idle keep-alive connection: close it without an unasked-for answer.
                if self.transport is not None:
                    self.transport.loseConnection()
                return
        self._reject(408, "timed out reading the request %s" % phase)

    # -- rejecting -------------------------------------------------------------

    def _reject(
        self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        """Answer `status` in the client's family shape and close, reading nothing more."""
        if self.rejected or self.transport is None:
            return
        self.rejected = True
        self._cancel_timers()
        path = self._request_path
        if path is None and self.requests:
            path = self.requests[-1].uri
        family = family_for_path(path)
        log.info(
            "rejected request {path} with {status}: {why}",
            path=(path or b"?").split(b"?", 1)[0].decode("latin-1"),
            status=status,
            why=message,
        )
        self.transport.write(_raw_answer(status, family, message, headers))
        # Stop parsing whatever is already buffered; dataReceived ignores what is still coming.
        HTTPChannel.setRawMode(self)
        # Half-close so the client reads the answer before it sees the socket go; then
        # drop the connection rather than drain an unwanted body.
        lose_write = getattr(self.transport, "loseWriteConnection", None)
        if lose_write is None:
            self.transport.loseConnection()
            return
        lose_write()
        self.site.reactor.callLater(2.0, self._abort_rejected)

    def _abort_rejected(self) -> None:
        abort = getattr(self.transport, "abortConnection", None)
        if abort is not None and getattr(self.transport, "connected", False):
            abort()


class CliproxyRequest(server.Request):
    """A Request with a `RequestState` component: id, start time, client key, log fields."""

    def __init__(self, channel: http.HTTPChannel, queued: object = None) -> None:
        if queued is None:
            server.Request.__init__(self, channel, **request_init_kwargs())
        else:  # pragma: no cover - Twisted < 16.3 style queued factories
            server.Request.__init__(self, channel, queued, **request_init_kwargs())
        site = getattr(channel, "site", None)
        reactor: IReactorTime | None = getattr(site, "reactor", None)
        server.Request.setComponent(
            self,
            IRequestState,
            RequestState(
                request_id="%s-%d" % (_id_prefix, next(_ids)),
                started=reactor.seconds() if reactor is not None else None,
            ),
        )

    @property
    def request_id(self) -> str:
        return state_of(self).request_id

    def handleContentChunk(self, data: bytes) -> None:
        channel = self.channel
        if isinstance(channel, LimitedHTTPChannel):
            channel.body_chunk_received(len(data))
            if channel.rejected:
                return
        server.Request.handleContentChunk(self, data)

    def process(self) -> None:
        state = state_of(self)
        server.Request.setHeader(self, b"x-request-id", state.request_id.encode("ascii"))
        site = getattr(self.channel, "site", None)
        if isinstance(site, CliproxySite):
            site.request_started(self)
            if state.cors_origin is not None and not site.is_amp_account_path(self.path):
                # an allowed cross origin reads every answer, errors included
                preflight = self.method == b"OPTIONS"
                for name, value in cors_headers(state.cors_origin, preflight=preflight):
                    server.Request.setHeader(self, name, value)
        server.Request.process(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        state = state_of(self)
        state.gone = True
        site = getattr(self, "site", None)
        if not isinstance(site, CliproxySite):
            site = None
        server.Request.connectionLost(self, reason)
        if not self.finished and not state.logged:
            # the client left before the answer was complete: 499 as nginx logs it
            self.code = 499
            if site is not None:
                site.log(self)
        if site is not None:
            site.request_ended(self)

    def setResponseCode(self, code: int, message: bytes | None = None) -> None:
        # old Twisted sends "Unknown Status" for 429/431; every answer gets its real phrase
        server.Request.setResponseCode(self, code, message or reason_phrase(code))

    def processingFailed(self, reason: Failure) -> None:
        """A resource raised: a JSON 500 in the path's family shape, never Twisted's HTML."""
        log.failure("while handling {path}", reason, path=self.path.decode("latin-1"))
        if self.finished or self.startedWriting:
            if not self.finished and self.channel is not None:
                self.channel.loseConnection()
            return
        message = "internal error in cliproxy; see its log"
        body = error_body(family_for_path(self.path), 500, message)
        self.setResponseCode(500)
        self.responseHeaders.setRawHeaders(b"content-type", [b"application/json"])
        self.responseHeaders.setRawHeaders(b"content-length", [b"%d" % len(body)])
        if self.method != b"HEAD":
            server.Request.write(self, body)
        self.finish()

    def write(self, data: bytes) -> None:
        request_log = getattr(getattr(self, "site", None), "request_log", None)
        if request_log is not None:
            request_log.wrote(self, data)  # cliproxy.observe.requestlog
        server.Request.write(self, data)

    def finish(self) -> None:
        server.Request.finish(self)
        site = getattr(self, "site", None)
        if isinstance(site, CliproxySite):
            site.request_ended(self)


class CliproxySite(server.Site):
    """A Site with our channel, request ids, one structured access event per request,
    and the bookkeeping graceful shutdown needs."""

    protocol = LimitedHTTPChannel  # type: ignore[assignment]
    requestFactory = CliproxyRequest  # type: ignore[assignment]
    displayTracebacks = False

    def __init__(
        self,
        resource: IResource,
        limits: Callable[[], Limits],
        reactor: IReactorTime | None = None,
        normalised: frozenset[bytes] = frozenset(),
        admission: Admission | None = None,
        request_log: Any = None,
    ) -> None:
        server.Site.__init__(self, resource, reactor=reactor)
        #: `wrote(request, data)` / `finished(request)` (cliproxy.observe.requestlog)
        self.request_log = request_log
        #: header-time checks and connection caps (None: none, for tests of the plumbing)
        self.admission = admission
        self.peers: Counter[str] = Counter()
        self._refusals = 0
        self._refusal_logged_at = float("-inf")
        #: first path segments under which the tree is walked on the normalised path
        self.normalised = normalised
        self.limits = limits
        self.channels: set[LimitedHTTPChannel] = set()
        self.active: set[CliproxyRequest] = set()
        #: upgraded connections (WebSocket sessions) the drain asks to go away
        self.upgraded = Sessions()
        self._idle_waiters: list[defer.Deferred[None]] = []

    def getResourceFor(self, request: server.Request) -> IResource:
        """Under the `normalised` heads (Amp's), walk the tree on the normalised path (see
        `cliproxy.web.paths`): `/threads/../api/user` is `/api/user`, checked as such."""
        if request.postpath and request.postpath[0] in self.normalised:
            segments = normalise(request.path or b"/")
            state_of(request).segments = segments
            request.postpath = [s.encode("utf-8") for s in segments] or [b""]
        resource: IResource = server.Site.getResourceFor(self, request)
        return resource

    # -- bookkeeping -------------------------------------------------------------

    def is_amp_account_path(self, path: bytes) -> bool:
        """Amp's account routes never answer other origins, even allowed ones."""
        head = path.split(b"/")[1:2]
        return bool(head) and head[0] in self.normalised and not path.startswith(b"/api/provider/")

    def channel_opened(self, channel: LimitedHTTPChannel) -> Refusal | None:
        """Count a new connection, or say why it is refused (connection caps)."""
        peer = channel.peer_host
        if self.admission is not None:
            refused = self.admission.admit_connection(len(self.channels), self.peers[peer])
            if refused is not None:
                return refused
        self.channels.add(channel)
        self.peers[peer] += 1
        return None

    def log_refusal(self, peer: str, why: str) -> None:
        """Log a refused connection, at most once per 10 s (a flood must not flood the log)."""
        self._refusals += 1
        now = self.reactor.seconds()
        if now - self._refusal_logged_at < 10:
            return
        log.warn(
            "refused {count} connection(s), the last from {peer}: {why}",
            count=self._refusals,
            peer=peer,
            why=why,
        )
        self._refusals = 0
        self._refusal_logged_at = now

    def channel_closed(self, channel: LimitedHTTPChannel) -> None:
        self.channels.discard(channel)
        peer = channel.peer_host
        self.peers[peer] -= 1
        if self.peers[peer] <= 0:
            del self.peers[peer]

    def request_started(self, request: CliproxyRequest) -> None:
        self.active.add(request)

    def request_ended(self, request: CliproxyRequest) -> None:
        self.active.discard(request)
        if not self.active:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)

    def wait_idle(self) -> defer.Deferred[None]:
        """Fires when no request is in flight."""
        if not self.active:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d

    # -- access log ----------------------------------------------------------------

    def log(self, request: http.Request) -> None:
        state = state_of(request)
        if state.logged:
            return
        state.logged = True
        if self.request_log is not None:
            self.request_log.finished(request)
        if state.key_failed and self.admission is not None:
            peer = request.getClientAddress()
            self.admission.failures.failed(getattr(peer, "host", "-"))
        key = state.client_key
        started = state.started
        duration = self.reactor.seconds() - started if started is not None else 0.0
        path = (request.uri or b"").split(b"?", 1)[0].decode("latin-1")
        log.info(
            "{method} {path} {status} {bytes}B {duration_ms}ms id={request_id} key={client_key}",
            method=request.method.decode("latin-1") if request.method else "-",
            path=path,
            status=request.code,
            bytes=request.sentLength,
            duration_ms=round(duration * 1000, 1),
            request_id=state.request_id,
            client_key=("…" + key[-4:]) if key else "-",
            **state.log_fields,
        )
