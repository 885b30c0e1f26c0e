# -*- test-case-name: tests.test_routing -*-
"""What crosses the routing boundary: the client's request in, an answer or a `RouteError` out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.iweb import IResponse

from cliproxy.formats import Format
from cliproxy.formats.sse import SSEEvent
from cliproxy.upstream.stream import StreamReader
from cliproxy.usage import Usage

#: filtered upstream response headers, as `Headers.getAllRawHeaders()` gives them
RawHeaders = list[tuple[bytes, list[bytes]]]


@dataclass
class ClientRequest:
    """One client call, parsed once by the endpoint resource."""

    format: Format
    model: str
    #: the client's JSON body (a boundary: its shape is the client format's business)
    body: dict[str, Any]
    stream: bool
    headers: dict[str, str] = field(default_factory=dict)
    client_key: str | None = None
    action: str = "generate"  # or "count_tokens"
    #: Gemini `alt`: None/"sse" for SSE framing
    alt: str | None = None
    #: how the request got here, for usage: "local", or Amp's "mapped"
    route: str = "local"
    #: the size of the client's body in bytes (large ones are translated off the reactor)
    size: int = 0


class RouteError(Exception):
    """A failure to answer in the client's family shape with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: a body already in the client's shape (e.g. a translated upstream error)
        self.body = body
        self.headers = headers or {}
        self.code = code
        self.type = type

    def log_reason(self) -> str:
        """Why the request failed, for the log line (the upstream's own words when relayed)."""
        err = (self.body or {}).get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return f"{self.message}: {err['message'][:300]}"
        return self.message


@dataclass
class JSONResult:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    #: filtered upstream headers, with `passthrough-headers: true`
    passthrough: RawHeaders = field(default_factory=list)


class EventTranslator(Protocol):
    """Upstream SSE events in, client-framed bytes out (`formats.StreamTranslator` or a
    wrapper around one)."""

    @property
    def done(self) -> bool: ...

    def feed(self, event: SSEEvent) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def error(self, status: int, message: str) -> list[bytes]: ...


class StreamTarget(Protocol):
    """Where an upstream stream's bytes go: the relay."""

    def on_data(self, data: bytes) -> None: ...

    def on_end(self, reason: Failure | None) -> None: ...


class BootstrapSink:
    """Holds an upstream stream's first bytes until the relay takes over.

    The `StreamReader` calls `on_data`/`on_end`; until `attach`, data is kept and `first`
    fires (True on data, False on an end before any data); afterwards everything goes
    straight to the relay.
    """

    def __init__(self) -> None:
        self.first: defer.Deferred[bool] = defer.Deferred()
        self.reader: StreamReader | None = None
        self._buffer: list[bytes] = []
        self._ended: tuple[Failure | None] | None = None
        self._target: StreamTarget | None = None

    def on_data(self, data: bytes) -> None:
        if self._target is not None:
            self._target.on_data(data)
            return
        self._buffer.append(data)
        if not self.first.called:
            self.first.callback(True)

    def on_end(self, reason: Failure | None) -> None:
        if self._target is not None:
            self._target.on_end(reason)
            return
        self._ended = (reason,)
        if not self.first.called:
            self.first.callback(False)

    def attach(self, target: StreamTarget) -> None:
        """Hand the stream to `target` (with `on_data`/`on_end`), replaying what came."""
        self._target = target
        buffered, self._buffer = self._buffer, []
        for data in buffered:
            target.on_data(data)
        if self._ended is not None:
            target.on_end(self._ended[0])


@dataclass
class StreamResult:
    """An upstream stream that answered 2xx; the relay reads it into the client."""

    response: IResponse  # unbuffered
    translator: EventTranslator
    client_format: Format
    alt: str | None
    #: called once by the relay when the stream ends: (usage, error_status or None)
    done: Callable[[Usage, int | None], None]
    #: filtered upstream headers, with `passthrough-headers: true`
    passthrough: RawHeaders = field(default_factory=list)
    #: the reader already started and its first bytes (routing waits for them so it can
    #: fail over before answering); None: the relay starts reading itself
    started: BootstrapSink | None = None
