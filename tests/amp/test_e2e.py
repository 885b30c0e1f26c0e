"""End to end: the seed's example calls, and what real Amp releases send (amp.md, last
section) replayed against cliproxy with local credentials and a fake Amp upstream."""

from __future__ import annotations

import gzip
import json

import pytest_twisted

from tests.amp.kit import (
    UPSTREAM_KEY,
    amp_config,
    call,
    claude_provider,
    codex_provider,
    gemini_provider,
    wire_answer,
)
from tests.amp.test_gateway import tunnel_round_trip
from tests.fakes import FakeAmp, FakeClaude, FakeCodex, FakeGemini
from tests.serving_kit import CLIENT_KEY

AMP_HEADERS = {
    "Authorization": f"Bearer {CLIENT_KEY}",
    "X-Amp-Client-Application": "CLI Execute Mode",
    "X-Amp-Client-Type": "cli",
    "X-Amp-Client-Version": "0.0.1777897475-g2324e1",
    "User-Agent": "amp/0.0.1777897475",
}


def tools(n: int) -> list[dict]:
    names = ["Bash", "Read", "Grep", "glob", "edit_file", "create_file", "Task", "Check"]
    names += [f"tool_{i}" for i in range(n - len(names))]
    return [
        {"name": name, "description": name, "input_schema": {"type": "object", "properties": {}}}
        for name in names
    ]


@pytest_twisted.ensureDeferred
async def test_seed_management_example_loopback_and_remote(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url, keys=False))
    status, _, body = await call("GET", proxy.url + "/api/user")  # curl .../api/user
    assert status == 200 and json.loads(body)["email"] == "amp-user@example.com"
    remote = await wire_answer(proxy.site, "GET", "/api/user", peer="10.1.2.3")
    assert remote.status == 403
    assert len(amp.requests) == 1


@pytest_twisted.ensureDeferred
async def test_amp_cli_session_replayed_end_to_end(start_fake, start_proxy):
    amp = start_fake(FakeAmp, keys={UPSTREAM_KEY})
    claude = start_fake(FakeClaude)
    codex = start_fake(FakeCodex)
    gemini = start_fake(FakeGemini)
    providers = (
        claude_provider(
            claude,
            "[{name: claude-haiku-4-5-20251001, alias: claude-haiku-4-5-20251001},"
            " {name: claude-opus-4-7, alias: claude-opus-4-7}]",
        )
        + codex_provider(codex, "[{name: gpt-5.4, alias: gpt-5.4}]")
        + gemini_provider(gemini, "[{name: gemini-3-flash-preview, alias: gemini-3-flash-preview}]")
    )
    proxy = start_proxy(amp_config(amp.url, providers=providers))
    url = proxy.url

    async def internal(method: str, params: dict, compress: bool = False):
        body = json.dumps({"method": method, "params": params}).encode()
        headers = {**AMP_HEADERS, "Content-Type": "application/json"}
        if compress:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        status, _, answer = await call(
            "POST", f"{url}/api/internal?{method}", headers=headers, body=body
        )
        assert status == 200, answer
        reply = json.loads(answer)
        assert reply["ok"] is True
        return reply["result"]

    # 1. control plane
    user = await internal("getUserInfo", {})
    assert user["email"] == "amp-user@example.com"
    await internal("getUserInfo", {})
    await internal("loadPlugins", {})
    await internal("getThread", {"thread": "T-1"})
    await internal("getThread", {"thread": "T-1"})
    await internal("getUserFreeTierStatus", {})

    # 2. the thread title, not streamed, from the local Claude credential
    status, _, body = await call(
        "POST",
        url + "/api/provider/anthropic/v1/messages",
        headers={**AMP_HEADERS, "anthropic-version": "2023-06-01"},
        json_body={
            "model": "claude-haiku-4-5-20251001",
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": "say hi"}],
            "tools": [
                {
                    "name": "set_title",
                    "input_schema": {
                        "type": "object",
                        "properties": {"title": {"type": "string"}},
                        "required": ["title"],
                    },
                }
            ],
            "tool_choice": {"type": "tool", "name": "set_title"},
        },
    )
    assert status == 200, body
    title = json.loads(body)
    block = title["content"][-1]
    assert block["type"] == "tool_use" and block["name"] == "set_title"
    assert block["signature"] == "" and title["model"] == "claude-haiku-4-5-20251001"

    # 3. the turn, streamed, Amp's own headers, 20+ tools, thinking enabled
    turn_headers = {
        "x-api-key": CLIENT_KEY,
        "anthropic-version": "2023-06-01",
        "x-amp-thread-id": "T-7873e6bd-6354-4a9a-be2c-c7702c6e1b64",
        "x-amp-feature": "chat",
        "x-amp-message-id": "M-1",
        "X-Amp-Client-Type": "cli",
    }
    status, headers, body = await call(
        "POST",
        url + "/api/provider/anthropic/v1/messages",
        headers=turn_headers,
        json_body={
            "model": "claude-opus-4-7",
            "max_tokens": 32000,
            "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 4000},
            "tools": tools(22),
            "messages": [{"role": "user", "content": "say hi"}],
        },
    )
    assert status == 200, body
    assert headers.getRawHeaders(b"content-type")[0].startswith(b"text/event-stream")
    events = [json.loads(x[6:]) for x in body.split(b"\n") if x.startswith(b"data: {")]
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "hello from fake-claude"
    starts = [e for e in events if e["type"] == "message_start"]
    assert starts[0]["message"]["model"] == "claude-opus-4-7"
    assert claude.last.json["model"] == "claude-opus-4-7" and claude.last.json["stream"] is True
    assert claude.last.key == "sk-ant-test-1"

    # 4. upload the thread (large: gzip-compressed)
    await internal(
        "uploadThread", {"thread": {"id": "T-1", "messages": ["x" * 20000]}}, compress=True
    )
    await internal("uploadThread", {"thread": {"id": "T-1"}})

    # deep mode: the Responses API, streamed, served by the local Codex credential
    status, _, body = await call(
        "POST",
        url + "/api/provider/openai/v1/responses",
        headers=AMP_HEADERS,
        json_body={
            "model": "gpt-5.4",
            "stream": True,
            "reasoning": {"effort": "high", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        },
    )
    assert status == 200, body
    assert b"response.completed" in body and b"hello from fake-codex" in body
    completed = [json.loads(x[6:]) for x in body.split(b"\n") if b'"response.completed"' in x][0]
    assert completed["response"]["model"] == "gpt-5.4"
    assert codex.last.path == "/backend-api/codex/responses"

    # the finder subagent: the v1beta1 bridge, with Amp's literal placeholder key
    status, _, body = await call(
        "POST",
        url + "/api/provider/google/v1beta1/publishers/google/models/"
        "gemini-3-flash-preview:generateContent",
        headers={**AMP_HEADERS, "x-goog-api-key": "placeholder"},
        json_body={"contents": [{"role": "user", "parts": [{"text": "find it"}]}]},
    )
    assert status == 200, body
    found = json.loads(body)
    assert found["candidates"][0]["content"]["parts"][0]["text"] == "hello from fake-gemini"
    assert found["modelVersion"] == "gemini-3-flash-preview"
    assert gemini.last.path == "/v1beta/models/gemini-3-flash-preview:generateContent"

    # newer releases: thread actors and the WebSocket, through to Amp
    status, _, body = await call(
        "POST", url + "/api/thread-actors", headers=AMP_HEADERS, json_body={"threadId": None}
    )
    assert status == 200 and json.loads(body)["wsToken"] == "ws-fake-token"
    await tunnel_round_trip(proxy, amp, {"Authorization": f"Bearer {CLIENT_KEY}"})

    # Amp saw only the control plane, always with the upstream key, never the client's
    paths = [(r.method, r.uri.decode()) for r in amp.requests]
    assert paths[:6] == [
        ("POST", "/api/internal?getUserInfo"),
        ("POST", "/api/internal?getUserInfo"),
        ("POST", "/api/internal?loadPlugins"),
        ("POST", "/api/internal?getThread"),
        ("POST", "/api/internal?getThread"),
        ("POST", "/api/internal?getUserFreeTierStatus"),
    ]
    assert not [p for _, p in paths if p.startswith("/api/provider")]
    assert all(r.key == UPSTREAM_KEY for r in amp.requests)
    assert all(CLIENT_KEY not in json.dumps(r.headers) for r in amp.requests)
    upload = [r for r in amp.requests if r.uri == b"/api/internal?uploadThread"][0]
    assert upload.json["params"]["thread"]["id"] == "T-1"  # the gzip body arrived whole

    stats = proxy.app.amp.stats.snapshot()
    assert stats["decisions"] == {
        "claude-haiku-4-5-20251001": {"LOCAL_PROVIDER": 1},
        "claude-opus-4-7": {"LOCAL_PROVIDER": 1},
        "gpt-5.4": {"LOCAL_PROVIDER": 1},
        "gemini-3-flash-preview": {"LOCAL_PROVIDER": 1},
    }
    assert stats["by_route"]["local"]["requests"] == 4
    assert "amp-upstream" not in stats["by_route"]
