"""Newer Amp releases: `/api/thread-actors` and the WebSocket on `/actors/gateway/...`
pass through to the Amp upstream (plain and TLS), as a byte tunnel after the 101."""

from __future__ import annotations

import json

import pytest_twisted
from twisted.internet import reactor
from twisted.web.client import BrowserLikePolicyForHTTPS

from cliproxy.amp.gateway import dechunk, parse_head
from cliproxy.upstream.http import UpstreamHTTP
from tests.amp.kit import BEARER, UPSTREAM_KEY, amp_config, call, raw_connect
from tests.fakes import FakeAmp, Reply
from tests.fakes.server import wait_until, websocket_accept
from tests.serving_kit import CLIENT_KEY
from tests.upstream.servers import tls_material

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_PATH = "/actors/gateway/threadActor/websocket/?rvt-namespace=amp&rvt-key=T-fake-0001"


def upgrade_request(path: str = WS_PATH, headers: dict | None = None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1:8317",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {WS_KEY}",
        "Sec-WebSocket-Version: 13",
        "X-Forwarded-For: 10.9.8.7",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def tunnel_round_trip(proxy, amp, headers=None):
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.write(upgrade_request(headers=headers))
    await wait_until(lambda: b"\r\n\r\n" in client.data, 3)
    status, _, head = parse_head(client.data.split(b"\r\n\r\n", 1)[0])
    assert status == 101, client.data
    assert (b"sec-websocket-accept", websocket_accept(WS_KEY).encode()) in [
        (k.lower(), v) for k, v in head
    ]
    frame = b"\x81\x05hello" * 3
    client.data = b""
    client.transport.write(frame)
    await wait_until(lambda: client.data == frame, 3)
    rec = amp.last
    assert rec.upgraded and rec.tunnel_bytes == frame
    assert rec.uri.decode() == WS_PATH
    assert rec.header("x-forwarded-for") is None
    client.transport.loseConnection()
    await wait_until(lambda: rec.outcome is not None, 3)
    return rec


@pytest_twisted.ensureDeferred
async def test_thread_actors_then_websocket_tunnel(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    status, _, body = await call(
        "POST", proxy.url + "/api/thread-actors", headers=BEARER, json_body={"threadId": None}
    )
    actor = json.loads(body)
    assert status == 200 and actor["threadId"] == "T-fake-0001" and actor["wsToken"]
    rec = await tunnel_round_trip(proxy, amp, BEARER)
    assert rec.header("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert CLIENT_KEY not in json.dumps(rec.headers)
    assert proxy.site.active == set()  # the tunnelled request no longer counts as in flight


@pytest_twisted.ensureDeferred
async def test_websocket_tunnel_to_a_tls_upstream(start_proxy):
    server_opts, trust_root = tls_material()
    amp = FakeAmp()
    amp._port = reactor.listenSSL(0, amp._factory, server_opts, interface="127.0.0.1")
    http = UpstreamHTTP(reactor, trust_root=trust_root)
    try:
        proxy = start_proxy(amp_config(f"https://127.0.0.1:{amp.port}"))
        module = proxy.app.amp
        module.tls_policy = BrowserLikePolicyForHTTPS(trustRoot=trust_root)
        module.proxy.http = http
        status, _, body = await call(
            "POST", proxy.url + "/api/thread-actors", headers=BEARER, json_body={}
        )
        assert status == 200 and json.loads(body)["threadId"].startswith("T-fake")
        rec = await tunnel_round_trip(proxy, amp, BEARER)
        assert rec.header("x-api-key") == UPSTREAM_KEY
    finally:
        await http.close()
        await amp.stop()


@pytest_twisted.ensureDeferred
async def test_websocket_without_a_key_passes_without_ours_bad_key_refused(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    rec = await tunnel_round_trip(proxy, amp)
    assert rec.header("authorization") is None and rec.header("x-api-key") is None
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.write(upgrade_request(headers={"Authorization": "Bearer wrong"}))
    await wait_until(lambda: b"\r\n\r\n" in client.data, 3)
    assert client.data.startswith(b"HTTP/1.1 401")
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_refused_upgrade_and_plain_get_are_relayed(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    amp.script("GET", WS_PATH.split("?")[0], Reply(status=401, json={"error": "bad token"}))
    proxy = start_proxy(amp_config(amp.url))
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.write(upgrade_request(headers=BEARER))
    await wait_until(lambda: client.data.endswith(b'{"error":"bad token"}'), 3)
    assert client.data.startswith(b"HTTP/1.1 401")
    client.transport.loseConnection()
    status, _, body = await call("GET", proxy.url + WS_PATH, headers=BEARER)
    assert status == 426  # no Upgrade header: an ordinary proxied request


@pytest_twisted.ensureDeferred
async def test_unreachable_gateway_is_502(start_proxy):
    proxy = start_proxy(amp_config("http://127.0.0.1:1"))
    client = await raw_connect(proxy.port.getHost().port)
    client.transport.write(upgrade_request(headers=BEARER))
    await wait_until(lambda: b"amp_upstream_proxy_error" in client.data, 5)
    assert client.data.startswith(b"HTTP/1.1 502")
    client.transport.loseConnection()


def test_dechunk_and_parse_head():
    assert dechunk(b"5\r\nhello\r\n0\r\n\r\n") == b"hello"
    assert dechunk(b"5\r\nhel") is None
    status, reason, headers = parse_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket")
    assert (status, reason, headers) == (101, b"Switching Protocols", [(b"Upgrade", b"websocket")])
