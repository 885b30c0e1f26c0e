"""Small loopback servers for the upstream tests: a scripted HTTP origin (plain or TLS),
an HTTP proxy (absolute-form forwarding and CONNECT), and a SOCKS5 server (RFC 1928/1929).

Each records what it saw so tests can assert on the wire, not on our internals.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, protocol, reactor, ssl
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site


class ClockedReactor:
    """The real reactor for sockets, a `task.Clock` for timers (timeouts under test control)."""

    def __init__(self, clock: Any) -> None:
        self._clock = clock

    def callLater(self, *a: Any, **kw: Any) -> Any:
        return self._clock.callLater(*a, **kw)

    def seconds(self) -> float:
        return self._clock.seconds()

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)


class SilentServer:
    """Accepts TCP connections and never says a word (a dead proxy)."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self.port: Any = None

    def listen(self) -> SilentServer:
        server = self

        class Mute(protocol.Protocol):
            def connectionMade(self) -> None:
                server.connections.append(self)

        self.port = reactor.listenTCP(0, protocol.Factory.forProtocol(Mute), interface="127.0.0.1")
        return self

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port.getHost().port}"

    def stop(self) -> defer.Deferred:
        for p in self.connections:
            p.transport.abortConnection()
        return defer.maybeDeferred(self.port.stopListening)


# -- TLS material --------------------------------------------------------------------------


def self_signed_pem() -> tuple[bytes, bytes]:
    """(key PEM, cert PEM) for `localhost` and 127.0.0.1, made fresh for the test run."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


_PEM: tuple[bytes, bytes] | None = None


def tls_material() -> tuple[Any, Any]:
    """(server `CertificateOptions`, client trust root) sharing one self-signed cert."""
    global _PEM
    if _PEM is None:
        _PEM = self_signed_pem()
    key_pem, cert_pem = _PEM
    server = ssl.PrivateCertificate.loadPEM(key_pem + cert_pem).options()
    return server, ssl.Certificate.loadPEM(cert_pem)


def other_trust_root() -> Any:
    """A trust root that did not sign the test server's certificate."""
    return ssl.Certificate.loadPEM(self_signed_pem()[1])


# -- the origin server ---------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the origin received it."""

    method: bytes
    uri: bytes
    headers: dict[bytes, list[bytes]]
    body: bytes
    peer_port: int
    gone: defer.Deferred = field(default_factory=defer.Deferred)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower().encode())
        return values[0].decode() if values else None

    def header_values(self, name: str) -> list[str]:
        return [v.decode() for v in self.headers.get(name.lower().encode(), [])]


Script = Callable[[Any, Seen], Any]


def reply(status: int = 200, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Script:
    """A script answering `status` with `body` in one piece."""

    def script(request: Any, seen: Seen) -> bytes:
        request.setResponseCode(status)
        for k, v in (headers or {}).items():
            request.setHeader(k.encode(), v.encode())
        return body

    return script


class _Origin(Resource):
    isLeaf = True

    def __init__(self, server: Origin) -> None:
        super().__init__()
        self.server = server

    def render(self, request: Any) -> Any:
        seen = Seen(
            method=request.method,
            uri=request.uri,
            headers={k.lower(): list(v) for k, v in request.requestHeaders.getAllRawHeaders()},
            body=request.content.read(),
            peer_port=request.getClientAddress().port,
        )

        def lost(reason: Any) -> None:
            if not seen.gone.called:
                seen.gone.callback(None)

        request.notifyFinish().addBoth(lost)
        self.server.seen.append(seen)
        waiter, self.server._waiter = self.server._waiter, None
        if waiter is not None:
            waiter.callback(seen)
        script = self.server.scripts.get(request.path, self.server.default)
        return script(request, seen)


class Origin:
    """A scripted HTTP(S) origin on 127.0.0.1: `scripts[path] = script(request, seen)`."""

    def __init__(self, tls: bool = False) -> None:
        self.tls = tls
        self.seen: list[Seen] = []
        self.scripts: dict[bytes, Script] = {}
        self.default: Script = reply()
        self._waiter: defer.Deferred | None = None
        self.port: Any = None

    def listen(self) -> Origin:
        site = Site(_Origin(self))
        site.displayTracebacks = False
        if self.tls:
            options, _ = tls_material()
            self.port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
        else:
            self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port.getHost().port}"

    def next_request(self) -> defer.Deferred:
        """Fires with the next `Seen` when it arrives."""
        self._waiter = defer.Deferred()
        return self._waiter

    def stop(self) -> defer.Deferred:
        return defer.maybeDeferred(self.port.stopListening)


def stream_then(chunks: list[bytes], then: str, status: int = 200, headers=None) -> Script:
    """Write `chunks` now, then `"hang"` (stay open), `"reset"` (TCP RST once the chunks
    are out), `"close"` (FIN without the chunked terminator), or `"finish"`."""

    def script(request: Any, seen: Seen) -> Any:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/event-stream")
        for k, v in (headers or {}).items():
            request.setHeader(k.encode(), v.encode())
        for c in chunks:
            request.write(c)
        if then == "reset":
            # linger 0: close() after the buffer drains sends RST instead of FIN
            sock = request.transport.getHandle()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.transport.loseConnection()
        elif then == "close":
            request.transport.loseConnection()
        elif then == "finish":
            request.finish()
        return NOT_DONE_YET

    return script


def never_answer(request: Any, seen: Seen) -> Any:
    return NOT_DONE_YET


# -- splicing two connections --------------------------------------------------------------


class _Outbound(protocol.Protocol):
    def __init__(self, inbound: Any, first: bytes) -> None:
        self.inbound = inbound
        self.first = first

    def connectionMade(self) -> None:
        self.inbound.outbound = self
        first, self.inbound._pending = self.first + self.inbound._pending, b""
        if first:
            self.transport.write(first)
        self.inbound.target_connected()

    def dataReceived(self, data: bytes) -> None:
        self.inbound.transport.write(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.inbound.transport.loseConnection()


class _Splicing(protocol.Protocol):
    """Base for proxies: after `splice(host, port)` bytes flow both ways untouched."""

    outbound: _Outbound | None = None
    _pending = b""

    def splice(self, host: str, port: int, first: bytes = b"") -> defer.Deferred:
        cc = protocol.ClientCreator(reactor, _Outbound, self, first)
        d = cc.connectTCP(host, port)
        d.addErrback(self.connect_failed)
        return d

    def connect_failed(self, failure: Any) -> None:
        self.transport.loseConnection()

    def target_connected(self) -> None:
        pass

    def forward(self, data: bytes) -> None:
        if self.outbound is not None:
            self.outbound.transport.write(data)
        else:  # the target is still connecting
            self._pending += data

    def connectionLost(self, reason: Any = None) -> None:
        if self.outbound is not None:
            self.outbound.transport.loseConnection()


# -- HTTP proxy ----------------------------------------------------------------------------


@dataclass
class ProxyLog:
    """What a proxy saw: request heads (CONNECT or absolute-form), and SOCKS targets."""

    heads: list[bytes] = field(default_factory=list)
    targets: list[tuple[int, str, int]] = field(default_factory=list)
    auth: list[tuple[str, str]] = field(default_factory=list)
    connections: int = 0


class _HTTPProxy(_Splicing):
    def __init__(self, log: ProxyLog, answer: bytes | None, host_map: dict[str, str]) -> None:
        self.host_map = host_map
        self.log = log
        self.answer = answer  # a canned refusal for CONNECT, e.g. 407
        self.buf = b""
        self.tunnel = False

    def connectionMade(self) -> None:
        self.log.connections += 1

    def dataReceived(self, data: bytes) -> None:
        if self.tunnel:
            self.forward(data)
            return
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = self.buf[:end], self.buf[end + 4 :]
        self.buf = b""
        self.tunnel = True
        self.log.heads.append(head)
        line, _, header_block = head.partition(b"\r\n")
        method, target, version = line.split(b" ")
        if method == b"CONNECT":
            if self.answer is not None:
                self.transport.write(self.answer)
                self.transport.loseConnection()
                return
            host, _, port = target.decode().rpartition(":")
            host = host.strip("[]")
            self._after_connect = b"HTTP/1.1 200 Connection established\r\n\r\n"
            self.splice(self.host_map.get(host, host), int(port), rest)
            return
        # absolute-form: rewrite to origin-form for the origin and pass the rest through
        scheme, _, after = target.partition(b"://")
        authority, slash, path = after.partition(b"/")
        host, _, port = authority.decode().rpartition(":")
        kept = [
            h
            for h in header_block.split(b"\r\n")
            if not h.lower().startswith(b"proxy-authorization:")
        ]
        new_head = b" ".join([method, slash + path, version]) + b"\r\n" + b"\r\n".join(kept)
        self._after_connect = b""
        host = self.host_map.get(host, host)
        self.splice(host, int(port or 80), new_head + b"\r\n\r\n" + rest)

    def target_connected(self) -> None:
        if self._after_connect:
            self.transport.write(self._after_connect)


class HTTPProxy:
    """An HTTP proxy on 127.0.0.1 (TLS-speaking itself when `tls`)."""

    def __init__(
        self,
        tls: bool = False,
        refuse_with: bytes | None = None,
        host_map: dict[str, str] | None = None,
    ) -> None:
        self.tls = tls
        self.host_map = host_map or {}
        self.log = ProxyLog()
        self.refuse_with = refuse_with
        self.port: Any = None

    def listen(self) -> HTTPProxy:
        factory = protocol.Factory.forProtocol(
            lambda: _HTTPProxy(self.log, self.refuse_with, self.host_map)
        )
        if self.tls:
            options, _ = tls_material()
            self.port = reactor.listenSSL(0, factory, options, interface="127.0.0.1")
        else:
            self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        return self

    def url(self, userinfo: str = "") -> str:
        scheme = "https" if self.tls else "http"
        at = userinfo + "@" if userinfo else ""
        return f"{scheme}://{at}127.0.0.1:{self.port.getHost().port}"

    def stop(self) -> defer.Deferred:
        return defer.maybeDeferred(self.port.stopListening)


# -- SOCKS5 --------------------------------------------------------------------------------


class _Socks5(_Splicing):
    def __init__(self, server: Socks5Server) -> None:
        self.server = server
        self.buf = b""
        self.state = "greeting"

    def connectionMade(self) -> None:
        self.server.log.connections += 1

    def dataReceived(self, data: bytes) -> None:
        if self.state == "open":
            self.forward(data)
            return
        self.buf += data
        while self.step():
            pass

    def step(self) -> bool:
        b = self.buf
        if self.state == "greeting":
            if len(b) < 2 or len(b) < 2 + b[1]:
                return False
            methods = b[2 : 2 + b[1]]
            self.buf = b[2 + b[1] :]
            want = 2 if self.server.credentials else 0
            if want not in methods:
                self.transport.write(b"\x05\xff")
                self.transport.loseConnection()
                return False
            self.transport.write(bytes([5, want]))
            self.state = "auth" if want == 2 else "request"
            return True
        if self.state == "auth":
            if len(b) < 2 or len(b) < 2 + b[1] + 1:
                return False
            ulen = b[1]
            plen = b[2 + ulen]
            if len(b) < 3 + ulen + plen:
                return False
            user = b[2 : 2 + ulen].decode()
            password = b[3 + ulen : 3 + ulen + plen].decode()
            self.buf = b[3 + ulen + plen :]
            self.server.log.auth.append((user, password))
            if (user, password) != self.server.credentials:
                self.transport.write(b"\x01\x01")
                self.transport.loseConnection()
                return False
            self.transport.write(b"\x01\x00")
            self.state = "request"
            return True
        if self.state == "request":
            if len(b) < 5:
                return False
            atyp = b[3]
            if atyp == 1:
                size, host = 10, str(ipaddress.IPv4Address(b[4:8]))
            elif atyp == 4:
                if len(b) < 22:
                    return False
                size, host = 22, str(ipaddress.IPv6Address(b[4:20]))
            else:
                size = 7 + b[4]
                if len(b) < size:
                    return False
                host = b[5 : 5 + b[4]].decode()
            if len(b) < size:
                return False
            (port,) = struct.unpack("!H", b[size - 2 : size])
            rest = b[size:]
            self.buf = b""
            self.server.log.targets.append((atyp, host, port))
            if self.server.reply_code:
                self.transport.write(bytes([5, self.server.reply_code, 0, 1]) + bytes(6))
                self.transport.loseConnection()
                return False
            self.state = "open"
            self.splice(host, port, rest)
            return False
        return False

    def target_connected(self) -> None:
        self.transport.write(b"\x05\x00\x00\x01" + bytes([127, 0, 0, 1]) + b"\x00\x00")


class Socks5Server:
    """A SOCKS5 server on 127.0.0.1; `credentials=(user, password)` requires RFC 1929 auth."""

    def __init__(self, credentials: tuple[str, str] | None = None, reply_code: int = 0) -> None:
        self.credentials = credentials
        self.reply_code = reply_code
        self.log = ProxyLog()
        self.port: Any = None

    def listen(self) -> Socks5Server:
        factory = protocol.Factory.forProtocol(lambda: _Socks5(self))
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        return self

    def url(self, scheme: str = "socks5", userinfo: str = "") -> str:
        at = userinfo + "@" if userinfo else ""
        return f"{scheme}://{at}127.0.0.1:{self.port.getHost().port}"

    def stop(self) -> defer.Deferred:
        return defer.maybeDeferred(self.port.stopListening)
