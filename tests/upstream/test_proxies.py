"""Sending through each proxy kind over loopback: HTTP (absolute-form and CONNECT),
HTTPS proxies, SOCKS5 and SOCKS5h, with and without credentials, to plain and TLS origins."""

from __future__ import annotations

import base64

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from cliproxy.upstream.body import read_body
from cliproxy.upstream.handshakes import ProxyError
from cliproxy.upstream.http import UpstreamHTTP
from tests.upstream.servers import (
    ClockedReactor,
    HTTPProxy,
    Origin,
    SilentServer,
    Socks5Server,
    other_trust_root,
    reply,
    tls_material,
)


async def _running(*servers):
    return [s.listen() for s in servers]


async def _stop(http, *servers):
    await http.close()
    for s in servers:
        await s.stop()


def _client(trust_root=None):
    if trust_root is None:
        _, trust_root = tls_material()
    # environ={} so a proxy set in the test machine's environment never interferes
    return UpstreamHTTP(reactor, trust_root=trust_root, environ={}, connect_timeout=5)


async def _post(http, url, proxy_url, body=b'{"q":1}'):
    response = await http.request(
        "POST",
        url,
        headers={"Content-Type": "application/json", "X-Test": "yes"},
        body=body,
        proxy_url=proxy_url,
        timeout_headers=10,
    )
    return response.code, await read_body(response, 1 << 20)


@pytest_twisted.ensureDeferred
async def test_http_proxy_forwards_plain_http_in_absolute_form_with_basic_auth():
    origin = Origin()
    origin.scripts[b"/v1/chat/completions"] = reply(200, b'{"ok":true}')
    proxy = HTTPProxy()
    await _running(origin, proxy)
    http = _client()
    try:
        url = origin.url + "/v1/chat/completions"
        code, body = await _post(http, url, proxy.url("al%40ice:s3cr%3At"))
        assert (code, body) == (200, b'{"ok":true}')
        head = proxy.log.heads[0]
        assert head.startswith(b"POST " + url.encode() + b" HTTP/1.1\r\n")
        expected = b"Basic " + base64.b64encode(b"al@ice:s3cr:t")
        assert b"Proxy-Authorization: " + expected in head
        # the origin got the request, without the proxy's credential
        seen = origin.seen[0]
        assert seen.uri == b"/v1/chat/completions"
        assert seen.body == b'{"q":1}'
        assert seen.header("x-test") == "yes"
        assert seen.header("proxy-authorization") is None
    finally:
        await _stop(http, origin, proxy)


@pytest_twisted.ensureDeferred
async def test_http_proxy_tunnels_https_with_connect_and_verifies_the_origin():
    origin = Origin(tls=True)
    origin.scripts[b"/v1/messages"] = reply(200, b'{"type":"message"}')
    proxy = HTTPProxy()
    await _running(origin, proxy)
    http = _client()
    try:
        code, body = await _post(http, origin.url + "/v1/messages", proxy.url("u:p"))
        assert (code, body) == (200, b'{"type":"message"}')
        port = origin.port.getHost().port
        head = proxy.log.heads[0]
        assert head.startswith(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n" % port)
        assert b"Proxy-Authorization: Basic " + base64.b64encode(b"u:p") in head
        assert origin.seen[0].body == b'{"q":1}'
        # a second request reuses the pooled tunnel: no new proxy connection
        code, _ = await _post(http, origin.url + "/v1/messages", proxy.url("u:p"))
        assert code == 200
        assert proxy.log.connections == 1
        assert origin.seen[0].peer_port == origin.seen[1].peer_port
    finally:
        await _stop(http, origin, proxy)


@pytest_twisted.ensureDeferred
async def test_https_proxy_speaks_tls_to_the_proxy_itself():
    origin = Origin()
    proxy = HTTPProxy(tls=True)
    await _running(origin, proxy)
    http = _client()
    try:
        code, body = await _post(http, origin.url + "/x", proxy.url())
        assert (code, body) == (200, b"{}")
        assert proxy.log.heads[0].startswith(b"POST http://127.0.0.1:")
    finally:
        await _stop(http, origin, proxy)


@pytest_twisted.ensureDeferred
async def test_https_proxy_tunnels_tls_inside_tls():
    origin = Origin(tls=True)
    proxy = HTTPProxy(tls=True)
    await _running(origin, proxy)
    http = _client()
    try:
        code, body = await _post(http, origin.url + "/deep", proxy.url("a:b"))
        assert (code, body) == (200, b"{}")
        assert proxy.log.heads[0].startswith(b"CONNECT 127.0.0.1:")
        assert origin.seen[0].uri == b"/deep"
    finally:
        await _stop(http, origin, proxy)


@pytest_twisted.ensureDeferred
async def test_proxy_refusing_connect_fails_with_its_status_and_no_password():
    origin = Origin(tls=True)
    proxy = HTTPProxy(refuse_with=b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
    await _running(origin, proxy)
    http = _client()
    try:
        with pytest.raises(ProxyError) as e:
            await _post(http, origin.url + "/v1/messages", proxy.url("bob:hunter2"))
        assert "407" in str(e.value)
        assert "hunter2" not in str(e.value)
        assert origin.seen == []
    finally:
        await _stop(http, origin, proxy)


@pytest_twisted.ensureDeferred
async def test_socks5_without_auth_reaches_a_plain_origin():
    origin = Origin()
    socks = Socks5Server()
    await _running(origin, socks)
    http = _client()
    try:
        code, body = await _post(http, origin.url + "/p", socks.url("socks5"))
        assert (code, body) == (200, b"{}")
        port = origin.port.getHost().port
        assert socks.log.targets == [(1, "127.0.0.1", port)]
        assert socks.log.auth == []
    finally:
        await _stop(http, origin, socks)


@pytest_twisted.ensureDeferred
async def test_socks5h_sends_the_name_and_username_password():
    origin = Origin()
    socks = Socks5Server(credentials=("user", "pa ss"))
    await _running(origin, socks)
    http = _client()
    try:
        port = origin.port.getHost().port
        url = f"http://localhost:{port}/named"
        code, _ = await _post(http, url, socks.url("socks5h", "user:pa%20ss"))
        assert code == 200
        assert socks.log.targets == [(3, "localhost", port)]
        assert socks.log.auth == [("user", "pa ss")]
        assert origin.seen[0].uri == b"/named"
    finally:
        await _stop(http, origin, socks)


@pytest_twisted.ensureDeferred
async def test_socks5_resolves_names_locally():
    origin = Origin()
    socks = Socks5Server()
    await _running(origin, socks)
    http = _client()
    try:
        port = origin.port.getHost().port
        code, _ = await _post(http, f"http://localhost:{port}/local", socks.url("socks5"))
        assert code == 200
        atyp, host, seen_port = socks.log.targets[0]
        assert (atyp, seen_port) == (1, port)
        assert host.startswith("127.")
    finally:
        await _stop(http, origin, socks)


@pytest_twisted.ensureDeferred
async def test_socks5_tunnels_tls_to_the_origin():
    origin = Origin(tls=True)
    socks = Socks5Server(credentials=("u", "p"))
    await _running(origin, socks)
    http = _client()
    try:
        code, body = await _post(http, origin.url + "/tls", socks.url("socks5", "u:p"))
        assert (code, body) == (200, b"{}")
    finally:
        await _stop(http, origin, socks)


@pytest_twisted.ensureDeferred
async def test_socks5_wrong_password_is_a_clear_proxy_error():
    origin = Origin()
    socks = Socks5Server(credentials=("u", "right"))
    await _running(origin, socks)
    http = _client()
    try:
        with pytest.raises(ProxyError) as e:
            await _post(http, origin.url + "/p", socks.url("socks5", "u:wrong"))
        assert "rejected the username/password" in str(e.value)
        assert "wrong" not in str(e.value)
        assert origin.seen == []
    finally:
        await _stop(http, origin, socks)


@pytest_twisted.ensureDeferred
async def test_socks5_connect_refused_reply_names_the_reason():
    origin = Origin()
    socks = Socks5Server(reply_code=5)
    await _running(origin, socks)
    http = _client()
    try:
        with pytest.raises(ProxyError) as e:
            await _post(http, origin.url + "/p", socks.url("socks5"))
        assert "connection refused" in str(e.value)
    finally:
        await _stop(http, origin, socks)


@pytest_twisted.ensureDeferred
async def test_tls_origin_with_an_untrusted_certificate_is_refused():
    origin = Origin(tls=True)
    await _running(origin)
    http = _client(trust_root=other_trust_root())
    try:
        with pytest.raises(Exception) as e:
            await _post(http, origin.url + "/x", "direct")
        assert "certificate verify failed" in repr(e.value) or "SSL" in repr(e.value)
        assert origin.seen == []
    finally:
        await _stop(http, origin)


@pytest_twisted.ensureDeferred
async def test_environment_proxy_applies_to_remote_names_but_never_to_loopback():
    origin = Origin()
    proxy = HTTPProxy(host_map={"upstream.test": "127.0.0.1"})
    await _running(origin, proxy)
    port = origin.port.getHost().port
    http = UpstreamHTTP(reactor, environ={"HTTP_PROXY": proxy.url()}, connect_timeout=5)
    try:
        code, _ = await _post(http, f"http://upstream.test:{port}/env", "")
        assert code == 200
        assert proxy.log.heads[0].startswith(b"POST http://upstream.test:%d/env " % port)
        code, _ = await _post(http, f"http://127.0.0.1:{port}/loop", None)
        assert code == 200
        assert len(proxy.log.heads) == 1  # the loopback request went direct
        assert [s.uri for s in origin.seen] == [b"/env", b"/loop"]
    finally:
        await _stop(http, origin, proxy)


@pytest.mark.parametrize("scheme", ["http", "socks5h"])
@pytest_twisted.ensureDeferred
async def test_silent_proxy_fails_the_handshake_after_the_connect_timeout(scheme):
    dead = SilentServer()
    await _running(dead)
    clock = task.Clock()
    http = UpstreamHTTP(ClockedReactor(clock), environ={}, connect_timeout=7)
    try:
        d = http.request(
            "POST", "https://api.example/x", headers={}, body=b"{}", proxy_url=dead.url(scheme)
        )
        outcome = []
        d.addBoth(lambda r: outcome.append(r) or r)
        while not dead.connections:  # let the real reactor accept the connection
            await task.deferLater(reactor, 0, lambda: None)
        clock.advance(6.9)
        assert outcome == []
        clock.advance(0.2)
        with pytest.raises(ProxyError, match="handshake took longer than 7s"):
            await d
    finally:
        await _stop(http, dead)
