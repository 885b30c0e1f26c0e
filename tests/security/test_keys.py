"""Guessing client keys over a real socket: a burst locks the peer out with 429 and
Retry-After; a refused key costs no body buffering; the right key keeps working."""

from __future__ import annotations

import pytest_twisted

from tests.fakes import FakeOpenAI
from tests.security.kit import CHAT, compat_provider, exchange, http_request, one, port_of
from tests.serving_kit import CLIENT_KEY, config_text

JSON = {"Content-Type": "application/json"}


@pytest_twisted.ensureDeferred
async def test_a_guessed_key_burst_gets_429_then_cools_down(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(config_text(compat_provider(oai)))
    port = port_of(proxy)
    right = {**JSON, "Authorization": f"Bearer {CLIENT_KEY}"}
    assert (
        await one(port, http_request("POST", "/v1/chat/completions", right, CHAT))
    ).status == 200
    statuses = []
    for n in range(25):
        guess = {**JSON, "x-api-key": f"sk-guess-{n:04d}"}
        statuses.append(
            (await one(port, http_request("POST", "/v1/chat/completions", guess, CHAT))).status
        )
    assert statuses == [401] * 20 + [429] * 5
    # GETs (checked in the tree) and query keys count and are refused alike
    a = await one(port, http_request("GET", "/v1/models?key=sk-guess-x", {}))
    assert a.status == 429 and a.header("retry-after") == "60"
    assert "try again in 60s" in a.json()["error"]["message"]
    assert len(oai.requests) == 1
    proxy.clock.advance(60)
    a = await one(port, http_request("POST", "/v1/chat/completions", right, CHAT))
    assert a.status == 200


@pytest_twisted.ensureDeferred
async def test_tree_checked_failures_count_too(start_proxy):
    proxy = start_proxy(config_text("limits:\n  key-failures-per-minute: 3\n"))
    port = port_of(proxy)
    for _ in range(3):
        a = await one(port, http_request("GET", "/v1/models", {"x-api-key": "sk-wrong"}))
        assert a.status == 401
    a = await one(port, http_request("GET", "/v1/models", {"x-api-key": CLIENT_KEY}))
    assert a.status == 429


@pytest_twisted.ensureDeferred
async def test_a_wrong_key_is_refused_before_the_body_is_sent(start_proxy):
    proxy = start_proxy(config_text())
    port = port_of(proxy)
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nx-api-key: sk-wrong\r\n"
        b"Content-Type: application/json\r\nContent-Length: 10485760\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    answers = await exchange(port, head)  # not one byte of the 10 MiB body is sent
    assert [a.status for a in answers] == [401]  # no 100 Continue either
    for channel in proxy.site.channels:
        for request in channel.requests:
            assert request.content is None or request.content.tell() == 0
