"""Web pages and DNS rebinding against a running cliproxy, over real loopback sockets.

Each test performs the attack (a page's Origin, a rebound Host name) and shows that
clients without those marks (SDKs, curl) and cliproxy's own pages keep working.
"""

from __future__ import annotations

import pytest_twisted

from tests.amp.kit import UPSTREAM_KEY, amp_block
from tests.fakes import FakeAmp, FakeOpenAI
from tests.security.kit import CHAT, compat_provider, http_request, one, port_of
from tests.serving_kit import CLIENT_KEY, config_text

JSON = {"Content-Type": "application/json"}


@pytest_twisted.ensureDeferred
async def test_a_web_page_cannot_spend_subscriptions_in_open_mode(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(config_text(compat_provider(oai), keys=False))
    port = port_of(proxy)
    for marks in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": f"http://localhost:{port + 1}"},  # another local app is another origin
        {"Sec-Fetch-Site": "cross-site"},
    ):
        a = await one(port, http_request("POST", "/v1/chat/completions", {**JSON, **marks}, CHAT))
        assert a.status == 403, marks
        assert a.header("access-control-allow-origin") is None
        assert "cors.allow-origins" in a.json()["error"]["message"]
    preflight = await one(
        port,
        http_request(
            "OPTIONS",
            "/v1/chat/completions",
            {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        ),
    )
    assert preflight.status == 403
    assert oai.requests == []  # nothing reached the upstream
    # a client without Origin (SDK, curl), and cliproxy's own origin, are served
    plain = await one(port, http_request("POST", "/v1/chat/completions", JSON, CHAT))
    own = {**JSON, "Origin": f"http://localhost:{port}", "Sec-Fetch-Site": "same-origin"}
    same = await one(
        port, http_request("POST", "/v1/chat/completions", own, CHAT, host=f"localhost:{port}")
    )
    assert (plain.status, same.status) == (200, 200)
    assert len(oai.requests) == 2


@pytest_twisted.ensureDeferred
async def test_an_allowed_origin_gets_cors_on_answers_and_errors(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(
        config_text(compat_provider(oai), "cors:\n  allow-origins: [https://panel.example]\n")
    )
    port = port_of(proxy)
    origin = {"Origin": "https://panel.example", "Sec-Fetch-Site": "cross-site"}
    pre = await one(
        port,
        http_request(
            "OPTIONS", "/v1/chat/completions", {**origin, "Access-Control-Request-Method": "POST"}
        ),
    )
    assert pre.status == 204
    assert pre.header("access-control-allow-origin") == "https://panel.example"
    assert "POST" in pre.header("access-control-allow-methods")
    key = {"Authorization": f"Bearer {CLIENT_KEY}"}
    ok = await one(
        port, http_request("POST", "/v1/chat/completions", {**JSON, **origin, **key}, CHAT)
    )
    assert ok.status == 200
    assert ok.header("access-control-allow-origin") == "https://panel.example"
    for answer in (
        await one(port, http_request("POST", "/v1/chat/completions", {**JSON, **origin}, CHAT)),
        await one(port, http_request("GET", "/v1/nope", {**origin, **key})),
    ):
        assert answer.status in (401, 404)
        assert answer.header("access-control-allow-origin") == "https://panel.example"


@pytest_twisted.ensureDeferred
async def test_dns_rebinding_cannot_reach_amp_threads(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(config_text(amp_block(amp.url), keys=False))
    port = port_of(proxy)
    rebound = f"attacker.example:{port}"
    # the page's own origin, same-origin as far as the browser knows
    page = {"Origin": f"http://{rebound}", "Sec-Fetch-Site": "same-origin"}
    for path in ("/api/threads", "/threads", "/settings", "/v1/models"):
        a = await one(port, http_request("GET", path, page, host=rebound))
        assert a.status == 421, path
        assert "allowed-hosts" in a.json()["error"]["message"]
    a = await one(port, http_request("POST", "/v1/chat/completions", JSON, CHAT, host=rebound))
    assert a.status == 421
    assert amp.requests == []
    # localhost names with any port are served
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]", "LOCALHOST"):
        a = await one(port, http_request("GET", "/healthz", {}, host=host))
        assert a.status == 200, host


@pytest_twisted.ensureDeferred
async def test_allowed_hosts_adds_names(start_proxy):
    proxy = start_proxy(config_text("allowed-hosts: [cliproxy.internal]\n"))
    port = port_of(proxy)
    a = await one(port, http_request("GET", "/healthz", {}, host=f"cliproxy.internal:{port}"))
    assert a.status == 200
    a = await one(port, http_request("GET", "/healthz", {}, host="other.internal"))
    assert a.status == 421


@pytest_twisted.ensureDeferred
async def test_amp_login_pages_work_from_a_browser_on_localhost(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(config_text(amp_block(amp.url)))
    port = port_of(proxy)
    host = f"localhost:{port}"
    browser = {
        "Accept": "text/html",
        "Sec-Fetch-Site": "none",
        "Sec-Fetch-Mode": "navigate",
        "Cookie": "session=abc",
    }
    a = await one(port, http_request("GET", "/auth/cli-login?authToken=t1", browser, host=host))
    assert a.status == 200
    # the login page's own requests: same origin
    page = {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin", "Cookie": "session=abc"}
    a = await one(port, http_request("POST", "/auth/sign-in", page, b"{}", host=host))
    assert a.status == 200
    assert [r.path for r in amp.requests] == ["/auth/cli-login", "/auth/sign-in"]
    assert all(r.header("x-api-key") == UPSTREAM_KEY for r in amp.requests)
