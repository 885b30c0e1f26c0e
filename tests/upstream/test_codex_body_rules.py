"""Every client format reaches Codex with a body the ChatGPT backend accepts (core.md §2.5).

The fake Codex refuses what the real backend refuses (`store`, `instructions`, string
`input`, sampling and size parameters) with the backend's own 400 bodies, so a request
that reaches it and succeeds is one the real service would take.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq

from tests.fakes import FakeCodex
from tests.fakes.codex import codex_body_violation
from tests.serving_kit import CLIENT_KEY, providers

HDR = {"Authorization": [f"Bearer {CLIENT_KEY}"], "Content-Type": ["application/json"]}
MODEL = "gpt-codex-fake"

CHAT = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ],
    "max_tokens": 100,
    "temperature": 0.2,
    "top_p": 0.9,
    "user": "u-1",
}
RESPONSES = {
    "model": MODEL,
    "input": "hi",
    "instructions": None,
    "max_output_tokens": 128000,
    "temperature": 0.5,
    "truncation": "auto",
    "user": "u-1",
    "context_management": [{"type": "compaction"}],
    "tools": [{"type": "web_search_preview"}],
}
CLAUDE = {
    "model": MODEL,
    "max_tokens": 32000,
    "temperature": 1,
    "system": [{"type": "text", "text": "You are Claude Code"}],
    "messages": [{"role": "user", "content": "hi"}],
}
GEMINI = {
    "systemInstruction": {"parts": [{"text": "be brief"}]},
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    "generationConfig": {"maxOutputTokens": 50, "temperature": 0.1, "topP": 0.5},
}


def _route(fmt: str, stream: bool) -> tuple[str, dict]:
    if fmt == "chat":
        return "/v1/chat/completions", {**CHAT, "stream": stream}
    if fmt == "responses":
        return "/v1/responses", {**RESPONSES, "stream": stream}
    if fmt == "claude":
        return "/v1/messages", {**CLAUDE, "stream": stream}
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{MODEL}:{action}", GEMINI


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fmt", ["chat", "responses", "claude", "gemini"])
@pytest_twisted.ensureDeferred
async def test_every_client_format_sends_codex_a_body_it_accepts(
    start_fake, start_proxy, fmt, stream
):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    path, body = _route(fmt, stream)
    resp = await treq.post(proxy.url + path, json.dumps(body).encode(), headers=HDR)
    raw = await resp.content()
    assert resp.code == 200, raw
    assert b"fake-codex" in raw if not stream else b"hello" in raw
    sent = codex.last.json
    assert codex_body_violation(sent) is None
    assert sent["stream"] is True and sent["store"] is False
    assert "reasoning.encrypted_content" in sent["include"]
    assert all(item.get("role") != "system" for item in sent["input"])


@pytest_twisted.ensureDeferred
async def test_responses_web_search_preview_reaches_codex_as_web_search(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    resp = await treq.post(proxy.url + "/v1/responses", json.dumps(RESPONSES).encode(), headers=HDR)
    await resp.content()
    types = [t["type"] for t in codex.last.json["tools"]]
    assert "web_search" in types and "web_search_preview" not in types


@pytest_twisted.ensureDeferred
async def test_compact_reaches_the_compact_endpoint_as_one_json_call(start_fake, start_proxy):
    codex = start_fake(FakeCodex)
    proxy = start_proxy(providers(codex=codex))
    body = {"model": MODEL, "input": [{"role": "user", "content": "hi"}], "instructions": None}
    resp = await treq.post(
        proxy.url + "/v1/responses/compact", json.dumps(body).encode(), headers=HDR
    )
    answer = json.loads(await resp.content())
    assert resp.code == 200, answer
    assert answer["object"] == "response.compaction"
    assert codex.last.path == "/backend-api/codex/responses/compact"
    assert "stream" not in codex.last.json
    assert codex.last.json["instructions"] == ""
    assert codex.last.header("accept") == "application/json"
