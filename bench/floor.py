"""The floor: Twisted's stock `twisted.web.proxy.ReverseProxyResource` in front of the fake.

    python bench/floor.py PORT UPSTREAM_PORT

No keys, no routing, no translation, a new upstream connection per request: the least a
Twisted relay does, on the same Twisted cliproxy runs on (bench/compare.py).
"""

from __future__ import annotations

import sys

from twisted.internet import reactor
from twisted.web import proxy, server


def main() -> None:
    port, upstream = int(sys.argv[1]), int(sys.argv[2])
    site = server.Site(proxy.ReverseProxyResource("127.0.0.1", upstream, b""))
    site.log = lambda request: None  # no access log: the floor does the least
    reactor.listenTCP(port, site, backlog=1024, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
