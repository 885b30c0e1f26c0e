"""Vertex service accounts end to end: auth file -> minted token -> project-scoped Vertex URL.

The Google token endpoint and Vertex are loopback fakes (tests/fakes/vertex.py); the
file's `base_url` and `token_uri` point at them. The proxy's clock starts at T0.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from cliproxy.credentials.model import Credential
from cliproxy.upstream import executor_for
from cliproxy.upstream.vertex_sa import ServiceAccountCall
from tests.fakes.vertex import FakeGoogleToken, FakeVertex, service_account_json
from tests.oauth.kit import T0, oauth_config, write_file
from tests.oauth.test_serving_oauth import chat, post, sse_text

MODEL = "gemini-2.5-pro"


@pytest.fixture(scope="module")
def sa_pair():
    return service_account_json()


def start_vertex(start_fake, start_proxy, tmp_path, sa_pair, location="us-central1"):
    sa, public = sa_pair
    proxy_holder: list = []
    google = start_fake(FakeGoogleToken, now=lambda: proxy_holder[0].clock.seconds())
    google.trust(sa["client_email"], public)
    vertex = start_fake(FakeVertex, project=sa["project_id"])
    vertex.keys = google.access_tokens
    record = {
        "type": "vertex",
        "service_account": sa,
        "project_id": sa["project_id"],
        "email": sa["client_email"],
        "location": location,
        "base_url": vertex.url,
        "token_uri": google.url + "/token",
    }
    write_file(tmp_path, "vertex-fake-project.json", record)
    proxy = start_proxy(oauth_config(tmp_path))
    proxy_holder.append(proxy)
    proxy.clock.advance(T0)
    return google, vertex, proxy


@pytest_twisted.ensureDeferred
async def test_service_account_serves_chat_with_a_minted_bearer_token(
    start_fake, start_proxy, tmp_path, sa_pair
):
    google, vertex, proxy = start_vertex(start_fake, start_proxy, tmp_path, sa_pair)
    code, raw = await post(proxy, "/v1/chat/completions", chat(MODEL))
    assert code == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from fake-vertex"
    rec = vertex.last
    assert rec.path == (
        f"/v1/projects/fake-project/locations/us-central1/publishers/google/models/{MODEL}"
        ":generateContent"
    )
    assert rec.header("authorization") == "Bearer ya29.fake-0001"
    assert rec.header("x-goog-api-key") is None
    code, raw = await post(proxy, "/v1/chat/completions", chat(MODEL, stream=True))
    assert code == 200 and sse_text(raw) == "hello from fake-vertex"
    assert vertex.last.arg("alt") == "sse"
    assert len(google.requests) == 1  # the token is cached
    code, raw = await post(proxy, "/v1/chat/completions", chat(MODEL))
    assert code == 200 and len(google.requests) == 1


@pytest_twisted.ensureDeferred
async def test_an_expired_token_is_minted_again_and_a_revoked_one_after_401(
    start_fake, start_proxy, tmp_path, sa_pair
):
    google, vertex, proxy = start_vertex(start_fake, start_proxy, tmp_path, sa_pair)
    assert (await post(proxy, "/v1/chat/completions", chat(MODEL)))[0] == 200
    proxy.clock.advance(3400)
    assert (await post(proxy, "/v1/chat/completions", chat(MODEL)))[0] == 200
    assert vertex.last.header("authorization") == "Bearer ya29.fake-0002"
    google.access_tokens.discard("ya29.fake-0002")  # revoked upstream
    code, raw = await post(proxy, "/v1/chat/completions", chat(MODEL))
    assert code == 200, raw
    assert vertex.last.header("authorization") == "Bearer ya29.fake-0003"


@pytest_twisted.ensureDeferred
async def test_a_key_google_refuses_answers_401_without_calling_vertex(
    start_fake, start_proxy, tmp_path, sa_pair
):
    other = service_account_json()[1]
    google, vertex, proxy = start_vertex(start_fake, start_proxy, tmp_path, sa_pair)
    google.trust(sa_pair[0]["client_email"], other)
    code, raw = await post(proxy, "/v1/chat/completions", chat(MODEL))
    assert code in (401, 503), raw
    assert vertex.requests == []
    assert b"Invalid JWT Signature" in raw


@pytest_twisted.ensureDeferred
async def test_the_vertex_models_are_listed(start_fake, start_proxy, tmp_path, sa_pair):
    _, _, proxy = start_vertex(start_fake, start_proxy, tmp_path, sa_pair)
    response = await __import__("treq").get(
        proxy.url + "/v1/models",
        headers={"Authorization": "Bearer sk-cliproxy-test-9999"},
    )
    ids = {m["id"] for m in json.loads(await response.content())["data"]}
    assert {MODEL, "imagen-4.0-generate-001"} <= ids


def test_global_location_builds_the_global_url(tmp_path, sa_pair):
    from twisted.internet import task

    from cliproxy.config import OAuthEndpoints
    from cliproxy.credentials.authdir import AuthDir

    sa, _ = sa_pair
    record = {"type": "vertex", "service_account": sa, "location": "global"}
    write_file(tmp_path, "vertex-g.json", record)
    authdir = AuthDir(lambda: str(tmp_path), task.Clock(), OAuthEndpoints)
    authdir.scan()
    cred: Credential = authdir.credentials()[0]
    call = executor_for(cred).build(
        cred,
        model=MODEL,
        body={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        stream=True,
    )
    assert isinstance(call, ServiceAccountCall)
    assert call.url == (
        "https://aiplatform.googleapis.com/v1/projects/fake-project/locations/global"
        f"/publishers/google/models/{MODEL}:streamGenerateContent?alt=sse"
    )
    assert "authorization" not in {k.lower() for k in call.headers}


@pytest_twisted.ensureDeferred
async def test_an_imagen_model_is_served_through_predict(
    start_fake, start_proxy, tmp_path, sa_pair
):
    _, vertex, proxy = start_vertex(start_fake, start_proxy, tmp_path, sa_pair)
    body = {"contents": [{"role": "user", "parts": [{"text": "a red fox"}]}], "aspectRatio": "1:1"}
    code, raw = await post(proxy, "/v1beta/models/imagen-4.0-generate-001:generateContent", body)
    assert code == 200, raw
    rec = vertex.last
    assert rec.path.endswith("/publishers/google/models/imagen-4.0-generate-001:predict")
    assert rec.json == {
        "instances": [{"prompt": "a red fox"}],
        "parameters": {"sampleCount": 1, "aspectRatio": "1:1"},
    }
    answer = json.loads(raw)
    part = answer["candidates"][0]["content"]["parts"][0]
    assert part["inlineData"] == {"mimeType": "image/png", "data": "aW1hZ2UtYnl0ZXM="}
