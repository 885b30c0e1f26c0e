# -*- test-case-name: tests.test_routing -*-
"""What crosses the routing boundary: the client's request in, an answer or a `RouteError` out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.iweb import IResponse

from cliproxy.formats import Format
from cliproxy.formats.sse import SSEEvent
from cliproxy.upstream.stream import StreamReader, deliver_stream
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
    #: where each upstream call is recorded for the request log (None: not recorded)
    transcript: list[UpstreamExchange] | None = None
    #: a credential id to try first (a Responses WebSocket session's credential)
    pinned: str | None = None
    #: set by routing: the id of the credential that answered
    served_by: str | None = None
    #: the size of the client's body in bytes (large ones are translated off the reactor)
    size: int = 0


#: the most of each upstream body an `UpstreamExchange` keeps
EXCHANGE_BODY_CAP = 64 * 1024


@dataclass
class UpstreamExchange:
    """One upstream call as the request log shows it: what was sent, what came back.

    Bodies are kept up to `EXCHANGE_BODY_CAP` (sizes counted in full); headers are kept
    as sent, and masked by whoever writes them out (`cliproxy.observe.requestlog`).
    """

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    body_size: int
    status: int | None = None
    response_headers: RawHeaders = field(default_factory=list)
    response_body: bytearray = field(default_factory=bytearray)
    response_size: int = 0
    #: why no answer came (an exception's kind), else ""
    error: str = ""

    @classmethod
    def of(cls, method: str, url: str, headers: Mapping[str, str], body: bytes) -> UpstreamExchange:
        return cls(method, url, list(headers.items()), body[:EXCHANGE_BODY_CAP], len(body))

    def answered(self, status: int, headers: Iterable[tuple[bytes, Iterable[bytes]]]) -> None:
        self.status = status
        self.response_headers = [(name, list(values)) for name, values in headers]

    @staticmethod
    def failed(exchange: UpstreamExchange | None, reason: BaseException) -> None:
        if exchange is not None:
            exchange.error = type(reason).__name__

    def received(self, data: bytes) -> None:
        room = EXCHANGE_BODY_CAP - len(self.response_body)
        if room > 0:
            self.response_body += data[:room]
        self.response_size += len(data)

    def tee(self, on_data: Callable[[bytes], None]) -> Callable[[bytes], None]:
        """`on_data`, keeping a copy of what passes through."""

        body = self.response_body

        def both(data: bytes) -> None:  # per stream event: `received` inlined
            room = EXCHANGE_BODY_CAP - len(body)
            if room > 0:
                body.extend(data[:room])
            self.response_size += len(data)
            on_data(data)

        return both


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

    def read_into(
        self, target: StreamTarget, clock: IReactorTime, idle_timeout: float
    ) -> StreamReader | None:
        """Send the upstream body to `target` (what came already first); the reader."""
        if self.started is not None:
            self.started.attach(target)
            return self.started.reader
        return deliver_stream(
            self.response, target.on_data, target.on_end, idle_timeout=idle_timeout, clock=clock
        )
