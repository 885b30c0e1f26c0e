"""A WebSocket test client on autobahn's client protocol, driven over loopback.

`connect(url, headers)` returns a `Session` once the handshake is done (or fails with the
refusal's status); its `messages` queue holds every text frame as parsed JSON and `closed`
fires with `(code, reason)` when the connection ends.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor


class Session(WebSocketClientProtocol):
    def __init__(self) -> None:
        super().__init__()
        self.messages: defer.DeferredQueue = defer.DeferredQueue()
        self.binary: list[bytes] = []
        self.closed: defer.Deferred = defer.Deferred()
        self.opened: defer.Deferred = defer.Deferred()
        self.response_headers: dict[str, str] = {}

    def onConnect(self, response) -> None:
        self.response_headers = dict(response.headers)

    def onOpen(self) -> None:
        self.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            self.binary.append(payload)
        else:
            self.messages.put(json.loads(payload))

    def onClose(self, wasClean: bool, code, reason) -> None:
        if not self.opened.called:
            self.opened.errback(ConnectionRefusedError(f"handshake failed: {reason}"))
        if not self.closed.called:
            self.closed.callback((code, reason))

    # -- helpers ------------------------------------------------------------------------

    def send_json(self, obj) -> None:
        self.sendMessage(json.dumps(obj).encode("utf-8"), isBinary=False)

    async def next(self) -> dict:
        return await self.messages.get()

    async def until(self, *types: str) -> list[dict]:
        """Every message up to and including the first whose type is in `types`."""
        out = []
        while True:
            msg = await self.next()
            out.append(msg)
            if msg.get("type") in types:
                return out

    async def turn(self, frame: dict) -> list[dict]:
        """Send one request frame and read its events up to the terminal one."""
        self.send_json(frame)
        return await self.until("response.completed", "response.failed", "error")


def connect(url: str, headers: dict[str, str] | None = None, max_size: int = 0):
    """Open a WebSocket to `url` (http://host:port/path); a Deferred of the `Session`."""
    parts = urlsplit(url)
    ws_url = "ws://" + parts.netloc + parts.path + (("?" + parts.query) if parts.query else "")
    factory = WebSocketClientFactory(ws_url, headers=headers or {})
    factory.protocol = Session
    if max_size:
        factory.setProtocolOptions(maxMessagePayloadSize=max_size, maxFramePayloadSize=max_size)
    built: defer.Deferred = defer.Deferred()
    orig = factory.buildProtocol

    def build(addr):
        proto = orig(addr)
        built.callback(proto)
        return proto

    factory.buildProtocol = build
    reactor.connectTCP(parts.hostname, parts.port, factory)
    return built.addCallback(lambda proto: proto.opened)
