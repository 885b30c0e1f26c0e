"""More of the serving path over sockets: count_tokens per provider, legacy completions,
Gemini's JSON-array streaming, SSE keep-alives, /v1/models shapes."""

from __future__ import annotations

import json

import pytest_twisted
import treq

from tests.fakes import FakeClaude, FakeGemini, FakeOpenAI, Reply, claude_events
from tests.fakes.turn import Turn
from tests.serving_kit import CLIENT_KEY, config_text

HDR = {"x-api-key": CLIENT_KEY, "content-type": "application/json"}


def claude_cfg(claude) -> str:
    return (
        f"claude-api-key:\n  - api-key: sk-ant-test-1\n    base-url: {claude.url}\n"
        "    models: [{name: claude-fake-1, alias: claude-fake}]\n"
    )


def gemini_cfg(gemini) -> str:
    return (
        f"gemini-api-key:\n  - api-key: g-test-1\n    base-url: {gemini.url}\n"
        "    models: [{name: gemini-fake, alias: gemini-fake}]\n"
    )


def oai_cfg(oai) -> str:
    return (
        "openai-compatibility:\n  - name: fakeoai\n"
        f"    base-url: {oai.url}/v1\n"
        "    api-key-entries: [{api-key: sk-oai-test-1}]\n"
        "    models: [{name: gpt-fake, alias: gpt-fake}]\n"
    )


async def post(proxy, path, body):
    resp = await treq.post(proxy.url + path, json.dumps(body).encode(), headers=HDR)
    return resp, await resp.content()


COUNT = {"model": "", "messages": [{"role": "user", "content": "count these words please"}]}


@pytest_twisted.ensureDeferred
async def test_claude_count_tokens_on_claude_is_passed_through(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(config_text(claude_cfg(claude)))
    resp, body = await post(proxy, "/v1/messages/count_tokens", {**COUNT, "model": "claude-fake"})
    assert resp.code == 200
    assert claude.last.path == "/v1/messages/count_tokens"
    assert json.loads(body)["input_tokens"] > 0


@pytest_twisted.ensureDeferred
async def test_claude_count_tokens_on_gemini_uses_count_tokens(start_fake, start_proxy):
    gemini = start_fake(FakeGemini)
    proxy = start_proxy(config_text(gemini_cfg(gemini)))
    resp, body = await post(proxy, "/v1/messages/count_tokens", {**COUNT, "model": "gemini-fake"})
    assert resp.code == 200
    assert gemini.last.path.endswith(":countTokens")
    assert set(json.loads(body)) == {"input_tokens"}


@pytest_twisted.ensureDeferred
async def test_claude_count_tokens_on_openai_is_estimated_locally(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(config_text(oai_cfg(oai)))
    resp, body = await post(proxy, "/v1/messages/count_tokens", {**COUNT, "model": "gpt-fake"})
    assert resp.code == 200
    assert json.loads(body)["input_tokens"] > 0
    assert oai.requests == []


@pytest_twisted.ensureDeferred
async def test_gemini_count_tokens_on_claude(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(config_text(claude_cfg(claude)))
    resp, body = await post(
        proxy,
        "/v1beta/models/claude-fake:countTokens",
        {"contents": [{"role": "user", "parts": [{"text": "how many"}]}]},
    )
    assert resp.code == 200
    out = json.loads(body)
    assert out["totalTokens"] > 0
    assert claude.last.path == "/v1/messages/count_tokens"


@pytest_twisted.ensureDeferred
async def test_legacy_completions_plain_and_streamed(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(config_text(oai_cfg(oai)))
    resp, body = await post(proxy, "/v1/completions", {"model": "gpt-fake", "prompt": "Say hi"})
    out = json.loads(body)
    assert resp.code == 200
    assert out["object"] == "text_completion"
    assert out["choices"][0]["text"] == "hello from fake-openai"
    assert oai.last.json["messages"] == [{"role": "user", "content": "Say hi"}]
    resp, body = await post(
        proxy, "/v1/completions", {"model": "gpt-fake", "prompt": "Say hi", "stream": True}
    )
    frames = [f[6:] for f in body.decode().split("\n\n") if f.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == (
        "hello from fake-openai"
    )


@pytest_twisted.ensureDeferred
async def test_gemini_stream_with_alt_json_is_one_json_array(start_fake, start_proxy):
    gemini = start_fake(FakeGemini)
    proxy = start_proxy(config_text(gemini_cfg(gemini)))
    resp, body = await post(
        proxy,
        "/v1beta/models/gemini-fake:streamGenerateContent?alt=json",
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
    )
    assert resp.code == 200
    assert resp.headers.getRawHeaders("content-type")[0].startswith("application/json")
    items = json.loads(body)
    assert isinstance(items, list) and items
    text = "".join(p.get("text", "") for i in items for p in i["candidates"][0]["content"]["parts"])
    assert text == "hello from fake-gemini"
    assert gemini.last.arg("alt") == "sse"  # upstream is always asked for SSE


@pytest_twisted.ensureDeferred
async def test_gemini_stream_from_claude_provider_with_alt_json_is_a_json_array(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(config_text(claude_cfg(claude)))
    resp, body = await post(
        proxy,
        "/v1beta/models/claude-fake:streamGenerateContent?alt=json",
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
    )
    items = json.loads(body)
    text = "".join(p.get("text", "") for i in items for p in i["candidates"][0]["content"]["parts"])
    assert text == "hello from fake-claude"


@pytest_twisted.ensureDeferred
async def test_keepalive_comments_on_an_idle_stream(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    proxy = start_proxy(config_text(claude_cfg(claude), "streaming:\n  keepalive-seconds: 0.05\n"))
    events = claude_events(Turn(text="late"), "claude-fake-1")
    claude.script("POST", "/v1/messages", Reply(sse=events, delay=0, chunk_delay=0.2))
    resp, body = await post(
        proxy,
        "/v1/messages",
        {
            "model": "claude-fake",
            "max_tokens": 5,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    text = body.decode()
    assert ": keep-alive\n\n" in text
    assert "message_stop" in text


@pytest_twisted.ensureDeferred
async def test_v1beta_model_lookup(start_fake, start_proxy):
    gemini = start_fake(FakeGemini)
    proxy = start_proxy(config_text(gemini_cfg(gemini)))
    resp = await treq.get(proxy.url + "/v1beta/models/gemini-fake", headers=HDR)
    assert resp.code == 200
    assert json.loads(await resp.content())["name"] == "models/gemini-fake"
    resp = await treq.get(proxy.url + "/v1beta/models/nope", headers=HDR)
    assert resp.code == 404
    assert json.loads(await resp.content())["error"]["status"] == "NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_no_credential_for_a_known_model_is_503_naming_the_fix(start_proxy):
    proxy = start_proxy(config_text())
    resp, body = await post(
        proxy,
        "/v1/messages",
        {
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    err = json.loads(body)
    assert resp.code in (404, 503)
    assert err["type"] == "error"
    if resp.code == 503:
        assert "claude" in err["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_gemini_stream_without_alt_is_sse_as_cliproxyapi_does(start_fake, start_proxy):
    gemini = start_fake(FakeGemini)
    proxy = start_proxy(config_text(gemini_cfg(gemini)))
    resp, body = await post(
        proxy,
        "/v1beta/models/gemini-fake:streamGenerateContent",
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
    )
    assert resp.headers.getRawHeaders("content-type")[0] == "text/event-stream"
    assert body.startswith(b"data: {")


@pytest_twisted.ensureDeferred
async def test_passthrough_headers_forward_filtered_upstream_headers(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    upstream_headers = {
        "anthropic-ratelimit-requests-remaining": "41",
        "set-cookie": "session=secret",
        "x-litellm-model": "gateway-detail",
    }
    body = {"model": "claude-fake", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    for enabled in (False, True):
        proxy = start_proxy(
            config_text(claude_cfg(claude), f"passthrough-headers: {str(enabled).lower()}\n")
        )
        claude.default(
            "POST", claude.generation_path, claude.default_answer(headers=upstream_headers)
        )
        resp, _ = await post(proxy, "/v1/messages", body)
        assert resp.code == 200
        h = resp.headers
        assert h.hasHeader("anthropic-ratelimit-requests-remaining") is enabled
        assert not h.hasHeader("set-cookie")
        assert not h.hasHeader("x-litellm-model")
        assert h.getRawHeaders("content-type") == ["application/json"]
