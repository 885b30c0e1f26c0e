# -*- test-case-name: tests.websocket.test_socket -*-
"""`GET /v1/responses` with `Upgrade: websocket`: the Responses WebSocket mode.

`ResponsesSocket` sits where the Responses endpoint is mounted: a WebSocket upgrade is
taken here, everything else (the POSTs, `/compact`) goes to the HTTP endpoint it wraps.
The client-key guard around it has already checked the key from the upgrade's headers,
and the Site checked Host and Origin as for any request.

On an upgrade, twisted.web lets go of the connection (no timeouts, no producer, no
parser) and an autobahn `WebSocketServerProtocol` takes it over: autobahn does the
handshake (it is replayed to it from the parsed request) and all the framing.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from cliproxy.twisted_compat import pipelined_bytes
from cliproxy.web.endpoints import Backend, client_headers
from cliproxy.web.responses_socket.protocol import ResponsesSocketProtocol, SessionContext
from cliproxy.web.sessions import ILongSession
from cliproxy.web.state import state_of

log = Logger()

#: the largest WebSocket message taken, unless `limits.max-body-size` is smaller
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def wants_websocket(request: Request) -> bool:
    """A GET asking to switch to the WebSocket protocol (RFC 6455 4.1)."""
    if request.method != b"GET":
        return False
    upgrade = (request.getHeader(b"upgrade") or b"").strip().lower()
    connection = (request.getHeader(b"connection") or b"").lower()
    return upgrade == b"websocket" and b"upgrade" in [t.strip() for t in connection.split(b",")]


def message_limit(max_body_bytes: int) -> int:
    return min(MAX_MESSAGE_BYTES, max_body_bytes) if max_body_bytes > 0 else MAX_MESSAGE_BYTES


class ResponsesSocket(Resource):
    """The Responses endpoint plus its WebSocket mode (see the module docstring)."""

    isLeaf = True

    def __init__(self, http: IResource, backend: Backend) -> None:
        Resource.__init__(self)
        self.http = http
        self.backend = backend
        self.factory = WebSocketServerFactory()  # type: ignore[no-untyped-call]
        # a protocol error closes with its code (1009, 1007, ...) instead of dropping TCP,
        # and the client has time to finish sending (an oversized message is read and
        # dropped) before its close reply is due: cutting it short would reset the socket
        # and could take the close frame with it
        self.factory.setProtocolOptions(  # type: ignore[no-untyped-call]
            failByDrop=False, openHandshakeTimeout=30, closeHandshakeTimeout=30
        )

    def render_GET(self, request: Request) -> bytes | int:
        if not wants_websocket(request) or (request.postpath or [b""]) != [b""]:
            result: bytes | int = self.http.render(request)
            return result
        return self.upgrade(request)

    def render_POST(self, request: Request) -> bytes | int:
        result: bytes | int = self.http.render(request)
        return result

    def render(self, request: Request) -> bytes | int:
        if request.method in (b"GET", b"POST"):
            return Resource.render(self, request)  # type: ignore[no-any-return]
        result: bytes | int = self.http.render(request)
        return result

    # -- the upgrade -----------------------------------------------------------------------

    def upgrade(self, request: Request) -> bytes | int:
        channel: Any = request.channel
        transport: Any = channel.transport
        config = self.backend.config()
        limit = message_limit(config.limits.max_body_bytes)
        context = SessionContext(
            router=self.backend.router,
            clock=self.backend.reactor,
            idle_timeout=config.streaming.idle_timeout_seconds,
            client_key=state_of(request).client_key,
            headers=client_headers(request),
            closed=lambda: self._channel_closed(channel),
            sessions=getattr(getattr(channel, "site", None), "upgraded", None),
        )
        proto = ResponsesSocketProtocol(context)
        proto.factory = self.factory
        # twisted.web lets go of the connection
        channel.setTimeout(None)
        transport.unregisterProducer()
        pending = pipelined_bytes(channel)
        if isinstance(transport, ProtocolWrapper):  # TLS
            transport.wrappedProtocol = proto
        else:
            transport.protocol = proto
        Protocol.makeConnection(proto, transport)
        proto.limit_messages(limit)
        transport.resumeProducing()
        # the drain tells this connection from a request in flight by this component
        request.setComponent(ILongSession, proto)
        proto.dataReceived(_handshake(request) + pending)
        self._request_done(request, channel)
        return NOT_DONE_YET

    def _request_done(self, request: Request, channel: Any) -> None:
        """The upgrade request is over for the Site (logged as 101); its connection is
        counted until the WebSocket closes."""
        request.code = 101
        site = getattr(channel, "site", None)
        for hook in ("log", "request_ended"):
            fn = getattr(site, hook, None)
            if fn is not None:
                fn(request)

    @staticmethod
    def _channel_closed(channel: Any) -> None:
        site = getattr(channel, "site", None)
        if site is not None:
            site.channel_closed(channel)


def _handshake(request: Request) -> bytes:
    """The upgrade request again, as bytes, for autobahn's handshake parser."""
    lines = [request.method + b" " + request.uri + b" HTTP/1.1"]
    for name, values in request.requestHeaders.getAllRawHeaders():
        lines.append(name + b": " + b", ".join(values))
    return b"\r\n".join(lines) + b"\r\n\r\n"
