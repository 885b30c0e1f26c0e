"""The client's cliproxy key never leaves cliproxy on Amp's proxied routes, and the logs
show paths without query strings (real sockets, a fake Amp upstream)."""

from __future__ import annotations

import json

import pytest_twisted
from twisted.logger import capturedLogs

from tests.amp.kit import UPSTREAM_KEY, amp_block, messages, raw_connect
from tests.fakes import FakeAmp
from tests.fakes.server import wait_until
from tests.security.kit import http_request, one, port_of
from tests.serving_kit import CLIENT_KEY, config_text

WS = "/actors/gateway/threadActor/websocket/?rvt-key=T-1&key={k}&auth_token={k}"


def leaked(rec) -> bool:
    return CLIENT_KEY in rec.uri.decode("latin-1") or CLIENT_KEY in json.dumps(rec.headers)


@pytest_twisted.ensureDeferred
async def test_the_client_key_in_the_query_never_reaches_amp(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(config_text(amp_block(amp.url)))
    port = port_of(proxy)
    with capturedLogs() as events:
        for path in ("/api/user", "/threads", "/docs/x", "/settings", "/auth/cli-login"):
            for name in ("key", "auth_token"):
                target = f"{path}?{name}={CLIENT_KEY}&keep=1"
                headers = {"x-api-key": CLIENT_KEY, "x-goog-api-key": CLIENT_KEY}
                a = await one(port, http_request("GET", target, headers))
                assert a.status == 200, target
                rec = amp.last
                assert not leaked(rec), target
                assert rec.arg("keep") == "1"
                assert rec.header("x-api-key") == UPSTREAM_KEY
    assert not any(CLIENT_KEY in line for line in messages(events))


@pytest_twisted.ensureDeferred
async def test_the_websocket_gateway_strips_keys_and_logs_no_query(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(config_text(amp_block(amp.url)))
    client = await raw_connect(port_of(proxy))
    upgrade = (
        f"GET {WS.format(k=CLIENT_KEY)} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\r\n"
    )
    with capturedLogs() as events:
        client.transport.write(upgrade.encode())
        await wait_until(lambda: b"\r\n\r\n" in client.data, 3)
        assert client.data.startswith(b"HTTP/1.1 101")
        rec = amp.last
        assert not leaked(rec)
        assert rec.arg("rvt-key") == "T-1"
        client.transport.loseConnection()
        await wait_until(lambda: rec.outcome is not None, 3)
    lines = messages(events)
    assert any("gateway" in line for line in lines)
    assert not any(CLIENT_KEY in line or "rvt-key" in line for line in lines)
