"""FB-*: who serves an Amp model call, and the `fallback: deny` policy (amp.md §2.7)."""

from __future__ import annotations

import gzip
import json

import pytest_twisted
from twisted.logger import LogLevel, capturedLogs

from tests.amp.kit import (
    BEARER,
    amp_config,
    call,
    claude_provider,
    openai_provider,
)
from tests.fakes import FakeAmp, FakeClaude, FakeOpenAI
from tests.fakes.turn import ToolCall, Turn

MESSAGES = "/api/provider/anthropic/v1/messages"
CHAT = "/api/provider/openai/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def claude_ask(model="claude-fake", **extra):
    return {"model": model, "max_tokens": 100, "messages": HI, **extra}


def sse_events(body: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: {")]


@pytest_twisted.ensureDeferred
async def test_FB_01_streamed_tool_name_follows_the_request_casing(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    claude.script_turn(Turn(tool_calls=[ToolCall("glob", {"pattern": "*.py"})]))
    proxy = start_proxy(amp_config("", providers=claude_provider(claude)))
    tools = [{"name": "Glob", "input_schema": {"type": "object", "properties": {}}}]
    status, _, body = await call(
        "POST",
        proxy.url + MESSAGES,
        headers=BEARER,
        json_body=claude_ask(stream=True, tools=tools),
    )
    assert status == 200, body
    starts = [e for e in sse_events(body) if e["type"] == "content_block_start"]
    tool_blocks = [e["content_block"] for e in starts if e["content_block"]["type"] == "tool_use"]
    assert [b["name"] for b in tool_blocks] == ["Glob"]
    assert all(b["signature"] == "" for b in tool_blocks)


@pytest_twisted.ensureDeferred
async def test_FB_02_mapping_keeps_the_suffix_and_the_client_sees_its_name(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    providers = openai_provider(oai, "[{name: gpt-5.2, alias: gpt-5.2}]", prefix="test")
    extra = "model-mappings:\n  - {from: gpt-5.2, to: test/gpt-5.2}\n"
    # only test/gpt-5.2 is served: the plain name needs the mapping
    proxy = start_proxy(
        amp_config("", providers=providers, extra=extra) + "force-model-prefix: true\n"
    )
    status, _, body = await call(
        "POST",
        proxy.url + CHAT,
        headers=BEARER,
        json_body={"model": "gpt-5.2(high)", "messages": HI},
    )
    assert status == 200, body
    assert json.loads(body)["model"] == "gpt-5.2(high)"
    assert oai.last.json["model"] == "gpt-5.2"
    assert oai.last.json.get("reasoning_effort") == "high"
    assert "test/gpt-5.2(high)" in proxy.app.usage.by_model  # what the local handler ran
    assert proxy.app.amp.stats.count("MODEL_MAPPING", "gpt-5.2(high)") == 1


@pytest_twisted.ensureDeferred
async def test_FB_03_decision_order_default_and_forced(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    oai = start_fake(FakeOpenAI)
    amp = start_fake(FakeAmp)
    providers = claude_provider(claude) + openai_provider(oai)
    mapping = "model-mappings:\n  - {from: claude-fake, to: gpt-fake}\n"
    proxy = start_proxy(amp_config(amp.url, providers=providers, extra=mapping))
    stats = proxy.app.amp.stats

    # default: the local provider for the model wins over a mapping
    status, _, body = await call(
        "POST", proxy.url + MESSAGES, headers=BEARER, json_body=claude_ask()
    )
    assert status == 200 and "hello from fake-claude" in body.decode()
    assert stats.count("LOCAL_PROVIDER", "claude-fake") == 1

    # force-model-mappings: the mapping first
    proxy.reconfigure(
        amp_config(amp.url, providers=providers, extra=mapping + "force-model-mappings: true\n")
    )
    status, _, body = await call(
        "POST", proxy.url + MESSAGES, headers=BEARER, json_body=claude_ask()
    )
    answer = json.loads(body)
    assert status == 200 and answer["content"][0]["text"] == "hello from fake-openai"
    assert answer["model"] == "claude-fake"
    assert stats.count("MODEL_MAPPING", "claude-fake") == 1

    # neither: the Amp upstream
    status, _, body = await call(
        "POST", proxy.url + MESSAGES, headers=BEARER, json_body=claude_ask("claude-opus-4-7")
    )
    assert status == 200 and "hello from fake-amp" in body.decode()
    assert amp.last.path == MESSAGES and amp.last.json["model"] == "claude-opus-4-7"
    assert stats.count("AMP_CREDITS", "claude-opus-4-7") == 1

    # no upstream either: the local endpoint's own error
    proxy.reconfigure(amp_config("", providers=providers, extra=mapping))
    status, _, body = await call(
        "POST", proxy.url + MESSAGES, headers=BEARER, json_body=claude_ask("nothing-serves-this")
    )
    assert status == 404 and b"unknown model" in body
    assert stats.count("NO_PROVIDER", "nothing-serves-this") == 1


@pytest_twisted.ensureDeferred
async def test_FB_04_model_from_body_string_or_url_else_the_handler_answers(
    start_fake, start_proxy
):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    for bad in ({"messages": HI}, {"model": 123, "messages": HI}, {"model": ["x"], "messages": HI}):
        status, _, body = await call("POST", proxy.url + CHAT, headers=BEARER, json_body=bad)
        assert status == 400, body
        assert "'model'" in json.loads(body)["error"]["message"]
    status, _, body = await call(
        "POST",
        proxy.url + CHAT,
        headers={**BEARER, "Content-Type": "application/json"},
        body=b"{nope",
    )
    assert status == 400
    assert amp.requests == []  # nothing without a model name goes to Amp
    # the model from the URL (Gemini): no local provider -> Amp
    status, _, _ = await call(
        "POST",
        proxy.url + "/api/provider/google/v1beta/models/gemini-remote:generateContent",
        headers=BEARER,
        json_body={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert status == 200
    assert amp.last.path == "/api/provider/google/v1beta/models/gemini-remote:generateContent"
    assert proxy.app.amp.stats.count("AMP_CREDITS", "gemini-remote") == 1


def with_bad_thinking(model: str) -> dict:
    return claude_ask(
        model,
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "no signature"},
                    {"type": "tool_use", "id": "t1", "name": "Read", "input": {}, "signature": ""},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}],
            },
        ],
    )


@pytest_twisted.ensureDeferred
async def test_FB_05_body_sanitised_for_local_and_upstream_gzip_bodies_read(
    start_fake, start_proxy
):
    claude = start_fake(FakeClaude)
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url, providers=claude_provider(claude)))
    for model, fake in (("claude-fake", claude), ("claude-remote", amp)):
        raw = gzip.compress(json.dumps(with_bad_thinking(model)).encode())
        headers = {**BEARER, "Content-Type": "application/json", "Content-Encoding": "gzip"}
        status, _, body = await call("POST", proxy.url + MESSAGES, headers=headers, body=raw)
        assert status == 200, body
        sent = fake.last.json["messages"][1]["content"]
        assert [b["type"] for b in sent] == ["tool_use"]
        assert "signature" not in sent[0]
    status, _, body = await call(
        "POST",
        proxy.url + MESSAGES,
        headers={**BEARER, "Content-Encoding": "gzip"},
        body=b"\x1f\x8bgarbage",
    )
    assert status == 400 and b"does not decode" in body


@pytest_twisted.ensureDeferred
async def test_FB_06_beta_flag_local_only_and_thinking_suppression(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    oai = start_fake(FakeOpenAI)
    amp = start_fake(FakeAmp)
    providers = claude_provider(claude) + openai_provider(oai)
    mapping = "model-mappings:\n  - {from: claude-mapped, to: claude-fake}\n"
    proxy = start_proxy(amp_config(amp.url, providers=providers, extra=mapping))
    beta = {"anthropic-beta": "context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14"}
    await call("POST", proxy.url + MESSAGES, headers={**BEARER, **beta}, json_body=claude_ask())
    sent = claude.last.header("anthropic-beta")
    assert "fine-grained-tool-streaming-2025-05-14" in sent and "context-1m" not in sent
    await call(
        "POST",
        proxy.url + MESSAGES,
        headers={**BEARER, "anthropic-beta": "context-1m-2025-08-07"},
        json_body=claude_ask(),
    )
    assert "context-1m" not in (claude.last.header("anthropic-beta") or "")
    await call(
        "POST", proxy.url + MESSAGES, headers={**BEARER, **beta}, json_body=claude_ask("remote-x")
    )
    assert amp.last.header("anthropic-beta") == beta["anthropic-beta"]  # Amp's path: untouched

    turn = Turn(reasoning="think", signature="sig-1", tool_calls=[ToolCall("Read", {"path": "a"})])
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    claude.script_turn(turn, turn)
    _, _, body = await call(
        "POST", proxy.url + MESSAGES, headers=BEARER, json_body=claude_ask(**thinking)
    )
    kinds = [b["type"] for b in json.loads(body)["content"]]
    assert kinds == ["thinking", "tool_use"]  # a local Claude keeps its thinking
    _, _, body = await call(
        "POST",
        proxy.url + MESSAGES,
        headers=BEARER,
        json_body=claude_ask("claude-mapped", **thinking),
    )
    answer = json.loads(body)
    assert [b["type"] for b in answer["content"]] == ["tool_use"]  # mapped: suppressed
    assert answer["model"] == "claude-mapped"


@pytest_twisted.ensureDeferred
async def test_FB_07_upstream_fallback_warns_with_the_mapping_to_add(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    with capturedLogs() as events:
        await call(
            "POST", proxy.url + MESSAGES, headers=BEARER, json_body=claude_ask("claude-x(high)")
        )
    warns = [e for e in events if e.get("log_level") == LogLevel.warn and e.get("route_type")]
    assert len(warns) == 1
    event = warns[0]
    assert event["route_type"] == "AMP_CREDITS" and event["model"] == "claude-x(high)"
    assert 'from: "claude-x"' in event["hint"]


@pytest_twisted.ensureDeferred
async def test_deny_policy_never_spends_amp_credits(start_fake, start_proxy):
    amp = start_fake(FakeAmp)
    claude = start_fake(FakeClaude)
    text = amp_config(amp.url, providers=claude_provider(claude), extra="fallback: deny\n")
    proxy = start_proxy(text)
    status, _, body = await call(
        "POST", proxy.url + MESSAGES, headers=BEARER, json_body=claude_ask("claude-opus-4-7")
    )
    assert status == 403
    error = json.loads(body)["error"]
    assert error["type"] == "permission_error"
    assert "model-mappings" in error["message"] and '"claude-opus-4-7"' in error["message"]
    status, _, body = await call(
        "POST", proxy.url + CHAT, headers=BEARER, json_body={"model": "gpt-x", "messages": HI}
    )
    assert status == 403 and json.loads(body)["error"]["code"] == "amp_fallback_denied"
    assert [r for r in amp.requests if "/provider/" in r.path] == []
    # local models and management routes are not affected
    status, _, _ = await call("POST", proxy.url + MESSAGES, headers=BEARER, json_body=claude_ask())
    assert status == 200
    status, _, _ = await call("GET", proxy.url + "/api/user", headers=BEARER)
    assert status == 200
    assert proxy.app.amp.stats.count("DENIED") == 2


@pytest_twisted.ensureDeferred
async def test_requests_and_tokens_per_route_type(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    amp = start_fake(FakeAmp)
    mapping = "model-mappings:\n  - {from: opus-alias, to: claude-fake}\n"
    proxy = start_proxy(amp_config(amp.url, providers=claude_provider(claude), extra=mapping))
    url = proxy.url + MESSAGES
    await call("POST", url, headers=BEARER, json_body=claude_ask())
    await call("POST", url, headers=BEARER, json_body=claude_ask(stream=True))
    await call("POST", url, headers=BEARER, json_body=claude_ask("opus-alias"))
    await call("POST", url, headers=BEARER, json_body=claude_ask("remote-1"))
    await call("POST", url, headers=BEARER, json_body=claude_ask("remote-1", stream=True))
    routes = proxy.app.amp.stats.snapshot()["by_route"]
    assert routes["local"] == {"requests": 2, "failed": 0, "input_tokens": 20, "output_tokens": 10}
    assert routes["mapped"] == {"requests": 1, "failed": 0, "input_tokens": 10, "output_tokens": 5}
    assert routes["amp-upstream"] == {
        "requests": 2,
        "failed": 0,
        "input_tokens": 20,
        "output_tokens": 10,
    }
    book = proxy.app.usage.by_route["amp-upstream"]
    assert (book.requests, book.input_tokens, book.output_tokens) == (2, 20, 10)
    # the shared usage book tells local and mapped calls apart too
    assert proxy.app.usage.by_route["mapped"].requests == 1
    assert proxy.app.usage.by_route["local"].requests == 2
    decisions = proxy.app.amp.stats.snapshot()["decisions"]
    assert decisions["claude-fake"] == {"LOCAL_PROVIDER": 2}
    assert decisions["remote-1"] == {"AMP_CREDITS": 2}
