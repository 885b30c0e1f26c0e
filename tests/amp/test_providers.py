"""RTE-08..11, GEM-*: Amp's provider routes and the Google v1beta1 bridge (amp.md §2.4, §2.5)."""

from __future__ import annotations

import json

import pytest_twisted

from cliproxy.amp.routes import bridge_action
from tests.amp.kit import (
    BEARER,
    amp_config,
    call,
    claude_provider,
    gemini_provider,
    openai_provider,
)
from tests.fakes import FakeAmp, FakeClaude, FakeGemini, FakeOpenAI

HI = [{"role": "user", "content": "hi"}]


@pytest_twisted.ensureDeferred
async def test_seed_example_chat_completion_served_locally(start_fake, start_proxy):
    """The seed's `curl .../api/provider/openai/v1/chat/completions` (no key configured)."""
    oai = start_fake(FakeOpenAI)
    amp = start_fake(FakeAmp)
    text = amp_config(
        amp.url, providers=openai_provider(oai, "[{name: gpt-5, alias: gpt-5}]"), keys=False
    )
    proxy = start_proxy(text)
    status, _, body = await call(
        "POST",
        proxy.url + "/api/provider/openai/v1/chat/completions",
        json_body={"model": "gpt-5", "messages": [{"role": "user", "content": "Hello"}]},
    )
    assert status == 200, body
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"] == "hello from fake-openai"
    assert answer["model"] == "gpt-5"
    assert oai.last.path == "/v1/chat/completions"
    assert [r for r in amp.requests if r.path.startswith("/api/provider")] == []
    assert proxy.app.amp.stats.count("LOCAL_PROVIDER", "gpt-5") == 1


@pytest_twisted.ensureDeferred
async def test_RTE_08_v1beta1_post_model_calls_are_bridged_the_rest_proxied(
    start_fake, start_proxy
):
    gemini = start_fake(FakeGemini)
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url, providers=gemini_provider(gemini)))
    base = proxy.url + "/api/provider/google/v1beta1"
    status, _, body = await call(
        "POST",
        base + "/publishers/google/models/gemini-fake:generateContent",
        headers=BEARER,
        json_body={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert status == 200, body
    assert "hello from fake-gemini" in body.decode()
    assert gemini.last.path == "/v1beta/models/gemini-fake:generateContent"
    assert amp.requests == []
    for method, path in (
        ("GET", "/models"),
        ("POST", "/models"),
        ("POST", "/cachedContents"),
        ("GET", "/publishers/google/models/gemini-fake:generateContent"),
    ):
        status, _, _ = await call(method, base + path, headers=BEARER, body=b"{}")
        assert status == 200, (method, path)
        assert amp.last.uri.decode() == "/api/provider/google/v1beta1" + path


@pytest_twisted.ensureDeferred
async def test_RTE_09_aliases_exist_and_run_auth_first(start_proxy):
    proxy = start_proxy(amp_config(""))
    p = proxy.url + "/api/provider"
    gets = [f"{p}/{name}/models" for name in ("openai", "anthropic", "google", "groq", "cerebras")]
    gets += [f"{p}/google/v1beta/models", f"{p}/openai/v1/models"]
    for url in gets:
        status, _, _ = await call("GET", url)
        assert status == 401, url
        status, _, _ = await call("GET", url, headers=BEARER)
        assert status == 200, url
    posts = [
        f"{p}/openai/chat/completions",
        f"{p}/openai/v1/chat/completions",
        f"{p}/openai/v1/completions",
        f"{p}/anthropic/v1/messages",
        f"{p}/anthropic/v1/messages/count_tokens",
        f"{p}/google/v1beta/models/generateContent",
        f"{p}/cerebras/chat/completions",
    ]
    for url in posts:
        status, _, _ = await call("POST", url, json_body={})
        assert status == 401, url
        status, _, body = await call("POST", url, headers=BEARER, json_body={})
        assert status == 400, (url, body)  # reached the endpoint: it wants a model
    status, _, body = await call(
        "POST", f"{p}/openai/v1/nothing-here", headers=BEARER, json_body={}
    )
    assert status == 404 and b"no route" in body


@pytest_twisted.ensureDeferred
async def test_RTE_09_without_client_keys_routes_still_work(start_proxy):
    proxy = start_proxy(amp_config("", keys=False))
    status, _, body = await call("GET", proxy.url + "/api/provider/openai/models")
    assert status == 200 and json.loads(body)["object"] == "list"


@pytest_twisted.ensureDeferred
async def test_RTE_10_responses_routes_and_gemini_model_get(start_fake, start_proxy):
    oai = start_fake(FakeOpenAI)
    gemini = start_fake(FakeGemini)
    providers = openai_provider(oai) + gemini_provider(gemini)
    proxy = start_proxy(amp_config("", providers=providers))
    for path in ("/api/provider/openai/responses", "/api/provider/openai/v1/responses"):
        status, _, body = await call(
            "POST", proxy.url + path, headers=BEARER, json_body={"model": "gpt-fake", "input": "hi"}
        )
        assert status == 200, body
        assert json.loads(body)["object"] == "response"
        assert oai.last.json["model"] == "gpt-fake"
    status, _, body = await call(
        "GET", proxy.url + "/api/provider/google/v1beta/models/gemini-fake", headers=BEARER
    )
    assert status == 200 and json.loads(body)["name"] == "models/gemini-fake"
    status, _, _ = await call(
        "GET", proxy.url + "/api/provider/google/v1beta/models/nope", headers=BEARER
    )
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_RTE_11_listings_in_the_provider_family_shape(start_fake, start_proxy):
    claude = start_fake(FakeClaude)
    gemini = start_fake(FakeGemini)
    proxy = start_proxy(amp_config("", providers=claude_provider(claude) + gemini_provider(gemini)))
    p = proxy.url + "/api/provider"
    headers = {"Authorization": BEARER["Authorization"]}
    for path in ("/openai/models", "/groq/models", "/openai/v1/models"):
        status, _, body = await call("GET", p + path, headers=headers)
        assert status == 200 and b'"object":"list"' in body, path
    status, _, body = await call("GET", p + "/anthropic/v1/models", headers=headers)
    listing = json.loads(body)
    assert status == 200 and "data" in listing
    assert any(m["id"] == "claude-fake" for m in listing["data"])
    for path in ("/google/v1/models", "/google/v1beta/models"):
        status, _, body = await call("GET", p + path, headers=headers)
        assert status == 200 and "models" in json.loads(body), path


def test_GEM_01_bridge_action_from_publisher_path():
    assert bridge_action("/publishers/google/models/gemini-pro:generateContent") == (
        "gemini-pro",
        "generateContent",
    )


@pytest_twisted.ensureDeferred
async def test_GEM_02_mapped_model_replaces_the_url_model_method_kept(start_fake, start_proxy):
    gemini = start_fake(FakeGemini)
    extra = "model-mappings:\n  - {from: gemini-2.0-flash, to: gemini-fake}\n"
    proxy = start_proxy(amp_config("", providers=gemini_provider(gemini), extra=extra))
    status, _, body = await call(
        "POST",
        proxy.url
        + "/api/provider/google/v1beta1/publishers/google/models/"
        + "gemini-2.0-flash:streamGenerateContent?alt=sse",
        headers=BEARER,
        json_body={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert status == 200, body
    assert gemini.last.path == "/v1beta/models/gemini-fake:streamGenerateContent"
    events = [json.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: {")]
    text = "".join(
        p.get("text", "")
        for e in events
        for c in e.get("candidates", [])
        for p in c["content"]["parts"]
    )
    assert text == "hello from fake-gemini"
    versions = {e["modelVersion"] for e in events if "modelVersion" in e}
    assert versions == {"gemini-2.0-flash"}  # the client's name comes back
    assert proxy.app.amp.stats.count("MODEL_MAPPING", "gemini-2.0-flash") == 1


@pytest_twisted.ensureDeferred
async def test_GEM_03_bad_bridge_path_is_400(start_fake, start_proxy):
    assert bridge_action("/invalid/path") is None
    assert bridge_action("/publishers/google/models/no-method") is None
    amp = start_fake(FakeAmp)
    proxy = start_proxy(amp_config(amp.url))
    status, _, body = await call(
        "POST",
        proxy.url + "/api/provider/google/v1beta1/publishers/google/models/no-method",
        headers=BEARER,
        json_body={},
    )
    assert status == 400
    assert json.loads(body) == {"error": "Invalid Gemini API path format"}
    assert amp.requests == []
