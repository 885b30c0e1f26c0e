# -*- test-case-name: tests.upstream.test_proxies -*-
"""Client endpoints that reach a target through a proxy, for `Agent.usingEndpointFactory`.

Twisted's `ProxyAgent` only forwards plain-HTTP requests. For everything else
(`CONNECT` tunnels through HTTP(S) proxies, SOCKS5) `TunnelEndpoint` connects to the
proxy, runs a handshake from `handshakes.py`, and then hands the open tunnel to the
real protocol (HTTP/1.1, or TLS wrapping HTTP/1.1 for https:// targets).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.web.client import URI
from twisted.web.iweb import IAgentEndpointFactory, IPolicyForHTTPS
from zope.interface import implementer

from cliproxy.credentials.net import IClientReactor
from cliproxy.upstream.handshakes import HTTPConnectHandshake, ProxyError, Socks5Handshake
from cliproxy.upstream.proxy import ProxySpec

#: a proxy handshake: `start()` bytes, then `receive(data) -> (reply, leftover)`
Handshake = HTTPConnectHandshake | Socks5Handshake
#: makes a fresh handshake (a Deferred: a name may have to be resolved first)
HandshakeMaker = Callable[[], "defer.Deferred[Handshake]"]
#: Twisted's own connect timeout (TCP4ClientEndpoint, HostnameEndpoint), used when we set none
_TWISTED_CONNECT_TIMEOUT = 30.0


class _TunnelProtocol(Protocol):
    """Runs a handshake on the proxy connection, then becomes a pass-through.

    After the tunnel opens, every byte and the final `connectionLost` go to the inner
    protocol, which uses the proxy connection's transport as its own.
    """

    def __init__(
        self,
        handshake: Handshake,
        factory: IProtocolFactory,
        result: defer.Deferred[IProtocol],
        clock: IReactorTime,
        timeout: float | None,
    ) -> None:
        self._handshake = handshake
        self._factory = factory
        self._result = result
        self._clock = clock
        self._timeout = timeout
        self._timer: IDelayedCall | None = None
        self.inner: IProtocol | None = None

    def abort(self) -> None:
        """Drop the proxy connection now (a no-op before it exists)."""
        if self.transport is not None:
            # TCP and TLS transports both have ITCPTransport's abortConnection
            cast(ITCPTransport, self.transport).abortConnection()

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def connectionMade(self) -> None:
        if self._result.called:  # cancelled while the TCP connect was finishing
            self.abort()
            return
        if self._timeout is not None:
            self._timer = self._clock.callLater(self._timeout, self._timed_out)
        self._write(self._handshake.start())

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(ProxyError(f"proxy handshake took longer than {self._timeout:g}s"))

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _fail(self, error: Exception) -> None:
        self._stop_timer()
        if not self._result.called:
            self._result.errback(Failure(error))
        self.abort()

    def dataReceived(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.dataReceived(data)
            return
        if self._result.called:
            return
        try:
            reply, leftover = self._handshake.receive(data)
        except ProxyError as e:
            self._fail(e)
            return
        if reply:
            self._write(reply)
        if leftover is not None:
            self._open(leftover)

    def _open(self, leftover: bytes) -> None:
        self._stop_timer()
        assert self.transport is not None  # data arrived, so the connection exists
        inner = self._factory.buildProtocol(self.transport.getPeer())
        if inner is None:
            self._fail(ProxyError("connection refused by the protocol factory"))
            return
        self.inner = inner
        inner.makeConnection(self.transport)
        self._result.callback(inner)
        if leftover:
            inner.dataReceived(leftover)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._stop_timer()
        if self.inner is not None:
            self.inner.connectionLost(reason)
            return
        if not self._result.called:
            why = reason.getErrorMessage() if reason is not None else "closed"
            self._result.errback(
                Failure(ProxyError(f"proxy closed the connection during the handshake ({why})"))
            )


class _OneProtocolFactory(Factory):
    noisy = False

    def __init__(self, protocol: Protocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        self._protocol.factory = self
        return self._protocol


@implementer(IStreamClientEndpoint)
class TunnelEndpoint:
    """Connect to `proxy_endpoint`, run `make_handshake()`, then use the tunnel.

    Args:
        proxy_endpoint: how to reach the proxy itself (TCP, or TLS for https:// proxies).
        make_handshake: returns a Deferred of a fresh handshake (the target name may
            have to be resolved locally first).
        clock: `IReactorTime` for the handshake deadline.
        timeout: seconds the proxy may take to open the tunnel.
    """

    def __init__(
        self,
        proxy_endpoint: IStreamClientEndpoint,
        make_handshake: HandshakeMaker,
        clock: IReactorTime,
        timeout: float | None,
    ) -> None:
        self._proxy_endpoint = proxy_endpoint
        self._make_handshake = make_handshake
        self._clock = clock
        self._timeout = timeout

    def connect(self, protocolFactory: IProtocolFactory) -> defer.Deferred[IProtocol]:
        connecting: list[defer.Deferred[IProtocol]] = []
        protocols: list[_TunnelProtocol] = []

        def cancel(_: defer.Deferred[IProtocol]) -> None:
            # before the TCP connection exists, cancel the attempt; after, drop it
            if not start.called:
                start.cancel()
            for d in connecting:
                if not d.called:
                    d.cancel()
            for p in protocols:
                p.abort()

        result: defer.Deferred[IProtocol] = defer.Deferred(cancel)

        def with_handshake(handshake: Handshake) -> defer.Deferred[IProtocol]:
            proto = _TunnelProtocol(handshake, protocolFactory, result, self._clock, self._timeout)
            protocols.append(proto)
            d = self._proxy_endpoint.connect(_OneProtocolFactory(proto))
            connecting.append(d)
            return d

        start = defer.maybeDeferred(self._make_handshake)
        start.addCallback(with_handshake)

        def failed(f: Failure) -> None:
            if not result.called:
                result.errback(f)

        start.addErrback(failed)
        return result


def _tls_endpoint(
    policy: IPolicyForHTTPS, host: str, port: int, inner: IStreamClientEndpoint
) -> IStreamClientEndpoint:
    return wrapClientTLS(policy.creatorForNetloc(host.encode("idna"), port), inner)


#: direct endpoints kept per factory (upstream hosts are few; the cache is dropped past this)
_MAX_CACHED_ENDPOINTS = 256


@implementer(IAgentEndpointFactory)
class UpstreamEndpointFactory:
    """Endpoints for an `Agent`: direct, or through one proxy (CONNECT or SOCKS5).

    Args:
        reactor: provides `IReactorTCP`, `IReactorTime`, and `resolve` (socks5 local DNS).
        proxy: the proxy, or `None` for direct connections.
        tls_policy: `IPolicyForHTTPS` for https:// targets and https:// proxies.
        connect_timeout: seconds for each TCP connect and for the proxy handshake.
    """

    def __init__(
        self,
        reactor: IClientReactor,
        proxy: ProxySpec | None,
        tls_policy: IPolicyForHTTPS,
        connect_timeout: float | None,
    ) -> None:
        self._reactor = reactor
        self._proxy = proxy
        self._policy = IPolicyForHTTPS(tls_policy)
        self._timeout = connect_timeout
        #: direct endpoints by (scheme, host, port): the Agent asks for one on every
        #: request, even when a pooled connection will serve it, and they are reusable
        self._direct: dict[tuple[str, str, int], IStreamClientEndpoint] = {}

    def _tcp(self, host: str, port: int) -> IStreamClientEndpoint:
        timeout = _TWISTED_CONNECT_TIMEOUT if self._timeout is None else self._timeout
        # an IP literal needs no resolver (HostnameEndpoint would still hop to a thread)
        if isIPAddress(host):
            return TCP4ClientEndpoint(self._reactor, host, port, timeout=timeout)
        if isIPv6Address(host):
            return TCP6ClientEndpoint(self._reactor, host, port, timeout=timeout)
        return HostnameEndpoint(self._reactor, host, port, timeout=timeout)

    def proxy_endpoint(self) -> IStreamClientEndpoint:
        """The endpoint of the proxy itself (TLS-wrapped for https:// proxies)."""
        proxy = self._proxy
        assert proxy is not None
        ep = self._tcp(proxy.host, proxy.port)
        if proxy.scheme == "https":
            ep = _tls_endpoint(self._policy, proxy.host, proxy.port, ep)
        return ep

    def _handshake_maker(self, host: str, port: int) -> HandshakeMaker:
        proxy = self._proxy
        assert proxy is not None
        if proxy.scheme in ("http", "https"):
            return lambda: defer.succeed(
                HTTPConnectHandshake(host, port, proxy.username, proxy.password)
            )
        if proxy.remote_dns:
            return lambda: defer.succeed(
                Socks5Handshake(host, port, proxy.username, proxy.password)
            )

        def resolve_then_handshake() -> defer.Deferred[Handshake]:
            # socks5:// means the name is resolved here, not on the proxy
            d = defer.maybeDeferred(self._reactor.resolve, host)
            return d.addCallback(
                lambda address: Socks5Handshake(address, port, proxy.username, proxy.password)
            )

        return resolve_then_handshake

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        host = uri.host.decode("ascii") if isinstance(uri.host, bytes) else uri.host
        scheme = uri.scheme.decode("ascii") if isinstance(uri.scheme, bytes) else uri.scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported upstream scheme {scheme!r}")
        if self._proxy is None:
            key = (scheme, host, uri.port)
            ep = self._direct.get(key)
            if ep is None:
                ep = self._tcp(host, uri.port)
                if scheme == "https":
                    ep = _tls_endpoint(self._policy, host, uri.port, ep)
                if len(self._direct) >= _MAX_CACHED_ENDPOINTS:
                    self._direct.clear()
                self._direct[key] = ep
            return ep
        ep = TunnelEndpoint(
            self.proxy_endpoint(),
            self._handshake_maker(host, uri.port),
            self._reactor,
            self._timeout,
        )
        if scheme == "https":
            ep = _tls_endpoint(self._policy, host, uri.port, ep)
        return ep
