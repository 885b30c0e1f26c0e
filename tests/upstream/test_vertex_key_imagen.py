"""Imagen through `vertex-api-key` entries: `:predict` with the key, the answer as Gemini's."""

from __future__ import annotations

import json

import pytest_twisted

from tests.fakes.vertex import FAKE_IMAGE_B64, FakeVertexKey
from tests.oauth.test_serving_oauth import chat, get, post
from tests.serving_kit import config_text

IMAGEN = "imagen-4.0-generate-001"


def start(start_fake, start_proxy):
    vertex = start_fake(FakeVertexKey, keys={"vk-1"})
    proxy = start_proxy(
        config_text(f"vertex-api-key:\n  - api-key: vk-1\n    base-url: {vertex.url}\n")
    )
    return vertex, proxy


@pytest_twisted.ensureDeferred
async def test_an_imagen_model_is_served_through_predict_with_the_key(start_fake, start_proxy):
    vertex, proxy = start(start_fake, start_proxy)
    body = {"contents": [{"role": "user", "parts": [{"text": "a red fox"}]}], "sampleCount": 2}
    code, raw = await post(proxy, f"/v1beta/models/{IMAGEN}:generateContent", body)
    assert code == 200, raw
    rec = vertex.last
    assert rec.path == f"/v1/publishers/google/models/{IMAGEN}:predict"
    assert rec.header("x-goog-api-key") == "vk-1"
    assert rec.json == {"instances": [{"prompt": "a red fox"}], "parameters": {"sampleCount": 2}}
    parts = json.loads(raw)["candidates"][0]["content"]["parts"]
    assert [p["inlineData"]["data"] for p in parts] == [FAKE_IMAGE_B64, FAKE_IMAGE_B64]
    # OpenAI clients get the same images
    code, raw = await post(proxy, "/v1/chat/completions", chat(IMAGEN, text="a blue fox"))
    assert code == 200, raw
    assert vertex.last.json["instances"] == [{"prompt": "a blue fox"}]


@pytest_twisted.ensureDeferred
async def test_gemini_models_still_use_generate_content_and_imagen_is_listed(
    start_fake, start_proxy
):
    vertex, proxy = start(start_fake, start_proxy)
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-2.5-flash"))
    assert code == 200, raw
    assert vertex.last.path == "/v1/publishers/google/models/gemini-2.5-flash:generateContent"
    code, raw = await get(proxy, "/v1/models")
    assert IMAGEN in {m["id"] for m in json.loads(raw)["data"]}


@pytest_twisted.ensureDeferred
async def test_a_streamed_imagen_request_is_refused_without_calling_vertex(start_fake, start_proxy):
    vertex, proxy = start(start_fake, start_proxy)
    code, raw = await post(proxy, "/v1/chat/completions", chat(IMAGEN, stream=True))
    assert code >= 400, raw
    assert "stream" in raw.decode()
    assert vertex.requests == []
