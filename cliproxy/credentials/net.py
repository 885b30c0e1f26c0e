# -*- test-case-name: tests.oauth.test_tokens -*-
"""The network seams credentials and upstream share: the reactor they need, the HTTP
client they call, and the transport a response body is read from.

Both are defined here, in the lower of the two rooms, so `upstream/` can import them
without `credentials/` ever importing `upstream/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Protocol, cast

from twisted.internet import protocol as twisted_protocol
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer, IReactorCore, IReactorTCP, IReactorTime
from twisted.web.iweb import IResponse

__all__ = ["HTTPRequester", "IClientReactor", "body_transport"]


class IClientReactor(IReactorTCP, IReactorTime, IReactorCore):
    """What our network code asks of a reactor: TCP connections (and listening, for the
    login callback), timers, and name resolution (`resolve`, for socks5 local DNS).

    No reactor declares this interface: it is a static type only (an intersection, as
    Synapse's `ISynapseReactor`). The real reactor and `MemoryReactorClock` provide
    every method it lists.
    """


class HTTPRequester(Protocol):
    """The HTTP client token endpoints, Google APIs and executors are called through:
    `cliproxy.upstream.http.UpstreamHTTP`, or a fake in tests."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | IO[bytes] = b"",
        proxy_url: str | None = None,
        timeout_headers: float | None = None,
    ) -> Deferred[IResponse]: ...


def body_transport(protocol: twisted_protocol.Protocol) -> IPushProducer | None:
    """The transport `IResponse.deliverBody` gave `protocol` (None before it started).

    Twisted documents it as an `IPushProducer` (pause, resume or stop the body), which
    the type of `Protocol.transport` does not say.
    """
    return cast("IPushProducer | None", protocol.transport)
