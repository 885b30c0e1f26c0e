"""The treq floor: the least relay of cliproxy's own shape in front of the fake.

    python bench/floor_treq.py PORT UPSTREAM_PORT [--stock-jar]

A twisted.web Resource that sends each request on with treq's `HTTPClient` over a
persistent `HTTPConnectionPool` (HTTP/1.1 keep-alive, as cliproxy) and streams the answer
back with `treq.collect` (Deferred-based streaming: the project's fixed shape for talking to
providers). No keys, no routing, no translation, no usage, no metrics, no access log. Where
the stock floor (bench/floor.py: `ReverseProxyResource`, HTTP/1.0 upstream, a new
connection per request) measures what Twisted's own relay costs, this one measures what
the provider client cliproxy is built on costs before any of cliproxy's work.
"""

from __future__ import annotations

import sys
from http.cookiejar import CookieJar
from typing import Any

import treq
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers

#: not forwarded either way (RFC 9110 7.6.1), plus what the client layer sets itself
HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
}
#: set by the client layer itself on the way up
REQUEST_ONLY = {b"host", b"content-length"}


class NoCookies(CookieJar):
    """A jar that never holds, sends or takes a cookie (as cliproxy's): treq wraps every
    request in a CookieAgent on its jar, and the stdlib's cookie work per request and
    answer is not part of what a relay needs. `--stock-jar` keeps treq's default jar."""

    def add_cookie_header(self, request: Any) -> None:
        pass

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass


class Relay(resource.Resource):
    isLeaf = True

    def __init__(self, client: HTTPClient, base: str, jar: CookieJar | None) -> None:
        resource.Resource.__init__(self)
        self.client = client
        self.base = base
        self.jar = jar

    def render(self, request: server.Request) -> Any:
        headers = Headers()
        for name, values in request.requestHeaders.getAllRawHeaders():
            if name.lower() not in HOP and name.lower() not in REQUEST_ONLY:
                headers.setRawHeaders(name, values)
        assert request.content is not None and request.method is not None
        d = self.client.request(
            request.method.decode("ascii"),
            self.base + request.uri.decode("ascii"),
            headers=headers,
            data=request.content.read(),
            cookies=self.jar,  # a jar, not None: treq then builds no new jar per request
            allow_redirects=False,
            unbuffered=True,
        )

        def answer(response: Any) -> Any:
            request.setResponseCode(response.code)
            for name, values in response.headers.getAllRawHeaders():
                if name.lower() not in HOP:
                    request.responseHeaders.setRawHeaders(name, values)
            return treq.collect(response, request.write)

        def failed(failure: Failure) -> None:
            request.setResponseCode(502)

        d.addCallbacks(answer, failed)
        d.addBoth(lambda _: request.finish())
        return server.NOT_DONE_YET


def main() -> None:
    port, upstream = int(sys.argv[1]), int(sys.argv[2])
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 512
    jar = None if "--stock-jar" in sys.argv else NoCookies()
    client = HTTPClient(Agent(reactor, pool=pool), cookiejar=jar)
    site = server.Site(Relay(client, f"http://127.0.0.1:{upstream}", jar))
    site.log = lambda request: None  # type: ignore[method-assign]  # no access log
    reactor.listenTCP(port, site, backlog=1024, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
