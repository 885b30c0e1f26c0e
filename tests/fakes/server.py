"""`FakeUpstream`: a scriptable HTTP server on loopback that records what it receives.

One twisted.web `Site` with a single leaf resource that does its own routing, so a test
can script any method and path. Each request is answered from, in order: the auth check
(when the fake has `keys`), the scripted queue for its route (per credential first), the
route's default reply, the fake's built-in protocol handlers, and finally a 404 in the
provider's error shape. The response is written piece by piece from a `ReplyPlan`, with
delays on an injectable `IReactorTime`, so byte splits, stalls, resets and client
disconnects are all under the test's control.
"""

from __future__ import annotations

import base64
import hashlib
import re
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from tests.fakes.records import RecordedRequest, decode_body, parse_json, parse_query
from tests.fakes.reply import Reply, ReplyPlan, ReplySource, plan_reply

log = Logger()

PathSpec = str | re.Pattern
Handler = Callable[[RecordedRequest, re.Match], Any]

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Tunnel:
    """Answer `101 Switching Protocols` and turn the connection into a byte tunnel.

    Bytes the client sends afterwards are appended to `RecordedRequest.tunnel_bytes`
    and, with `echo`, written straight back. `greeting` is sent right after the 101.
    """

    headers: dict[str, str] = field(default_factory=dict)
    echo: bool = True
    greeting: bytes = b""


def websocket_accept(key: str) -> str:
    """The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key` (RFC 6455)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _WS_GUID).digest()).decode()


@dataclass
class _Route:
    method: str
    path: PathSpec
    key: str | None
    queue: deque = field(default_factory=deque)
    default: ReplySource | None = None

    def matches(self, rec: RecordedRequest) -> bool:
        if self.method != "*" and self.method != rec.method:
            return False
        if self.key is not None and self.key != rec.key:
            return False
        if isinstance(self.path, re.Pattern):
            return self.path.fullmatch(rec.path) is not None
        return self.path == rec.path


class _ConnectionWrapper(ProtocolWrapper):
    """Lets the fake count connections and hand a connection over to a tunnel."""


class _TrackingFactory(WrappingFactory):
    protocol = _ConnectionWrapper

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self.noisy = False
        self.made = 0
        self._idle_waiters: list[defer.Deferred] = []

    def registerProtocol(self, p) -> None:
        self.made += 1
        super().registerProtocol(p)

    def unregisterProtocol(self, p) -> None:
        super().unregisterProtocol(p)
        if not self.protocols:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)

    def when_idle(self) -> defer.Deferred:
        if not self.protocols:
            return defer.succeed(None)
        d = defer.Deferred()
        self._idle_waiters.append(d)
        return d


class _FakeResource(Resource):
    isLeaf = True

    def __init__(self, fake: FakeUpstream) -> None:
        super().__init__()
        self._fake = fake

    def render(self, request):
        self._fake._handle(request)
        return NOT_DONE_YET


@implementer(IPushProducer)
class _Exchange:
    """Writes one `ReplyPlan` to one request, honouring delays, backpressure and disconnects."""

    def __init__(self, fake: FakeUpstream, request, rec: RecordedRequest, plan: ReplyPlan):
        self.fake = fake
        self.request = request
        self.rec = rec
        self.plan = plan
        self.transport = request.channel.transport
        self._call = None
        self._index = 0
        self._over = False
        self._waited = False
        self._repeat_left = plan.repeat_count
        self._paused = False

    def start(self) -> None:
        self.fake._exchanges.add(self)
        self.request.notifyFinish().addCallbacks(self._client_finished, self._client_gone)
        self._after(self.plan.delay, self._begin)

    def _after(self, delay: float, fn) -> None:
        if delay and delay > 0:
            self._call = self.fake.clock.callLater(delay, fn)
        else:
            fn()

    def _begin(self) -> None:
        self._call = None
        if self._over:
            return
        if not self.plan.commit_headers_first and not self.plan.pieces:
            return  # hang before the status line: the client sees nothing at all
        self.request.setResponseCode(self.plan.status)
        for name, value in self.plan.headers:
            self.request.responseHeaders.addRawHeader(name, value)
        self.rec.status = self.plan.status
        if self.plan.commit_headers_first:
            self.request.write(b"")
        self._pump()

    def _pump(self) -> None:
        self._call = None
        pieces = self.plan.pieces
        while not self._over and self._index < len(pieces):
            piece = pieces[self._index]
            if piece.delay > 0 and not self._waited:
                self._waited = True
                self._call = self.fake.clock.callLater(piece.delay, self._pump)
                return
            self._waited = False
            self._index += 1
            self.request.write(piece.data)
            self.rec.bytes_sent += len(piece.data)
        if self._over:
            return
        if self._repeat_left:
            self.request.registerProducer(self, True)
            self._produce()
        else:
            self._end()

    def _produce(self) -> None:
        self._call = None
        unit, batch = self.plan.repeat, 64
        while not self._over and not self._paused and self._repeat_left and batch:
            self._repeat_left -= 1
            batch -= 1
            self.request.write(unit)
            self.rec.bytes_sent += len(unit)
        if self._over or self._paused:
            return
        if self._repeat_left:
            # yield to the reactor between batches so a fast reader cannot starve it
            self._call = self.fake.clock.callLater(0, self._produce)
        else:
            self.request.unregisterProducer()
            self._end()

    # IPushProducer, for Reply(repeat=...): the channel pauses us when the peer is slow
    def pauseProducing(self) -> None:
        if not self._paused:
            self._paused = True
            self.rec.pauses += 1

    def resumeProducing(self) -> None:
        if self._paused and not self._over:
            self._paused = False
            if self._call is None or not self._call.active():
                self._produce()

    def stopProducing(self) -> None:
        self._cancel()

    def _end(self) -> None:
        after = self.plan.after
        if after == "finish":
            self._over = True
            self.request.finish()
            self.rec._settle("finished", self.fake.clock.seconds())
            self.fake._exchanges.discard(self)
        elif after == "reset":
            self._over = True
            self.rec._settle("reset", self.fake.clock.seconds())
            _abort_when_flushed(self.transport, self.fake.reactor)
        elif after == "close":
            self._over = True
            self.rec._settle("closed", self.fake.clock.seconds())
            self.transport.loseConnection()
        # "hang": stay silent until the client leaves or the fake stops

    def _client_finished(self, _) -> None:
        self.fake._exchanges.discard(self)

    def _client_gone(self, reason) -> None:
        self._cancel()
        self.rec._settle("client-gone", self.fake.clock.seconds())
        self.fake._exchanges.discard(self)

    def _cancel(self) -> None:
        self._over = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def stop(self) -> None:
        """The fake is shutting down: cancel timers and drop the connection."""
        self._cancel()
        self.rec._settle("stopped", self.fake.clock.seconds())
        self.transport.abortConnection()


def _pending_bytes(transport) -> int:
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:  # not a socket transport (in-memory tests): nothing buffered
        return 0


def _abort_when_flushed(transport, reactor, tries: int = 500) -> None:
    """Reset the connection once Twisted has handed every written byte to the kernel.

    `abortConnection` drops Twisted's own write buffer, so aborting at once could lose
    the bytes a test wants the client to see before the reset.
    """
    if _pending_bytes(transport) and tries > 0:
        reactor.callLater(0.001, _abort_when_flushed, transport, reactor, tries - 1)
        return
    transport.abortConnection()


class _TunnelProtocol(Protocol):
    def __init__(self, fake: FakeUpstream, rec: RecordedRequest, echo: bool) -> None:
        self.fake = fake
        self.rec = rec
        self.echo = echo

    def dataReceived(self, data: bytes) -> None:
        self.rec.tunnel_bytes += data
        if self.echo:
            self.transport.write(data)

    def connectionLost(self, reason=None) -> None:
        self.fake._tunnels.discard(self)
        self.rec._settle("client-gone", self.fake.clock.seconds())


class FakeUpstream:
    """A scriptable fake HTTP upstream on 127.0.0.1.

    Args:
        keys: credentials accepted (API keys or bearer tokens). None accepts any request,
            with or without a credential.
        clock: `IReactorTime` for reply delays (default: the reactor), so unit tests can
            drive time with `task.Clock`.
        reactor: the reactor to listen on (default: the global one).

    Use: `fake.listen()`, `fake.url`, `fake.script(...)`, `fake.requests`, `await fake.stop()`.
    """

    #: used in default texts ("hello from <name>") and in the Server header
    name = "fake-upstream"

    def __init__(self, keys=None, clock=None, reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.keys: set[str] | None = set(keys) if keys is not None else None
        self.requests: list[RecordedRequest] = []
        #: failures raised by responders (a broken test script), newest last
        self.errors: list[Failure] = []
        self._routes: list[_Route] = []
        self._builtins: list[tuple[str, re.Pattern, Handler, str]] = []
        self._waiters: list[tuple[int, defer.Deferred]] = []
        self._exchanges: set[_Exchange] = set()
        self._tunnels: set[_TunnelProtocol] = set()
        self._stopped = False
        self.resource = _FakeResource(self)
        self.site = Site(self.resource)
        self.site.noisy = False
        self.site.displayTracebacks = False
        self._factory = _TrackingFactory(self.site)
        self._port = None
        self.install_builtins()

    # -- life cycle -------------------------------------------------------------------

    def listen(self, port: int = 0, interface: str = "127.0.0.1"):
        """Start listening; returns the `IListeningPort`."""
        self._port = self.reactor.listenTCP(port, self._factory, interface=interface)
        return self._port

    @property
    def port(self) -> int:
        return self._port.getHost().port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> defer.Deferred:
        """Stop listening, cancel pending writes and drop every open connection."""
        for ex in list(self._exchanges):
            ex.stop()
        self._exchanges.clear()
        for tunnel in list(self._tunnels):
            tunnel.rec._settle("stopped", self.clock.seconds())
            tunnel.transport.abortConnection()
        for d in [d for _, d in self._waiters]:
            if not d.called:
                d.cancel()
        self._waiters.clear()
        if self._port is None or self._stopped:
            return defer.succeed(None)
        self._stopped = True
        port = self._port
        for conn in list(self._factory.protocols):
            conn.transport.abortConnection()
        return defer.gatherResults(
            [defer.maybeDeferred(port.stopListening), self._factory.when_idle()]
        ).addCallback(lambda _: None)

    @property
    def open_connections(self) -> int:
        """TCP connections currently open to this fake."""
        return len(self._factory.protocols)

    @property
    def connections_made(self) -> int:
        """TCP connections accepted since the fake started."""
        return self._factory.made

    # -- scripting --------------------------------------------------------------------

    def _route(self, method: str, path: PathSpec, key: str | None) -> _Route:
        method = method.upper()
        for r in self._routes:
            if r.method == method and r.path == path and r.key == key:
                return r
        r = _Route(method, path, key)
        self._routes.append(r)
        return r

    def script(self, method: str, path: PathSpec, *replies: ReplySource, key=None) -> None:
        """Queue replies (FIFO) for `method` (or "*") on `path` (exact str or regex).

        With `key`, only requests carrying that credential take them. Each reply is a
        `Reply`, a `Tunnel`, or a function of the `RecordedRequest` returning one.
        """
        self._route(method, path, key).queue.extend(replies)

    def default(self, method: str, path: PathSpec, reply: ReplySource | None, key=None) -> None:
        """The reply for this route whenever its queue is empty (None removes it)."""
        self._route(method, path, key).default = reply

    def pending(self) -> int:
        """Scripted replies not yet consumed, over all routes."""
        return sum(len(r.queue) for r in self._routes)

    def reset(self) -> None:
        """Forget records, scripts and defaults."""
        self.requests.clear()
        self._routes.clear()
        self.errors.clear()

    def builtin(self, method: str, pattern: str, handler: Handler, label: str | None = None):
        """Register a protocol default: `handler(rec, match)` for a full-match regex."""
        self._builtins.append(
            (method.upper(), re.compile(pattern), handler, label or handler.__name__.strip("_"))
        )

    def install_builtins(self) -> None:
        """Subclasses register their protocol routes here."""

    # -- records ----------------------------------------------------------------------

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    def received(self, method: str | None = None, path: PathSpec | None = None):
        """Recorded requests filtered by method and path (exact str or regex)."""
        out = []
        for rec in self.requests:
            if method is not None and rec.method != method.upper():
                continue
            if isinstance(path, re.Pattern) and not path.fullmatch(rec.path):
                continue
            if isinstance(path, str) and rec.path != path:
                continue
            out.append(rec)
        return out

    def wait_requests(self, count: int = 1, timeout: float | None = 5.0) -> defer.Deferred:
        """Fires with `requests` once at least `count` requests were received."""
        if len(self.requests) >= count:
            return defer.succeed(list(self.requests))
        d = defer.Deferred()
        self._waiters.append((count, d))
        if timeout is not None:
            d.addTimeout(timeout, self.reactor)
        return d

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 2.0) -> defer.Deferred:
        """Fires once `predicate()` is true (checked every few ms on the reactor).

        For states with no event of their own (a stream paused by backpressure, all
        connections closed); fails with `defer.TimeoutError` after `timeout` seconds.
        """
        return wait_until(predicate, timeout, self.reactor)

    # -- protocol hooks (override per provider) ---------------------------------------

    def credential(self, rec: RecordedRequest) -> str | None:
        """The credential a request carries, in this provider's places."""
        for name in ("x-api-key", "x-goog-api-key"):
            if rec.header(name):
                return rec.header(name)
        if rec.arg("key"):
            return rec.arg("key")
        return bearer(rec)

    def auth_error(self, rec: RecordedRequest) -> Reply:
        return Reply(401, json={"error": {"message": "invalid credential", "type": "auth"}})

    def not_found(self, rec: RecordedRequest) -> Reply:
        return Reply(404, json={"error": {"message": f"no route for {rec.method} {rec.path}"}})

    def accepts(self, rec: RecordedRequest) -> bool:
        """Whether the request passes the fake's auth check."""
        return self.keys is None or rec.key in self.keys

    # -- request handling -------------------------------------------------------------

    def _record(self, request) -> RecordedRequest:
        request.content.seek(0)
        raw = request.content.read()
        headers: dict[str, list[str]] = {}
        for name, values in request.requestHeaders.getAllRawHeaders():
            headers.setdefault(name.decode("latin-1").lower(), []).extend(
                v.decode("latin-1") for v in values
            )
        enc = headers.get("content-encoding", [None])[0]
        try:
            body = decode_body(raw, enc)
        except Exception:
            body = raw
        rec = RecordedRequest(
            method=request.method.decode("ascii"),
            path=unquote(request.path.decode("latin-1")),
            uri=request.uri,
            query=parse_query(request.uri),
            headers=headers,
            raw_body=raw,
            body=body,
            json=parse_json(body),
            received_at=self.clock.seconds(),
            peer_port=getattr(request.getClientAddress(), "port", None),
            version=request.clientproto.decode("ascii", "replace"),
        )
        rec.key = self.credential(rec)
        return rec

    def _choose(self, rec: RecordedRequest) -> tuple[Any, str]:
        if not self.accepts(rec):
            return self.auth_error, "auth"
        routes = [r for r in self._routes if r.matches(rec)]
        routes.sort(key=lambda r: r.key is None)  # per-credential scripts win
        for r in routes:
            if r.queue:
                return r.queue.popleft(), "scripted"
        for r in routes:
            if r.default is not None:
                return r.default, "default"
        return self._builtin_source(rec)

    def _builtin_source(self, rec: RecordedRequest) -> tuple[Any, str]:
        for method, pattern, handler, label in self._builtins:
            if method not in ("*", rec.method):
                continue
            m = pattern.fullmatch(rec.path)
            if m is not None:
                return (lambda rec, h=handler, m=m: h(rec, m)), "builtin:" + label
        return self.not_found, "not-found"

    def _builtin_reply(self, rec: RecordedRequest):
        """What the protocol default would answer, ignoring scripts (for reshaping)."""
        source, _ = self._builtin_source(rec)
        return source(rec)

    def _handle(self, request) -> None:
        request.defaultContentType = None
        request.setHeader(b"server", self.name.encode("ascii"))
        rec = self._record(request)
        self.requests.append(rec)
        source, rec.route = self._choose(rec)
        try:
            reply = source(rec) if callable(source) else source
        except Exception:
            self.errors.append(Failure())
            log.failure("fake {name} responder failed", name=self.name)
            reply = Reply(500, body=traceback.format_exc())
        self._wake_waiters()
        if isinstance(reply, Tunnel):
            self._open_tunnel(request, rec, reply)
            return
        _Exchange(self, request, rec, plan_reply(reply)).start()

    def _wake_waiters(self) -> None:
        still = []
        for count, d in self._waiters:
            if d.called:
                continue
            if len(self.requests) >= count:
                d.callback(list(self.requests))
            else:
                still.append((count, d))
        self._waiters = still

    def _open_tunnel(self, request, rec: RecordedRequest, tunnel: Tunnel) -> None:
        wrapper = request.channel.transport
        if not isinstance(wrapper, _ConnectionWrapper):
            raise RuntimeError("tunnels need a real socket (use fake.listen())")
        lines = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket", b"Connection: Upgrade"]
        key = rec.header("sec-websocket-key")
        if key:
            lines.append(b"Sec-WebSocket-Accept: " + websocket_accept(key).encode("ascii"))
        for name, value in tunnel.headers.items():
            lines.append(f"{name}: {value}".encode("latin-1"))
        # take the connection away from HTTPChannel: from here on it is a byte pipe
        request.channel.setTimeout(None)
        proto = _TunnelProtocol(self, rec, tunnel.echo)
        proto.transport = wrapper
        wrapper.wrappedProtocol = proto
        self._tunnels.add(proto)
        rec.status = 101
        rec.upgraded = True
        wrapper.write(b"\r\n".join(lines) + b"\r\n\r\n" + tunnel.greeting)


def bearer(rec: RecordedRequest) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    value = rec.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0, reactor=None):
    """A Deferred firing with True once `predicate()` holds, polled every 5 ms."""
    if reactor is None:
        from twisted.internet import reactor
    d = defer.Deferred()
    deadline = reactor.seconds() + timeout

    def check() -> None:
        if d.called:
            return
        if predicate():
            d.callback(True)
        elif reactor.seconds() >= deadline:
            d.errback(defer.TimeoutError(f"condition not met within {timeout} s"))
        else:
            reactor.callLater(0.005, check)

    check()
    return d
