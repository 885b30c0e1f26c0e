# -*- test-case-name: tests.upstream.test_stream -*-
"""Reading a streaming upstream body chunk by chunk, with an idle timeout.

treq's `timeout=` only bounds the wait for response headers; a stream that then goes
silent would hang forever. `StreamReader` re-arms a timer on every chunk and, when it
expires, drops the connection and reports `StreamIdleTimeout`.

It is also the push producer the web layer registers on the client request: pausing
it pauses the upstream socket *and* the idle timer (a slow client is not a silent
upstream), and stopping it (client gone) drops the upstream connection.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IResponse
from zope.interface import implementer

from cliproxy.credentials.net import body_transport
from cliproxy.upstream.body import (
    BodyDecodeError,
    BodyTooLarge,
    Decompressor,
    declared_encoding,
    detect_encoding,
    may_be_magic,
)

log = Logger()


class StreamIdleTimeout(Exception):
    """The upstream sent nothing for `seconds` while the stream was open."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"upstream sent nothing for {seconds:g}s")
        self.seconds = seconds


@implementer(IPushProducer)
class StreamReader(Protocol):
    """A body protocol for `IResponse.deliverBody` that streams decoded bytes.

    Args:
        on_data: called with each decoded piece (never empty).
        on_end: called exactly once: `None` for a clean end (`ResponseDone`, or
            `PotentialDataLoss` for bodies delimited by the connection closing), else a
            `Failure` of `StreamIdleTimeout`, `CancelledError` (`stop()` was called),
            `BodyDecodeError`/`BodyTooLarge`, an exception `on_data` raised, or the
            transport's own failure (`ResponseFailed` on a reset).
        idle_timeout: seconds allowed between chunks; `None`/0 for no limit.
        clock: `IReactorTime` for the idle timer.
        content_encoding: the response's `Content-Encoding` (`None`: sniff magic bytes).
        max_output: optional bound on total decoded bytes.
        decode: `False` passes the bytes on exactly as they came (a proxy that forwards
            `Content-Encoding` to its client).
    """

    def __init__(
        self,
        on_data: Callable[[bytes], object],
        on_end: Callable[[Failure | None], object],
        *,
        idle_timeout: float | None,
        clock: IReactorTime,
        content_encoding: str | None = None,
        max_output: int | None = None,
        decode: bool = True,
    ) -> None:
        self._on_data = on_data
        self._on_end = on_end
        self.idle_timeout = idle_timeout or None
        self._clock = clock
        self._declared = content_encoding
        self._max_output = max_output
        self._decoder: Decompressor | None = None
        # not sniffing and no decoder: `_decode` hands every chunk on unchanged
        self._sniffing = decode
        self._sniff_buf = b""
        self._timer: IDelayedCall | None = None
        self._deadline = 0.0
        self._paused = False
        self.ended = False

    # -- timer ---------------------------------------------------------------------------

    def _arm(self) -> None:
        """Restart the idle period. A chunk only moves the deadline; the timer, when it
        fires, re-arms itself for what is left (a `DelayedCall.reset` per chunk cost
        more than the chunk's own handling)."""
        if self.idle_timeout is None or self.ended or self._paused:
            return
        self._deadline = self._clock.seconds() + self.idle_timeout
        if self._timer is None:
            self._timer = self._clock.callLater(self.idle_timeout, self._idle_expired)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _idle_expired(self) -> None:
        self._timer = None
        left = self._deadline - self._clock.seconds()
        if left > 0:
            self._timer = self._clock.callLater(left, self._idle_expired)
            return
        self._abort(Failure(StreamIdleTimeout(self.idle_timeout or 0)))

    # -- ending --------------------------------------------------------------------------

    def _finish(self, reason: Failure | None) -> None:
        if self.ended:
            return
        self.ended = True
        self._disarm()
        try:
            self._on_end(reason)
        except Exception:
            log.failure("stream end handler failed")

    def _abort(self, reason: Failure) -> None:
        """Report `reason` now and drop the upstream connection."""
        if self.ended:
            return
        self._finish(reason)
        transport = body_transport(self)
        if transport is not None:
            transport.stopProducing()

    def stop(self) -> None:
        """The consumer is gone: drop the upstream connection; `on_end` gets CancelledError."""
        self._abort(Failure(CancelledError("stream stopped by its consumer")))

    # -- IProtocol -----------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._arm()

    def _decode(self, data: bytes) -> bytes:
        if self._sniffing:
            data = self._sniff_buf + data
            if self._declared is None and may_be_magic(data):
                self._sniff_buf = data  # too short to tell yet
                return b""
            self._sniffing = False
            self._sniff_buf = b""
            encoding = self._declared or detect_encoding(data)
            if encoding is not None:
                self._decoder = Decompressor(encoding, self._max_output)
        if self._decoder is not None:
            return self._decoder.feed(data)
        return data

    def dataReceived(self, data: bytes) -> None:
        if self.ended:
            return
        self._arm()
        try:
            # most streams are plain bytes: no call into the decoder once sniffing is over
            out = self._decode(data) if self._sniffing or self._decoder is not None else data
            if out:
                self._on_data(out)
        except (BodyDecodeError, BodyTooLarge):
            self._abort(Failure())
        except Exception:
            log.failure("stream data handler failed")
            self._abort(Failure())

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._disarm()
        if self.ended:
            return
        if reason is not None and not reason.check(ResponseDone, PotentialDataLoss):
            self._finish(reason)
            return
        try:
            out = self._sniff_buf if self._sniffing else b""
            self._sniff_buf = b""
            if self._decoder is not None:
                out += self._decoder.flush()
            if out:
                self._on_data(out)
        except Exception:
            self._finish(Failure())
            return
        self._finish(None)

    # -- IPushProducer (register this on the client request) -----------------------------

    def pauseProducing(self) -> None:
        self._paused = True
        self._disarm()
        transport = body_transport(self)
        if transport is not None:
            transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        self._arm()
        transport = body_transport(self)
        if transport is not None:
            transport.resumeProducing()

    def stopProducing(self) -> None:
        self.stop()


def deliver_stream(
    response: IResponse,
    on_data: Callable[[bytes], object],
    on_end: Callable[[Failure | None], object],
    *,
    idle_timeout: float | None,
    clock: IReactorTime,
    max_output: int | None = None,
) -> StreamReader:
    """Start reading `response`'s body into `on_data`; see `StreamReader`.

    Returns the reader: register it (an `IPushProducer`) on the client request with
    `request.registerProducer(reader, True)`, and call `reader.stop()` when the client
    leaves. `reader.transport` is the upstream transport itself.
    """
    reader = StreamReader(
        on_data,
        on_end,
        idle_timeout=idle_timeout,
        clock=clock,
        content_encoding=declared_encoding(response.headers),
        max_output=max_output,
    )
    response.deliverBody(reader)
    return reader
