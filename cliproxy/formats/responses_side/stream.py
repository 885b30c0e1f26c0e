# -*- test-case-name: tests.formats.test_resp_stream -*-
"""`StreamTranslator`: the object the relay drives, one upstream SSE event at a time."""

from __future__ import annotations

from cliproxy.formats.responses_side.ir import Decoder, Encoder, Usage
from cliproxy.formats.sse import SSEEvent

#: the terminal error a client gets when upstream closes mid-answer
INCOMPLETE_STATUS = 502
INCOMPLETE_MESSAGE = "upstream closed the stream before the response was complete"


class StreamTranslator:
    """Upstream events in, client-framed bytes out; never raises from its three methods.

    Attributes:
        done: the client's terminal event (success or error) was produced; from then on
            `feed`, `finish` and `error` return [].
        usage: token counts seen so far, for accounting.
        skipped: upstream events ignored because their data was not a JSON object.
    """

    done: bool
    usage: Usage
    skipped: int

    def feed(self, event: SSEEvent) -> list[bytes]:
        raise NotImplementedError

    def finish(self) -> list[bytes]:
        """Upstream closed. Completes a stream that only lacks its end marker (a finish reason
        was seen); otherwise emits the client's terminal error event."""
        raise NotImplementedError

    def error(self, status: int, message: str) -> list[bytes]:
        """A terminal error event in the client's format (e.g. idle timeout, upstream reset)."""
        raise NotImplementedError


class HubTranslator(StreamTranslator):
    """A provider decoder feeding a client encoder (see `ir` for why)."""

    def __init__(self, decoder: Decoder, encoder: Encoder) -> None:
        self._decoder = decoder
        self._encoder = encoder

    @property
    def done(self) -> bool:  # type: ignore[override]
        return self._encoder.done

    @property
    def usage(self) -> Usage:  # type: ignore[override]
        return self._decoder.usage

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self._decoder.skipped

    def feed(self, event: SSEEvent) -> list[bytes]:
        encoder = self._encoder
        if encoder.done:
            return []
        try:
            self._decoder.feed(event)
        except Exception as exc:  # a translator bug must end the stream cleanly, not the relay
            self._fail(exc)
        return encoder.drain()

    def finish(self) -> list[bytes]:
        encoder = self._encoder
        if encoder.done:
            return []
        try:
            self._decoder.close()
            if not encoder.done:
                encoder.error(INCOMPLETE_STATUS, INCOMPLETE_MESSAGE)
        except Exception as exc:
            self._fail(exc)
        return encoder.drain()

    def error(self, status: int, message: str) -> list[bytes]:
        encoder = self._encoder
        if encoder.done:
            return []
        try:
            encoder.error(status, message)
        except Exception as exc:
            self._fail(exc)
        return encoder.drain()

    def _fail(self, exc: Exception) -> None:
        encoder = self._encoder
        if encoder.done:
            return
        try:
            encoder.error(500, f"response translation failed ({type(exc).__name__})")
        except Exception:
            pass
        encoder.done = True
