"""Issue 15 item 3: every error a client can trigger is JSON in its family's shape, with
the right status and reason phrase, and nothing hangs."""

from __future__ import annotations

import pytest_twisted

from cliproxy.web.jsonbody import MAX_JSON_DEPTH, json_depth
from tests.fakes import FakeClaude, FakeGemini, FakeOpenAI, Reply
from tests.reliability.kit import call
from tests.serving_kit import providers

HI = [{"role": "user", "content": "hi"}]


def deep_schema(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def test_json_depth_skips_brackets_inside_strings():
    assert json_depth(b'{"a": "[[[[[[[["}', limit=0) == 1
    assert json_depth(b"[" * 10 + b"]" * 10, limit=3) == 4  # stops counting past the limit
    assert json_depth(b'{"a": "\\"[[[[", "b": [[[]]]}', limit=2) == 3


@pytest_twisted.ensureDeferred
async def test_lone_surrogate_in_model_name_gets_a_json_404_not_a_hang(start_fake, start_proxy):
    proxy = start_proxy(providers(oai=start_fake(FakeOpenAI)))
    raw = b'{"model": "x\\ud800", "messages": []}'
    a = await call(proxy.url, "POST", "/v1/chat/completions", raw)
    assert not a.timed_out
    assert (a.status, a.reason) == (404, "Not Found")
    assert "unknown model 'x\ud800'" in a.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_lone_surrogate_in_upstream_output_is_escaped_not_a_500(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    body = (
        b'{"id":"m1","type":"message","role":"assistant","model":"claude-fake-1",'
        b'"content":[{"type":"text","text":"a\\ud800b"}],"stop_reason":"end_turn",'
        b'"usage":{"input_tokens":1,"output_tokens":1}}'
    )
    claude.script("POST", "/v1/messages", Reply(body=body, content_type="application/json"))
    proxy = start_proxy(providers(claude=claude))
    a = await call(
        proxy.url, "POST", "/v1/chat/completions", {"model": "claude-fake", "messages": HI}
    )
    assert a.status == 200
    assert a.json()["choices"][0]["message"]["content"] == "a\ud800b"


@pytest_twisted.ensureDeferred
async def test_thousand_deep_body_is_a_400_naming_the_depth_limit(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(providers(oai=oai))
    raw = b'{"model":"gpt-fake","messages":[],"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    for path in ("/v1/chat/completions", "/v1/messages", "/v1beta/models/gpt-fake:generateContent"):
        a = await call(proxy.url, "POST", path, raw)
        assert (a.status, a.reason) == (400, "Bad Request"), path
        assert a.header("content-type") == "application/json"
        assert f"more than {MAX_JSON_DEPTH} levels deep" in a.body.decode()
    assert oai.requests == []


@pytest_twisted.ensureDeferred
async def test_deep_body_on_an_amp_provider_route_is_a_400_too(start_fake, start_proxy):
    from tests.amp.kit import amp_config, openai_provider

    oai = start_fake(FakeOpenAI)
    proxy = start_proxy(amp_config("", providers=openai_provider(oai)))
    raw = b'{"model":"gpt-fake","messages":[],"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    for path in ("/api/provider/openai/v1/chat/completions", "/api/provider/anthropic/v1/messages"):
        a = await call(proxy.url, "POST", path, raw)
        assert a.status == 400, path
        assert "levels deep" in a.body.decode()
    assert oai.requests == []


@pytest_twisted.ensureDeferred
async def test_250_deep_tool_schema_to_gemini_is_a_json_400(start_fake, start_proxy):
    gemini = start_fake(FakeGemini)
    proxy = start_proxy(providers(gemini=gemini))
    tool = {"type": "function", "function": {"name": "f", "parameters": deep_schema(250)}}
    body = {"model": "gemini-fake", "messages": HI, "tools": [tool]}
    a = await call(proxy.url, "POST", "/v1/chat/completions", body)
    assert a.status == 400
    assert "levels deep" in a.json()["error"]["message"]
    native = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    native["tools"] = [{"functionDeclarations": [{"name": "f", "parameters": deep_schema(250)}]}]
    a = await call(proxy.url, "POST", "/v1beta/models/gemini-fake:generateContent", native)
    assert a.status == 400
    assert a.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert gemini.requests == []


@pytest_twisted.ensureDeferred
async def test_head_and_unknown_methods_on_a_post_endpoint_are_405_with_allow(start_proxy):
    proxy = start_proxy(providers())
    for method, family_key in (("HEAD", None), ("BREW", "error"), ("PUT", "error")):
        a = await call(proxy.url, method, "/v1/chat/completions")
        assert (a.status, a.reason) == (405, "Method Not Allowed"), method
        assert a.header("allow") == "POST"
        if family_key:
            assert a.json()[family_key]["message"].startswith(f"method {method} not allowed")
    a = await call(proxy.url, "HEAD", "/v1/messages")
    assert a.status == 405 and a.body == b""
    a = await call(proxy.url, "DELETE", "/v1/messages")
    assert a.json()["type"] == "error" and a.header("allow") == "POST"


@pytest_twisted.ensureDeferred
async def test_retry_after_inf_from_upstream_is_a_429_with_a_bounded_header(
    start_fake, start_proxy
):
    oai = start_fake(FakeOpenAI)
    for value in ("inf", "1e400", "nan", "-5", "99999999999"):
        oai.script("POST", "/v1/chat/completions", Reply(status=429, retry_after=value, json={}))
    proxy = start_proxy(providers(oai=oai))
    for value in ("inf", "1e400", "nan", "-5", "99999999999"):
        a = await call(
            proxy.url, "POST", "/v1/chat/completions", {"model": "gpt-fake", "messages": HI}
        )
        assert (a.status, a.reason) == (429, "Too Many Requests"), value
        assert a.json()["error"]
        retry = a.header("retry-after")
        assert retry is None or 1 <= int(retry) <= 24 * 3600, (value, retry)
        proxy.clock.advance(24 * 3600 + 1)


@pytest_twisted.ensureDeferred
async def test_route_miss_is_404_unknown_url_not_model_not_found(start_proxy):
    proxy = start_proxy(providers())
    a = await call(proxy.url, "POST", "/v1/chat/complete", {"model": "m"})
    assert (a.status, a.reason) == (404, "Not Found")
    err = a.json()["error"]
    assert err["code"] == "unknown_url"
    assert "no route for POST /v1/chat/complete" in err["message"]
