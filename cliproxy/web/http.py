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
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, server

from cliproxy.web.errors import family_for_path, raw_error_bytes

log = Logger(namespace="cliproxy.access")
_ids = itertools.count(1)
_id_prefix = os.urandom(3).hex()

_REASONS = {
    408: b"Request Timeout",
    413: b"Payload Too Large",
    431: b"Request Header Fields Too Large",
}


class LimitedHTTPChannel(http.HTTPChannel):
    """An HTTPChannel that enforces header/body size caps and read timeouts."""

    _header_timer: Any = None
    _body_timer: Any = None
    _rejected = False
    _body_received = 0

    @property
    def _limits(self) -> Any:
        return self.site.limits()

    # -- lifecycle -------------------------------------------------------------

    def connectionMade(self) -> None:
        limits = self._limits
        self.totalHeadersSize = limits.max_header_bytes
        self.MAX_LENGTH = limits.max_header_bytes
        super().connectionMade()
        self.site.channel_opened(self)
        self._arm_header_timer()

    def connectionLost(self, reason: Failure) -> None:
        self._cancel_timers()
        self.site.channel_closed(self)
        super().connectionLost(reason)

    def requestDone(self, request: http.Request) -> None:
        super().requestDone(request)
        if self.transport is not None and not self._rejected and not self.requests:
            self._body_received = 0
            self._arm_header_timer()

    # -- header phase ----------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        if self._rejected:
            return
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._reject(431, "request headers are larger than %d bytes" % self.totalHeadersSize)
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._reject(431, "a request header line is longer than %d bytes" % self.MAX_LENGTH)

    def allHeadersReceived(self) -> None:
        self._cancel_header_timer()
        limits = self._limits
        if self.length is not None and self.length > limits.max_body_bytes:
            # Before Twisted answers Expect: 100-continue, and before reading a byte of body.
            self._reject(
                413,
                "request body of %d bytes is larger than the %d byte limit"
                % (self.length, limits.max_body_bytes),
            )
            return
        super().allHeadersReceived()
        if self.length != 0 and limits.body_timeout_seconds:
            self._body_timer = self.callLater(limits.body_timeout_seconds, self._timed_out, "body")

    def allContentReceived(self) -> None:
        if self._rejected:
            return
        if self._body_timer is not None:
            if self._body_timer.active():
                self._body_timer.cancel()
            self._body_timer = None
        super().allContentReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if self._rejected:
            return
        super().rawDataReceived(data)

    def body_chunk_received(self, size: int) -> None:
        """Called by the request for each body chunk; enforces the cap on chunked bodies."""
        self._body_received += size
        limit = self._limits.max_body_bytes
        if self._body_received > limit and not self._rejected:
            self._reject(413, "request body is larger than the %d byte limit" % limit)

    # -- timers ------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        seconds = self._limits.header_timeout_seconds
        if seconds:
            self._header_timer = self.callLater(seconds, self._timed_out, "headers")

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            if self._header_timer.active():
                self._header_timer.cancel()
            self._header_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_header_timer()
        if self._body_timer is not None and self._body_timer.active():
            self._body_timer.cancel()
        self._body_timer = None

    def _timed_out(self, phase: str) -> None:
        if phase == "headers":
            self._header_timer = None
            started = self._receivedHeaderSize or getattr(self, "_buffer", b"")
            if not started:
                # An idle keep-alive connection: close it without an unasked-for answer.
                self.transport.loseConnection()
                return
        else:
            self._body_timer = None
        self._reject(408, "timed out reading the request %s" % phase)

    # -- rejecting -------------------------------------------------------------

    def _reject(self, status: int, message: str) -> None:
        """Answer `status` in the client's family shape and close, reading nothing more."""
        if self._rejected or self.transport is None:
            return
        self._rejected = True
        self._cancel_timers()
        path = getattr(self, "_path", None)
        if path is None and self.requests:
            path = getattr(self.requests[-1], "uri", None)
        family = family_for_path(path)
        log.info(
            "rejected request {path} with {status}: {why}",
            path=(path or b"?").split(b"?", 1)[0].decode("latin-1"),
            status=status,
            why=message,
        )
        self.transport.write(raw_error_bytes(status, _REASONS[status], family, message))
        # Stop parsing whatever is already buffered, and ignore what is still coming.
        self.setRawMode()
        self.dataReceived = lambda data: None  # type: ignore[method-assign]
        # Half-close so the client reads the answer before it sees the socket go; then
        # drop the connection rather than drain an unwanted body.
        try:
            self.transport.loseWriteConnection()
        except AttributeError:
            self.transport.loseConnection()
            return
        self.callLater(2.0, self._abort_rejected)

    def _abort_rejected(self) -> None:
        if self.transport is not None and self.transport.connected:
            self.transport.abortConnection()


class CliproxyRequest(server.Request):
    """A Request that knows its id, start time and (after the guard) its client key."""

    client_key: str | None = None

    def __init__(self, channel: Any, queued: object = None) -> None:
        if queued is None:
            super().__init__(channel)
        else:
            super().__init__(channel, queued)
        self.request_id = "%s-%d" % (_id_prefix, next(_ids))
        self.started = channel.site.reactor.seconds() if channel is not None else 0.0
        self._logged = False
        self.extra_log: dict[str, Any] = {}
        # Twisted >= 24 parses every POST's Content-Type with email.message looking for
        # form uploads; cliproxy never reads form arguments (5-10 % of CPU, bench/RESULTS.md)
        self._parsePOSTFormSubmission = False

    def handleContentChunk(self, data: bytes) -> None:
        channel = self.channel
        if channel is not None and hasattr(channel, "body_chunk_received"):
            channel.body_chunk_received(len(data))
            if channel._rejected:
                return
        super().handleContentChunk(data)

    def process(self) -> None:
        self.setHeader(b"x-request-id", self.request_id.encode("ascii"))
        self.channel.site.request_started(self)
        super().process()

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        if not self.finished and not self._logged:
            # the client left before the answer was complete: 499 as nginx logs it
            self.code = 499
            site = getattr(self, "site", None)
            if site is not None:
                site.log(self)
        site = getattr(self, "site", None)
        if site is not None:
            site.request_ended(self)

    def finish(self) -> None:
        super().finish()
        site = getattr(self, "site", None)
        if site is not None:
            site.request_ended(self)


class CliproxySite(server.Site):
    """A Site with our channel, request ids, one structured access event per request,
    and the bookkeeping graceful shutdown needs."""

    protocol = LimitedHTTPChannel  # type: ignore[assignment]
    requestFactory = CliproxyRequest
    displayTracebacks = False

    def __init__(self, resource: Any, limits: Callable[[], Any], reactor: Any = None) -> None:
        super().__init__(resource, reactor=reactor)
        self.limits = limits
        self.channels: set[LimitedHTTPChannel] = set()
        self.active: set[CliproxyRequest] = set()
        self._idle_waiters: list[defer.Deferred[None]] = []

    # -- bookkeeping -------------------------------------------------------------

    def channel_opened(self, channel: LimitedHTTPChannel) -> None:
        self.channels.add(channel)

    def channel_closed(self, channel: LimitedHTTPChannel) -> None:
        self.channels.discard(channel)

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
        if getattr(request, "_logged", False):
            return
        request._logged = True  # type: ignore[attr-defined]
        key = getattr(request, "client_key", None)
        started = getattr(request, "started", None)
        duration = self.reactor.seconds() - started if started is not None else 0.0
        path = (request.uri or b"").split(b"?", 1)[0].decode("latin-1")
        log.info(
            "{method} {path} {status} {bytes}B {duration_ms}ms id={request_id} key={client_key}",
            method=request.method.decode("latin-1") if request.method else "-",
            path=path,
            status=request.code,
            bytes=request.sentLength,
            duration_ms=round(duration * 1000, 1),
            request_id=getattr(request, "request_id", "-"),
            client_key=("…" + key[-4:]) if key else "-",
            **getattr(request, "extra_log", {}),
        )
