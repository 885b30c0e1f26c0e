"""RTE-01..07, RTE-12: management routes, access control, path normalisation (amp.md §2.4)."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet.address import IPv4Address, UNIXAddress

from cliproxy.amp.access import is_loopback_peer
from cliproxy.amp.paths import classify, normalise
from tests.amp.kit import BEARER, amp_config, call, wire_answer
from tests.fakes import FakeAmp

RTE_01 = [
    ("GET", "/api/internal"),
    ("GET", "/api/internal/some/path"),
    ("GET", "/api/user"),
    ("GET", "/api/user/profile"),
    ("GET", "/api/auth"),
    ("GET", "/api/auth/login"),
    ("GET", "/api/meta"),
    ("GET", "/api/telemetry"),
    ("GET", "/api/threads"),
    ("POST", "/api/thread-actors"),
    ("GET", "/threads/"),
    ("GET", "/threads.rss"),
    ("GET", "/api/otel"),
    ("GET", "/api/tab"),
    ("GET", "/api/tab/some/path"),
    ("GET", "/auth"),
    ("GET", "/auth/cli-login"),
    ("GET", "/auth/callback"),
    ("GET", "/api/provider/google/v1beta1/models"),
    ("POST", "/api/provider/google/v1beta1/models"),
]
RTE_02 = [
    ("GET", "/api/meta/x"),
    ("GET", "/api/ads"),
    ("POST", "/api/telemetry/batch"),
    ("DELETE", "/api/threads/T-1"),
    ("PATCH", "/api/threads/T-1"),
    ("PUT", "/api/otel/v1/traces"),
    ("GET", "/docs"),
    ("GET", "/docs/manual"),
    ("GET", "/settings"),
    ("GET", "/settings/profile"),
    ("GET", "/news.rss"),
    ("POST", "/auth/sign-in"),
    ("DELETE", "/auth/logout"),
]


@pytest.fixture
def amp(start_fake):
    return start_fake(FakeAmp)


async def proxied(amp, start_proxy, routes):
    proxy = start_proxy(amp_config(amp.url))
    for method, path in routes:
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        status, headers, _ = await call(method, proxy.url + path, headers=BEARER, body=body)
        assert status == 200, (method, path, status)
        rec = amp.last
        assert (rec.method, rec.uri.decode()) == (method, path), path
        assert headers.getRawHeaders(b"access-control-allow-origin") is None


@pytest_twisted.ensureDeferred
async def test_RTE_01_management_routes_are_proxied(amp, start_proxy):
    await proxied(amp, start_proxy, RTE_01)


@pytest_twisted.ensureDeferred
async def test_RTE_02_more_routes_any_method_on_api(amp, start_proxy):
    await proxied(amp, start_proxy, RTE_02)


@pytest_twisted.ensureDeferred
async def test_RTE_02_root_pages_are_get_only(amp, start_proxy):
    proxy = start_proxy(amp_config(amp.url))
    for path in ("/threads", "/docs/x", "/settings", "/threads.rss", "/news.rss"):
        status, headers, body = await call("POST", proxy.url + path, headers=BEARER, body=b"x")
        assert status == 405, path
        assert b"GET" in headers.getRawHeaders(b"allow")[0]
    assert amp.requests == []


PEERS = [
    ("192.168.1.100", {"X-Forwarded-For": "127.0.0.1"}, 403),
    ("127.0.0.1", {}, 200),
    ("::1", {}, 200),
    ("203.0.113.42", {}, 403),
    ("2001:db8::1", {}, 403),
    ("203.0.113.42", {"X-Forwarded-For": "::1", "X-Real-IP": "127.0.0.1"}, 403),
    ("::ffff:127.0.0.1", {}, 200),
]


@pytest.mark.parametrize("peer,extra,status", PEERS)
@pytest_twisted.ensureDeferred
async def test_RTE_03_localhost_decided_from_the_tcp_peer_only(
    amp, start_proxy, peer, extra, status
):
    proxy = start_proxy(amp_config(amp.url))
    answer = await wire_answer(proxy.site, "GET", "/api/user", {**BEARER, **extra}, peer=peer)
    assert answer.status == status
    if status == 403:
        assert answer.json() == {
            "error": "Access denied: management routes restricted to localhost"
        }
        assert amp.requests == []


@pytest_twisted.ensureDeferred
async def test_RTE_04_restriction_reloads_live(amp, start_proxy):
    text = amp_config(amp.url)
    proxy = start_proxy(text)
    remote = "198.51.100.7"
    a = await wire_answer(proxy.site, "GET", "/api/user", BEARER, peer=remote)
    assert a.status == 403
    proxy.reconfigure(amp_config(amp.url, extra="restrict-management-to-localhost: false"))
    a = await wire_answer(proxy.site, "GET", "/api/user", BEARER, peer=remote)
    assert a.status == 200 and a.json()["email"] == "amp-user@example.com"
    proxy.reconfigure(text)
    a = await wire_answer(proxy.site, "GET", "/api/user", BEARER, peer=remote)
    assert a.status == 403


def test_RTE_05_unparseable_peer_fails_closed():
    assert not is_loopback_peer(UNIXAddress("/run/x.sock"))
    assert not is_loopback_peer(IPv4Address("TCP", "not-an-ip", 1))
    assert not is_loopback_peer(None)
    assert is_loopback_peer(IPv4Address("TCP", "127.0.0.5", 1))


@pytest_twisted.ensureDeferred
async def test_RTE_05_unparseable_peer_gets_the_403_body(amp, start_proxy):
    proxy = start_proxy(amp_config(amp.url))
    a = await wire_answer(proxy.site, "GET", "/api/user", BEARER, peer=UNIXAddress(b"/tmp/s"))
    assert a.status == 403
    assert a.json() == {"error": "Access denied: management routes restricted to localhost"}


@pytest_twisted.ensureDeferred
async def test_RTE_06_no_cors_options_forbidden_503_without_upstream(amp, start_proxy):
    proxy = start_proxy(amp_config(amp.url))
    for path in ("/api/user", "/threads", "/auth/cli-login", "/api/provider/google/v1beta1/x"):
        status, headers, body = await call("OPTIONS", proxy.url + path, headers=BEARER)
        assert status == 403, path
        assert headers.getRawHeaders(b"access-control-allow-origin") is None
    # provider routes keep the normal preflight (CORS headers only for cors.allow-origins)
    status, headers, _ = await call(
        "OPTIONS", proxy.url + "/api/provider/openai/v1/chat/completions"
    )
    assert status == 204
    assert headers.getRawHeaders(b"access-control-allow-origin") is None
    # management answers never carry CORS headers, whatever the upstream sends
    amp.script(
        "GET",
        "/api/user",
        lambda rec: __import__("tests.fakes", fromlist=["Reply"]).Reply(
            json={}, headers={"Access-Control-Allow-Origin": "*"}
        ),
    )
    status, headers, _ = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 200 and headers.getRawHeaders(b"access-control-allow-origin") is None
    assert amp.requests[-1].method == "GET"

    bare = start_proxy(amp_config(""))
    status, _, body = await call("GET", bare.url + "/api/user", headers=BEARER)
    assert status == 503
    assert json.loads(body) == {"error": "amp upstream proxy not available"}
    # 503 comes before the localhost check
    a = await wire_answer(bare.site, "GET", "/api/threads", BEARER, peer="203.0.113.9")
    assert a.status == 503


@pytest_twisted.ensureDeferred
async def test_RTE_07_auth_on_api_bypass_for_root_pages(amp, start_proxy):
    proxy = start_proxy(amp_config(amp.url))
    status, _, body = await call("GET", proxy.url + "/api/user")
    assert status == 401 and b"Missing API key" in body
    status, _, _ = await call(
        "GET", proxy.url + "/api/user", headers={"Authorization": "Bearer no"}
    )
    assert status == 401
    for path in ("/threads", "/threads/T-1", "/auth", "/auth/cli-login", "/docs", "/settings/x"):
        status, _, _ = await call("GET", proxy.url + path)
        assert status == 200, path
        assert amp.last.header("x-api-key") is not None  # the upstream key still goes along
    status, _, _ = await call("GET", proxy.url + "/threads.rss")
    assert status == 401  # "/threads" + ".rss" is not "/threads" or "/threads/..."
    # Amp's placeholder next to a good bearer key is not a failed login
    headers = {**BEARER, "x-goog-api-key": "placeholder"}
    status, _, _ = await call("GET", proxy.url + "/api/user", headers=headers)
    assert status == 200


def test_RTE_12_normalisation_rules():
    assert normalise(b"/api/../v0/management") == ("v0", "management")
    assert normalise(b"//api/user") == ("api", "user")
    assert normalise(b"/api/%2e%2e/v0/management?x=1") == ("v0", "management")
    assert normalise(b"/auth/..%2Fapi%2Fuser") == ("api", "user")
    assert normalise(b"/threads/./x//y/") == ("threads", "x", "y")
    assert classify(normalise(b"/threads/../api/user"), b"GET").auth == "required"
    assert classify(normalise(b"/threads-other"), b"GET").kind == "none"
    assert classify(normalise(b"/api/../v0/management"), b"GET").kind == "none"


@pytest_twisted.ensureDeferred
async def test_RTE_12_traversal_cannot_borrow_a_bypass(amp, start_proxy):
    proxy = start_proxy(amp_config(amp.url))
    for path in ("/threads/../api/user", "/auth/..%2Fapi%2Fuser", "/docs/%2e%2e/api/user"):
        status, _, _ = await call("GET", proxy.url + path)
        assert status == 401, path
    assert amp.requests == []
    status, _, _ = await call("GET", proxy.url + "/threads/../api/user", headers=BEARER)
    assert status == 200 and amp.last.uri == b"/api/user"  # what was checked is what was sent
    for path in ("/api/../v0/management", "/api/%2e%2e/v0/management"):
        status, _, _ = await call("GET", proxy.url + path, headers=BEARER)
        assert status == 404, path
    status, _, body = await call("GET", proxy.url + "//api/user")
    assert amp.last.uri == b"/api/user" and len(amp.requests) == 1  # `//` never reached Amp
    assert status == 200 and json.loads(body)["name"] == "cliproxy"  # the index page


@pytest_twisted.ensureDeferred
async def test_trailing_slash_survives_normalisation(amp, start_proxy):
    proxy = start_proxy(amp_config(amp.url))
    await call("GET", proxy.url + "/api/threads/?limit=2", headers=BEARER)
    assert amp.last.uri == b"/api/threads/?limit=2"
