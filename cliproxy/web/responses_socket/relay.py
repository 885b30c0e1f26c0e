# -*- test-case-name: tests.websocket.test_socket -*-
"""An upstream stream read into a WebSocket session, one Responses event per text frame.

The routing `StreamResult` already translates upstream events into Responses SSE bytes;
this relay splits those back into events and sends each event's JSON as a text frame. The
upstream transport is registered as a streaming producer on the WebSocket's transport, so
a slow client pauses the upstream socket. The items of the answer are collected for the
session's transcript (Codex sends `response.completed` with an empty `output`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from cliproxy.formats.json_types import JSON
from cliproxy.formats.sse import SSEDecoder
from cliproxy.observe.signals import track_stream
from cliproxy.routing import StreamResult
from cliproxy.upstream.stream import StreamIdleTimeout, StreamReader
from cliproxy.usage import copy_usage

log = Logger()

#: events that end a Responses answer
_TERMINAL = ("response.completed", "response.failed", "response.incomplete")


@dataclass
class TurnEnd:
    """How a turn ended: `completed` (a `response.completed` was sent), its id and items."""

    completed: bool
    response_id: str = ""
    output: list[JSON] = field(default_factory=list)


class EventSink(Protocol):
    """The session side: where events go and whose transport takes the producer."""

    transport: Any

    def send_event(self, data: bytes) -> None: ...


class SocketRelay:
    """Reads one `StreamResult` into `sink`; calls `ended` once with a `TurnEnd`."""

    def __init__(
        self,
        sink: EventSink,
        result: StreamResult,
        clock: IReactorTime,
        idle_timeout: float,
        ended: Callable[[TurnEnd], None],
    ) -> None:
        self.sink = sink
        self.result = result
        self.translator = result.translator
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.ended = ended
        self.upstream = SSEDecoder()  # upstream bytes -> provider events
        self.client = SSEDecoder()  # translated Responses SSE bytes -> client events
        self.reader: StreamReader | None = None
        self.items: list[JSON] = []
        self.end = TurnEnd(False)
        self._finished = False
        self._registered = False
        self._gone = False

    def start(self) -> None:
        track_stream(self.result)
        self.reader = self.result.read_into(self, self.clock, self.idle_timeout)
        transport = self.sink.transport
        if not self._finished and self.reader is not None and transport is not None:
            transport.registerProducer(self.reader, True)
            self._registered = True

    # -- upstream side ---------------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self._finished or self._gone:
            return
        self._send([b for event in self.upstream.feed(data) for b in self.translator.feed(event)])
        if self.translator.done:
            self._finish(None)  # the terminal event is out; what may still come is dropped

    def on_end(self, reason: Failure | None) -> None:
        if self._finished:
            return
        if self._gone or (reason is not None and reason.check(CancelledError)):
            self._finish(499)
            return
        if reason is None:
            self._send(self._rest())
            self._finish(None)
            return
        status, message = 502, "upstream connection lost mid-stream"
        if reason.check(StreamIdleTimeout):
            status = 504
            message = f"upstream sent nothing for {self.idle_timeout:g}s; stream ended"
        log.info("websocket turn: {why}", why=message)
        self._send(self.translator.error(status, message))
        self._finish(status)

    def _rest(self) -> list[bytes]:
        """The last upstream event (if unterminated) and the translator's closing events."""
        out: list[bytes] = []
        try:
            for event in self.upstream.close():
                out.extend(self.translator.feed(event))
        except Exception:
            log.failure("translating the last upstream event")
        return out + self.translator.finish()

    # -- client side -----------------------------------------------------------------------

    def client_left(self) -> None:
        """The WebSocket closed: drop the upstream connection."""
        if self._gone:
            return
        self._gone = True
        if self.reader is not None:
            self.reader.stop()
        if not self._finished:
            self._finish(499)

    def _send(self, chunks: list[bytes]) -> None:
        if not chunks or self._gone:
            return
        for event in self.client.feed(b"".join(chunks)):
            data = event.data.strip()
            if not data or data == b"[DONE]":
                continue
            self._note(data)
            self.sink.send_event(data)

    def _note(self, data: bytes) -> None:
        """Follow the answer: its id, its finished items, whether it completed."""
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            self.items.append(event["item"])
            return
        response = event.get("response")
        if not isinstance(response, dict):
            return
        if isinstance(response.get("id"), str):
            self.end.response_id = response["id"]
        if kind in _TERMINAL:
            output = response.get("output")
            self.end.completed = kind == "response.completed"
            self.end.output = output if isinstance(output, list) and output else self.items

    def _finish(self, error: int | None) -> None:
        if self._finished:
            return
        self._finished = True
        if self._registered:
            self._registered = False
            transport = self.sink.transport
            if transport is not None:
                transport.unregisterProducer()
        self.result.done(copy_usage(getattr(self.translator, "usage", None)), error)
        if error is not None:
            self.end.completed = False
        self.ended(self.end)
