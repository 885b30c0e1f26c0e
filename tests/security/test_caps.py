"""Connection caps over real sockets: a flood bounded in count gets a clear 503 on each
connection past the cap, and clients are served again once the flood is gone."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from cliproxy.app import build_app
from cliproxy.config import parse_config
from tests.amp.kit import raw_connect
from tests.fakes.server import wait_until
from tests.security.kit import exchange, http_request, port_of
from tests.security.pacer import paced_site
from tests.serving_kit import CLIENT_KEY, config_text


@pytest_twisted.ensureDeferred
async def test_a_connection_flood_is_capped_and_the_server_recovers(start_proxy):
    proxy = start_proxy(config_text("limits:\n  max-connections: 20\n"))
    port = port_of(proxy)
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


@pytest_twisted.ensureDeferred
async def test_a_client_that_leaves_mid_stream_is_not_kept_as_active(tmp_path):
    """With error logs on (a logs directory exists), a client that leaves mid-stream is
    logged as 499 and forgotten: it does not stay among the site's active requests (which
    would also hold a shutdown for the whole grace period)."""
    paced_site_, paced = paced_site("sk-paced")
    upstream = reactor.listenTCP(0, paced_site_, interface="127.0.0.1")
    text = config_text(
        "openai-compatibility:\n  - name: paced\n"
        f"    base-url: http://127.0.0.1:{upstream.getHost().port}/v1\n"
        "    api-key-entries: [{api-key: sk-paced}]\n"
        "    models: [{name: gpt-paced, alias: gpt-paced}]\n"
        f"auth-dir: {tmp_path / 'auth'}\n"
    )
    app = build_app(parse_config(text), reactor, environ={"WRITABLE_PATH": str(tmp_path)})
    port = reactor.listenTCP(0, app.site, interface="127.0.0.1")
    try:
        client = await raw_connect(port.getHost().port)
        assert client.transport is not None
        body = b'{"model": "gpt-paced", "stream": true, "messages": []}'
        headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
        client.transport.write(http_request("POST", "/v1/chat/completions", headers, body))
        await paced.started
        await wait_until(lambda: b"tick 0" in client.data, 5)
        assert len(app.site.active) == 1
        client.transport.loseConnection()
        await wait_until(lambda: not app.site.active, 5)
        logs = list((tmp_path / "logs").iterdir())
        assert len(logs) == 1 and logs[0].name.startswith("error-")
    finally:
        await port.stopListening()
        await upstream.stopListening()
        await app.http.close()
