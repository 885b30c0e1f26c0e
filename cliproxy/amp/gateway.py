# -*- test-case-name: tests.amp.test_gateway -*-
"""WebSocket pass-through for newer Amp releases (`/actors/gateway/...`).

From about September 2026 Amp runs its agent loop on Amp's servers: the CLI calls
`POST /api/thread-actors` (an ordinary proxied route) and then opens a WebSocket on
`/actors/gateway/...`. cliproxy cannot serve that itself; it forwards the upgrade to the
Amp upstream (TLS when the upstream is https, through `proxy-url` if set) and, once the
upstream answers `101 Switching Protocols`, takes the client connection away from
twisted.web and splices the two sockets into a byte tunnel, each side registered as the
other's producer so neither direction can outrun a slow reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from twisted.web.client import URI, BrowserLikePolicyForHTTPS
from twisted.web.server import NOT_DONE_YET, Request

from cliproxy.amp.headers import strip_client_key, upstream_headers
from cliproxy.amp.upstream import TIMED_OUT, UNREACHABLE, request_target
from cliproxy.twisted_compat import pipelined_bytes
from cliproxy.upstream.proxy import DIRECT_VALUES, parse_proxy_url, proxy_from_environment
from cliproxy.upstream.tunnel import UpstreamEndpointFactory
from cliproxy.web.errors import json_bytes
from cliproxy.web.proxy import HOP_BY_HOP
from cliproxy.web.state import client_gone, state_of

log = Logger()

#: the upstream's answer head may not be larger than this
MAX_HEAD = 64 * 1024
#: a refusal's body is relayed up to this size
MAX_REFUSAL_BODY = 1024 * 1024


def wants_upgrade(request: Request) -> bool:
    upgrade = (request.getHeader(b"upgrade") or b"").lower()
    connection = (request.getHeader(b"connection") or b"").lower()
    return upgrade == b"websocket" and b"upgrade" in connection


def parse_head(head: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """(status, reason, headers) of an HTTP/1.1 response head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise ValueError("not an HTTP response")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else b""
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return status, reason, headers


def dechunk(data: bytes) -> bytes | None:
    """A complete chunked body decoded, or None while it is incomplete."""
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        try:
            size = int(data[pos:end].split(b";")[0], 16)
        except ValueError:
            return b"".join(out)
        pos = end + 2
        if size == 0:
            return b"".join(out)
        if len(data) < pos + size + 2:
            return None
        out.append(data[pos : pos + size])
        pos += size + 2


class _UpstreamSide(Protocol):
    transport: Any

    def __init__(self, tunnel: GatewayTunnel) -> None:
        self.tunnel = tunnel
        self.buf = b""

    def connectionMade(self) -> None:
        self.tunnel.upstream_connected(self)

    def dataReceived(self, data: bytes) -> None:
        self.tunnel.from_upstream(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.tunnel.upstream_lost(reason)


class _ClientSide(Protocol):
    """Owns the client's socket after the 101."""

    def __init__(self, tunnel: GatewayTunnel) -> None:
        self.tunnel = tunnel

    def dataReceived(self, data: bytes) -> None:
        self.tunnel.from_client(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.tunnel.client_lost()


class _OneShot(Factory):
    def __init__(self, proto: Protocol) -> None:
        self.proto = proto

    def buildProtocol(self, addr: Any) -> Protocol:
        return self.proto


class GatewayTunnel:
    """One WebSocket upgrade: handshake through the upstream, then a byte tunnel."""

    def __init__(self, module: Any, request: Request, url: str, head: bytes) -> None:
        self.module = module
        self.request = request
        self.url = url
        self.head = head
        self.state = "connecting"  # -> handshake -> open | refused | closed
        self.upstream: _UpstreamSide | None = None
        self.client: Any = None
        self._connecting: defer.Deferred[Any] | None = None
        self._timer: Any = None
        self._refusal: dict[str, Any] = {}
        self.sent_up = 0
        self.sent_down = 0

    # -- starting ------------------------------------------------------------------------

    def start(self, endpoint: Any, timeout: float | None) -> None:
        reactor = self.module.core.reactor
        if timeout:
            self._timer = reactor.callLater(timeout, self._timed_out)
        self.request.notifyFinish().addErrback(self._left_early)
        d = endpoint.connect(_OneShot(_UpstreamSide(self)))
        self._connecting = d
        d.addCallbacks(self._connected, self._connect_failed)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.state in ("connecting", "handshake"):
            log.warn("Amp gateway {url}: no answer to the upgrade in time", url=self.url)
            self._abort_upstream()
            self._answer(504, json_bytes(TIMED_OUT))

    def _left_early(self, _: Failure) -> None:
        if self.state in ("connecting", "handshake", "refused"):
            self.state = "closed"
            self._cancel_timer()
            self._abort_upstream()

    def _abort_upstream(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.abortConnection()

    def _connected(self, proto: Any) -> Any:
        self._connecting = None
        return proto

    def _connect_failed(self, failure: Failure) -> None:
        self._connecting = None
        if self.state != "connecting":
            return
        self._cancel_timer()
        if failure.check(defer.CancelledError):
            return
        log.warn(
            "Amp gateway {url} unreachable: {why}", url=self.url, why=failure.getErrorMessage()
        )
        self._answer(502, json_bytes(UNREACHABLE))

    def _answer(
        self, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        self.state = "closed"
        request = self.request
        if client_gone(request):
            return
        request.setResponseCode(status)
        for name, value in headers:
            request.responseHeaders.addRawHeader(name, value)
        if not request.responseHeaders.hasHeader(b"content-type"):
            request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    # -- upstream side -------------------------------------------------------------------

    def upstream_connected(self, side: _UpstreamSide) -> None:
        self.upstream = side
        if self.state != "connecting":
            side.transport.abortConnection()
            return
        self.state = "handshake"
        side.transport.write(self.head)

    def from_upstream(self, data: bytes) -> None:
        if self.state == "open":
            self.sent_down += len(data)
            self.client.write(data)
            return
        if self.state == "refused":
            self._refusal_data(data)
            return
        if self.state != "handshake":
            return
        assert self.upstream is not None
        buf = self.upstream.buf = self.upstream.buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._bad_upstream("response head too large")
            return
        head, rest = buf[: end + 4], buf[end + 4 :]
        self.upstream.buf = b""
        try:
            status, reason, headers = parse_head(head[:-4])
        except ValueError:
            self._bad_upstream("not an HTTP response")
            return
        self._cancel_timer()
        if status == 101:
            self._switch(head, rest)
        else:
            self._refused(status, reason, headers, rest)

    def _bad_upstream(self, why: str) -> None:
        log.warn("Amp gateway {url}: {why}", url=self.url, why=why)
        self._cancel_timer()
        self._abort_upstream()
        self._answer(502, json_bytes(UNREACHABLE))

    def upstream_lost(self, reason: Failure | None) -> None:
        self._cancel_timer()
        if self.state == "open":
            self.state = "closed"
            if self.client is not None:
                self.client.loseConnection()
        elif self.state == "refused":
            self._refusal_done()
        elif self.state == "handshake":
            self._answer(502, json_bytes(UNREACHABLE))

    # -- a refusal (401, 426, ...) is relayed as an ordinary answer ------------------------

    def _refused(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], rest: bytes
    ) -> None:
        self.state = "refused"
        length = None
        chunked = False
        kept = []
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif lower == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lower not in HOP_BY_HOP:
                kept.append((name, value))
        self._refusal = {
            "status": status,
            "headers": kept,
            "length": length,
            "chunked": chunked,
            "body": b"",
        }
        self._refusal_data(rest)

    def _refusal_data(self, data: bytes) -> None:
        r = self._refusal
        r["body"] += data
        body = r["body"]
        if r["length"] is not None and len(body) >= r["length"]:
            r["body"] = body[: r["length"]]
            self._refusal_done()
        elif r["chunked"] and dechunk(body) is not None:
            r["body"] = dechunk(body)
            r["chunked"] = False
            self._refusal_done()
        elif len(body) > MAX_REFUSAL_BODY:
            r["body"] = body[:MAX_REFUSAL_BODY]
            self._refusal_done()

    def _refusal_done(self) -> None:
        if self.state != "refused":
            return
        r = self._refusal
        body = r["body"]
        if r["chunked"]:
            body = dechunk(body) or b""
        log.info(
            "Amp gateway {url}: upstream refused the upgrade ({status})",
            url=self.url,
            status=r["status"],
        )
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.loseConnection()
        self._answer(r["status"], body, r["headers"])

    # -- the tunnel ------------------------------------------------------------------------

    def _switch(self, head: bytes, rest: bytes) -> None:
        request = self.request
        if client_gone(request) or request.channel is None:
            self.state = "closed"
            self._abort_upstream()
            return
        assert self.upstream is not None
        channel = request.channel
        client: Any = channel.transport
        # twisted.web lets go of the connection: no timeouts, no producer, no parser
        channel.setTimeout(None)
        client.unregisterProducer()
        pending = pipelined_bytes(channel)
        side = _ClientSide(self)
        if isinstance(client, ProtocolWrapper):
            client.wrappedProtocol = side
        else:
            client.protocol = side
        Protocol.makeConnection(side, client)
        self.client = client
        self.state = "open"
        upstream = self.upstream.transport
        client.registerProducer(upstream, True)
        upstream.registerProducer(client, True)
        client.write(head + rest)
        self.sent_down += len(rest)
        if pending:
            self.from_client(pending)
        client.resumeProducing()
        self._forget_request(request, channel)
        log.info("Amp gateway tunnel open to {url}", url=self.url)

    def _forget_request(self, request: Request, channel: Any) -> None:
        """The request ends here as far as the site is concerned (its socket lives on)."""
        request.code = 101
        site = getattr(channel, "site", None)
        if site is None:
            return
        for hook, arg in (
            ("log", request),
            ("request_ended", request),
            ("channel_closed", channel),
        ):
            fn = getattr(site, hook, None)
            if fn is not None:
                try:
                    fn(arg)
                except Exception:
                    log.failure("site bookkeeping for a tunnelled request")

    def from_client(self, data: bytes) -> None:
        if self.state == "open" and self.upstream is not None and self.upstream.transport:
            self.sent_up += len(data)
            self.upstream.transport.write(data)

    def client_lost(self) -> None:
        if self.state == "open":
            self.state = "closed"
            if self.upstream is not None and self.upstream.transport is not None:
                self.upstream.transport.loseConnection()
            log.info(
                "Amp gateway tunnel closed ({up}B up, {down}B down)",
                up=self.sent_up,
                down=self.sent_down,
            )


class AmpGateway:
    """Builds the upstream handshake for a client's upgrade request and starts a tunnel."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def tls_policy(self) -> Any:
        return self.module.tls_policy or BrowserLikePolicyForHTTPS()

    def _proxy_spec(self, scheme: str, host: str, port: int) -> Any:
        setting = (self.module.core.config.proxy_url or "").strip()
        if setting.lower() in DIRECT_VALUES:
            return None
        if not setting:
            setting = proxy_from_environment(scheme, host, port, self.module.environ) or ""
        return parse_proxy_url(setting) if setting else None

    def upgrade(self, request: Request) -> int:
        module = self.module
        path, query = request_target(request)
        client_key = state_of(request).client_key
        query = strip_client_key(query, client_key, module.core.config.api_keys)
        base = module.upstream_url
        url = base + path + ("?" + query.decode("latin-1") if query else "")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname or ""
        secret = module.upstream_secret(client_key) if state_of(request).inject_upstream_key else ""
        headers = upstream_headers(request.requestHeaders, secret, keep=frozenset({b"upgrade"}))
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}", "Connection: Upgrade"]
        for name, values in headers.items():
            for value in values:
                lines.append(f"{name}: {value}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        config = module.core.config
        try:
            factory = UpstreamEndpointFactory(
                module.core.reactor,
                self._proxy_spec(scheme, host, port),
                self.tls_policy(),
                config.upstream_timeouts.connect_seconds,
            )
            endpoint = factory.endpointForURI(URI.fromBytes(url.encode("ascii")))
        except Exception as e:
            log.warn("Amp gateway: cannot reach {url}: {e}", url=base + path, e=e)
            request.setResponseCode(502)
            request.setHeader(b"content-type", b"application/json")
            return json_bytes(UNREACHABLE)  # type: ignore[return-value]
        # logs name the upstream path only: a query may carry a client's token
        tunnel = GatewayTunnel(module, request, base + path, head)
        tunnel.start(endpoint, config.upstream_timeouts.headers_seconds)
        return NOT_DONE_YET
