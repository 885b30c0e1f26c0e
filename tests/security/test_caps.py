"""Connection caps over real sockets: a flood bounded in count gets a clear 503 on each
connection past the cap, and clients are served again once the flood is gone."""

from __future__ import annotations

import time

import pytest_twisted

from tests.amp.kit import raw_connect
from tests.fakes.server import wait_until
from tests.security.kit import exchange, http_request, port_of
from tests.serving_kit import config_text


@pytest_twisted.ensureDeferred
async def test_a_connection_flood_is_capped_and_the_server_recovers(start_proxy):
    proxy = start_proxy(config_text("limits:\n  max-connections: 20\n"))
    port = port_of(proxy)
    started = time.monotonic()
    flood = [await raw_connect(port) for _ in range(60)]  # idle connections, never a request
    await wait_until(lambda: sum(1 for c in flood if c.closed.called) == 40, 5)
    refused = [c for c in flood if c.closed.called]
    assert len(proxy.site.channels) == 20
    assert all(c.data.startswith(b"HTTP/1.1 503") for c in refused)
    assert b"limits.max-connections" in refused[0].data
    assert b"retry-after: 1" in refused[0].data.lower()
    # the cap holds while the flood stays; once it leaves, clients are served
    [busy] = await exchange(port, http_request("GET", "/healthz", {}))
    assert busy.status == 503
    for c in flood:
        c.transport.loseConnection()
    await wait_until(lambda: not proxy.site.channels, 5)
    [ok] = await exchange(port, http_request("GET", "/healthz", {}))
    assert ok.status == 200
    assert time.monotonic() - started < 10


@pytest_twisted.ensureDeferred
async def test_the_per_peer_cap_refuses_one_peer_past_its_share(start_proxy):
    proxy = start_proxy(config_text("limits:\n  max-connections-per-peer: 3\n"))
    port = port_of(proxy)
    held = [await raw_connect(port) for _ in range(3)]
    [a] = await exchange(port, http_request("GET", "/healthz", {}))
    assert a.status == 503 and "per-peer" in a.json()["error"]["message"]
    held[0].transport.loseConnection()
    await wait_until(lambda: len(proxy.site.channels) == 2, 5)
    [b] = await exchange(port, http_request("GET", "/healthz", {}))
    assert b.status == 200
    for c in held[1:]:
        c.transport.loseConnection()
