# -*- test-case-name: tests.web.test_relay_socket -*-
"""The streaming relay: an upstream SSE body into the client's request, event by event.

The upstream transport is registered as a streaming producer on the client request,
so a slow client pauses the upstream socket instead of growing a buffer. A client that
leaves stops the upstream transport (closing that connection). An upstream that goes
silent past the idle timeout, or resets mid-stream, ends the client's stream with a
terminal error event in the client's own format.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import Interface, implementer

from cliproxy.formats import Format
from cliproxy.formats.sse import SSEDecoder, encode_comment
from cliproxy.observe.signals import track_stream
from cliproxy.upstream.stream import StreamIdleTimeout, StreamReader, deliver_stream
from cliproxy.usage import Usage, copy_usage
from cliproxy.web.state import client_gone

log = Logger()

SHUTDOWN_MESSAGE = "cliproxy is shutting down and its grace period is over; retry the request"


class IStreamEnd(Interface):
    """A request component: ends an open stream with a terminal error event now."""

    def terminate(status: int, message: str) -> None:  # noqa: N805
        """Write the client-format error event, finish the request, drop the upstream."""


@implementer(IStreamEnd)
class StreamRelay:
    """Reads an upstream SSE body into a client Request, translating event by event.

    The byte-level work (decompression by header or magic bytes, the idle timer, pausing
    and stopping the upstream socket) is `cliproxy.upstream.stream.StreamReader`'s; this
    class frames events, translates them and writes them with the client's headers.
    """

    def __init__(
        self,
        request: Request,
        result: Any,
        clock: Any,
        *,
        idle_timeout: float,
        keepalive: float,
    ) -> None:
        self.request = request
        self.result = result
        self.translator = result.translator
        self.clock = clock
        self.idle_timeout = idle_timeout
        #: Gemini without alt=sse is one streamed JSON array (framed by the translator)
        self.raw_json = result.client_format is Format.GEMINI and result.alt not in (None, "sse")
        self.keepalive = 0 if self.raw_json else keepalive
        self.decoder = SSEDecoder()
        self.reader: StreamReader | None = None
        self._committed = False
        self._client_gone = False
        self._ended = False
        self._keepalive_call: Any = None
        self._ping_due = 0.0

    def start(self) -> None:
        started = getattr(self.result, "started", None)
        if started is not None:
            # routing already read the first bytes (to fail over before answering)
            self.reader = started.reader
            started.attach(self)
        else:
            self.reader = deliver_stream(
                self.result.response,
                self.on_data,
                self.on_end,
                idle_timeout=self.idle_timeout,
                clock=self.clock,
            )
        if self._ended:
            return
        self.request.registerProducer(self.reader, True)
        self.request.setComponent(IStreamEnd, self)
        self.request.notifyFinish().addErrback(self._client_left)
        self._arm_keepalive()

    # -- upstream side -------------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self._client_gone or self._ended:
            return
        out: list[bytes] = []
        for event in self.decoder.feed(data):
            out.extend(self.translator.feed(event))
        if out:
            self._write(b"".join(out))
            if self.translator.done:
                # the terminal event is out; whatever the upstream still sends is dropped
                self._end([], None)

    def on_end(self, reason: Failure | None) -> None:
        self._cancel_keepalive()
        if self._ended:
            return
        if self._client_gone or (reason is not None and reason.check(CancelledError)):
            self._ended = True
            self.result.done(self._usage(), 499)
            return
        out: list[bytes] = []
        if reason is None:
            try:
                for event in self.decoder.close():
                    out.extend(self.translator.feed(event))
            except Exception:
                log.failure("translating the last upstream event")
            out.extend(self.translator.finish())
            self._end(out, None)
        elif reason.check(StreamIdleTimeout):
            log.warn("upstream stream idle for {s}s: ending it", s=self.idle_timeout)
            out.extend(
                self.translator.error(
                    504, f"upstream sent nothing for {self.idle_timeout:g}s; stream ended"
                )
            )
            self._end(out, 504)
        else:
            log.info("upstream stream broke: {why}", why=reason.getErrorMessage())
            out.extend(self.translator.error(502, "upstream connection lost mid-stream"))
            self._end(out, 502)

    def terminate(self, status: int, message: str) -> None:
        """End the stream now (shutdown): a terminal error event, then the upstream is dropped."""
        if self._ended or self._client_gone:
            return
        log.info("ending an open stream: {why}", why=message)
        self._end(self.translator.error(status, message), status)
        if self.reader is not None:
            self.reader.stop()

    # -- client side ---------------------------------------------------------------------

    def _client_left(self, _: Failure) -> None:
        if self._ended:
            return
        self._client_gone = True
        self._cancel_keepalive()
        if self.reader is not None:
            # drops the upstream connection: nothing more is read or paid for
            self.reader.stop()

    def _commit(self) -> None:
        if self._committed:
            return
        self._committed = True
        req = self.request
        req.setResponseCode(200)
        for name, values in getattr(self.result, "passthrough", ()):
            req.responseHeaders.setRawHeaders(name, values)
        if self.raw_json:
            req.setHeader(b"content-type", b"application/json")
        else:
            req.setHeader(b"content-type", b"text/event-stream")
            req.setHeader(b"cache-control", b"no-cache")
            req.setHeader(b"x-accel-buffering", b"no")

    def _write(self, data: bytes) -> None:
        if self._client_gone:
            return
        if not self._committed:
            self._commit()
        self.request.write(data)
        self._arm_keepalive()

    def _end(self, out: list[bytes], error: int | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._cancel_keepalive()
        if out:
            self._write(b"".join(out))
        if not self._client_gone and not client_gone(self.request):
            self._commit()
            self.request.unregisterProducer()
            self.request.finish()
        dropped = getattr(self.translator, "skipped", 0)
        if dropped:
            log.info("dropped {n} empty or invalid upstream SSE event(s)", n=dropped)
        self.result.done(self._usage(), error)

    def _usage(self) -> Usage:
        return copy_usage(getattr(self.translator, "usage", None))

    # -- keep-alive ------------------------------------------------------------------------

    def _arm_keepalive(self) -> None:
        """The next ping is due `keepalive` seconds after this write. A write only moves
        the due time; the timer re-arms itself for what is left when it fires (cheaper
        than a `DelayedCall.reset` per event)."""
        if not self.keepalive or self._ended:
            return
        self._ping_due = self.clock.seconds() + self.keepalive
        if self._keepalive_call is None:
            self._keepalive_call = self.clock.callLater(self.keepalive, self._ping)

    def _ping(self) -> None:
        self._keepalive_call = None
        if self._ended or self._client_gone:
            return
        left = self._ping_due - self.clock.seconds()
        if left > 0:
            self._keepalive_call = self.clock.callLater(left, self._ping)
            return
        self._commit()
        self.request.write(encode_comment("keep-alive"))
        self._arm_keepalive()

    def _cancel_keepalive(self) -> None:
        if self._keepalive_call is not None and self._keepalive_call.active():
            self._keepalive_call.cancel()
        self._keepalive_call = None


def relay_stream(request: Request, result: Any, clock: Any, config: Any) -> StreamRelay:
    """Start relaying `result` (a routing StreamResult) into `request`."""
    relay = StreamRelay(
        request,
        result,
        clock,
        idle_timeout=config.streaming.idle_timeout_seconds,
        keepalive=config.streaming.keepalive_seconds,
    )
    track_stream(result)  # cliproxy_open_streams
    relay.start()
    return relay
