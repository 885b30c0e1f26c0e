"""xAI API keys: `xai-api-key` -> XAIExecutor (Responses, always streamed) -> a strict fake."""

from __future__ import annotations

import json

import pytest_twisted

from cliproxy.config import parse_config
from cliproxy.credentials.from_config import credentials_from_config
from tests.fakes.xai import FakeXAI
from tests.oauth.test_serving_oauth import chat, get, post, sse_text
from tests.serving_kit import config_text


def test_an_xai_entry_defaults_to_the_xai_api():
    config = parse_config("xai-api-key:\n  - api-key: xai-test-1\n")
    [cred] = credentials_from_config(config)
    assert (cred.provider, cred.kind, cred.base_url) == (
        "xai",
        "xai-api-key",
        "https://api.x.ai/v1",
    )


@pytest_twisted.ensureDeferred
async def test_xai_key_serves_chat_and_responses_clients(start_fake, start_proxy):
    xai = start_fake(FakeXAI, keys={"xai-test-1"})
    proxy = start_proxy(
        config_text(f"xai-api-key:\n  - api-key: xai-test-1\n    base-url: {xai.url}/v1\n")
    )
    code, raw = await post(proxy, "/v1/chat/completions", chat("grok-4.3"))
    assert code == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from fake-xai"
    rec = xai.last
    assert rec.path == "/v1/responses" and rec.json["stream"] is True
    assert rec.json["model"] == "grok-4.3"
    assert rec.header("authorization") == "Bearer xai-test-1"
    code, raw = await post(proxy, "/v1/chat/completions", chat("grok-4.3", stream=True))
    assert code == 200 and sse_text(raw) == "hello from fake-xai"
    body = {
        "model": "grok-4.3",
        "input": "hi",
        "previous_response_id": "resp_1",
        "safety_identifier": "u1",
        "prompt_cache_key": "conv-7",
    }
    code, raw = await post(proxy, "/v1/responses", body)
    assert code == 200, raw
    assert xai.last.header("x-grok-conv-id") == "conv-7"
    assert "previous_response_id" not in xai.last.json


@pytest_twisted.ensureDeferred
async def test_xai_section_is_listed(start_fake, start_proxy):
    proxy = start_proxy(config_text("xai-api-key:\n  - api-key: xai-test-1\n"))
    code, raw = await get(proxy, "/v1/models")
    ids = {m["id"] for m in json.loads(raw)["data"]}
    assert {"grok-4.3", "grok-3-mini"} <= ids
