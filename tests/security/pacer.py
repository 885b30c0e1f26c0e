"""A paced OpenAI Chat stream: an upstream that sends its next SSE chunk when told to,
and a raw client that answers each chunk it receives by asking for the next one.

Together they are a ping-pong through cliproxy's relay: every round needs the reactor
(the fake writes, cliproxy reads and relays, the client reads), so the number of rounds
in a window says whether the reactor ran during it, with no clock involved.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from twisted.internet import defer, protocol
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site


def chat_chunk(n: int, content: str, finish: str | None = None) -> bytes:
    delta = {"role": "assistant", "content": content} if n == 0 else {"content": content}
    chunk = {
        "id": "chatcmpl-paced",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-paced",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _openai_error(request: Request, status: int, message: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return json.dumps(body).encode()


class PacedChat(Resource):
    """`POST /v1/chat/completions` with `stream: true`: the first chunk at once, each
    further one on `send()`, the end on `finish()`. Anything else is refused as OpenAI
    refuses it."""

    isLeaf = True

    def __init__(self, key: str) -> None:
        Resource.__init__(self)
        self.key = key
        self.stream: Request | None = None
        self.sent = 0
        self.started: defer.Deferred[None] = defer.Deferred()

    def render_POST(self, request: Request) -> bytes | int:
        if request.path != b"/v1/chat/completions":
            return _openai_error(request, 404, "Unknown request URL")
        if request.getHeader(b"authorization") != f"Bearer {self.key}".encode():
            return _openai_error(request, 401, "Incorrect API key provided")
        assert request.content is not None
        try:
            body = json.loads(request.content.read())
        except ValueError:
            return _openai_error(request, 400, "We could not parse the JSON body")
        if not isinstance(body, dict) or body.get("stream") is not True:
            return _openai_error(request, 400, "this fake only streams")
        request.setHeader(b"content-type", b"text/event-stream")
        request.write(chat_chunk(0, "tick 0"))
        self.stream, self.sent = request, 1
        self.started.callback(None)
        return NOT_DONE_YET

    def send(self) -> None:
        if self.stream is not None:
            self.stream.write(chat_chunk(self.sent, f"tick {self.sent}"))
            self.sent += 1

    def finish(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            stream.write(chat_chunk(self.sent, "", "stop") + b"data: [DONE]\n\n")
            stream.finish()


def paced_site(key: str) -> tuple[Site, PacedChat]:
    resource = PacedChat(key)
    site = Site(resource)
    site.noisy = False
    return site, resource


class PingPongClient(protocol.Protocol):
    """Counts the SSE events cliproxy relays and asks `next_chunk` for one more after
    each, until `stop_at` events have arrived (when set)."""

    def __init__(self, next_chunk: Callable[[], None]) -> None:
        self.next_chunk = next_chunk
        self.data = b""
        self.events = 0
        self.stop_at: int | None = None
        self.first: defer.Deferred[None] = defer.Deferred()
        self.closed: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        events = self.data.count(b"data: ")
        if events > self.events:
            self.events = events
            if not self.first.called:
                self.first.callback(None)
            if self.stop_at is None or events < self.stop_at:
                self.next_chunk()

    def connectionLost(self, reason: object = None) -> None:
        if not self.closed.called:
            self.closed.callback(None)
