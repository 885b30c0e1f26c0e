"""Antigravity accounts: token file -> AntigravityExecutor -> a strict fake Cloud Code;
refresh with Antigravity's Google client; project discovery; the catalog section."""

from __future__ import annotations

import json

import pytest_twisted

from cliproxy.credentials.oauth.providers import ANTIGRAVITY
from cliproxy.credentials.store import format_time
from tests.fakes import FakeOAuth
from tests.fakes.antigravity import FakeAntigravity
from tests.oauth.kit import T0, config_text, write_file
from tests.oauth.test_serving_oauth import chat, get, post, sse_text

FILE = "antigravity-user@example.com.json"


def antigravity_file(access, refresh, expires, project="fake-project-123", **extra):
    record = {
        "type": "antigravity",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": 3599,
        "timestamp": int((expires - 3599) * 1000),
        "expired": format_time(expires),
        "email": "user@example.com",
        **extra,
    }
    if project:
        record["project_id"] = project
    return record


def endpoints(oauth, upstream):
    return (
        "oauth-endpoints:\n  antigravity:\n"
        f"    token-url: {oauth.url}/token\n"
        f"    userinfo-url: {oauth.url}/oauth2/v2/userinfo\n"
        f"    api-url: {upstream.url}\n"
        f"    code-assist-url: {upstream.url}\n"
    )


def start(start_fake, start_proxy, tmp_path, expires, **file_fields):
    oauth = start_fake(FakeOAuth, flavor="google")
    oauth.client_id = ANTIGRAVITY.client_id
    oauth.client_secret = ANTIGRAVITY.client_secret
    oauth.add_refresh_token("rt-old")
    oauth.access_tokens.add("at-old")
    upstream = start_fake(FakeAntigravity)
    upstream.keys = oauth.access_tokens
    write_file(tmp_path, FILE, antigravity_file("at-old", "rt-old", expires, **file_fields))
    proxy = start_proxy(config_text(f"auth-dir: {tmp_path}\n", endpoints(oauth, upstream)))
    proxy.clock.advance(T0)
    return oauth, upstream, proxy


@pytest_twisted.ensureDeferred
async def test_antigravity_account_serves_chat_in_its_envelope(start_fake, start_proxy, tmp_path):
    oauth, upstream, proxy = start(start_fake, start_proxy, tmp_path, T0 + 3600)
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash", text="Hello"))
    assert code == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from fake-antigravity"
    rec = upstream.last
    assert rec.path == "/v1internal:generateContent"
    assert rec.header("authorization") == "Bearer at-old"
    assert rec.header("user-agent").startswith("antigravity/hub/")
    body = rec.json
    assert body["project"] == "fake-project-123" and body["model"] == "gemini-3-flash"
    assert body["userAgent"] == "antigravity" and body["requestType"] == "agent"
    assert body["requestId"].startswith("agent-")
    assert body["request"]["sessionId"].startswith("-")
    assert "safetySettings" not in body["request"]
    first_session = body["request"]["sessionId"]
    code, raw = await post(
        proxy, "/v1/chat/completions", chat("gemini-3-flash", stream=True, text="Hello")
    )
    assert code == 200 and sse_text(raw) == "hello from fake-antigravity"
    assert upstream.last.path == "/v1internal:streamGenerateContent"
    assert upstream.last.arg("alt") == "sse"
    # one conversation keeps its session id, so Cloud Code keeps its cache
    assert upstream.last.json["request"]["sessionId"] == first_session
    assert oauth.requests == []


@pytest_twisted.ensureDeferred
async def test_claude_models_are_sent_with_validated_function_calling(
    start_fake, start_proxy, tmp_path
):
    _, upstream, proxy = start(start_fake, start_proxy, tmp_path, T0 + 3600)
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "name": "weather",
                "input_schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "additionalProperties": False,
                },
            }
        ],
    }
    code, raw = await post(proxy, "/v1/messages", body)
    assert code == 200, raw
    assert json.loads(raw)["content"][0]["text"] == "hello from fake-antigravity"
    # Claude models are streamed upstream even for a plain request, and gathered here
    assert upstream.last.path == "/v1internal:streamGenerateContent"
    request = upstream.last.json["request"]
    assert request["toolConfig"]["functionCallingConfig"]["mode"] == "VALIDATED"
    decl = request["tools"][0]["functionDeclarations"][0]
    assert "parametersJsonSchema" not in decl
    assert decl["parameters"]["properties"]["city"]["type"] == "string"


@pytest_twisted.ensureDeferred
async def test_an_expired_token_is_refreshed_with_antigravitys_client(
    start_fake, start_proxy, tmp_path
):
    oauth, upstream, proxy = start(start_fake, start_proxy, tmp_path, T0 - 60)
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash"))
    assert code == 200, raw
    form = oauth.last.form
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "rt-old"
    assert form["client_id"] == ANTIGRAVITY.client_id
    assert form["client_secret"] == ANTIGRAVITY.client_secret
    assert upstream.last.header("authorization") != "Bearer at-old"
    saved = json.loads((tmp_path / FILE).read_text())
    assert saved["type"] == "antigravity" and saved["access_token"] != "at-old"
    assert saved["refresh_token"] == "rt-old"  # Google keeps the refresh token
    assert saved["project_id"] == "fake-project-123"
    assert saved["timestamp"] == int(proxy.clock.seconds() * 1000)
    assert saved["expires_in"] > 0


@pytest_twisted.ensureDeferred
async def test_a_file_without_a_project_is_onboarded_before_its_first_request(
    start_fake, start_proxy, tmp_path
):
    _, upstream, proxy = start(start_fake, start_proxy, tmp_path, T0 + 3600, project="")
    upstream.project = None
    upstream.onboard_project = "onboarded-77"
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash"))
    assert code == 200, raw
    paths = [r.path for r in upstream.requests]
    assert paths == [
        "/v1internal:loadCodeAssist",
        "/v1internal:onboardUser",
        "/v1internal:generateContent",
    ]
    load, onboard = upstream.requests[0].json, upstream.requests[1].json
    assert load == {"metadata": {"ideType": "ANTIGRAVITY"}}
    assert onboard["tier_id"] == "free-tier"
    assert onboard["metadata"]["ide_type"] == "ANTIGRAVITY"
    assert upstream.last.json["project"] == "onboarded-77"


@pytest_twisted.ensureDeferred
async def test_an_outdated_client_version_in_the_file_is_refused_by_the_service(
    start_fake, start_proxy, tmp_path
):
    _, upstream, proxy = start(
        start_fake, start_proxy, tmp_path, T0 + 3600, user_agent="antigravity/1.11.5 darwin/arm64"
    )
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash"))
    assert code == 400, raw
    assert "no longer supported" in raw.decode()
    assert upstream.last.header("user-agent") == "antigravity/1.11.5 darwin/arm64"


@pytest_twisted.ensureDeferred
async def test_the_antigravity_section_is_listed(start_fake, start_proxy, tmp_path):
    _, _, proxy = start(start_fake, start_proxy, tmp_path, T0 + 3600)
    code, raw = await get(proxy, "/v1/models")
    assert code == 200
    models = {m["id"]: m for m in json.loads(raw)["data"]}
    assert {"gemini-3-flash", "claude-sonnet-4-6", "gpt-oss-120b-medium"} <= set(models)
    assert models["gemini-3-flash"]["owned_by"] == "antigravity"


def start_two_hosts(start_fake, start_proxy, tmp_path, **file_fields):
    """An account whose daily host (`api-url`) and production host (`code-assist-url`) are
    two fakes."""
    oauth = start_fake(FakeOAuth, flavor="google")
    oauth.access_tokens.add("at-old")
    daily, prod = start_fake(FakeAntigravity), start_fake(FakeAntigravity)
    daily.keys = prod.keys = oauth.access_tokens
    write_file(tmp_path, FILE, antigravity_file("at-old", "rt-old", T0 + 3600, **file_fields))
    section = (
        "oauth-endpoints:\n  antigravity:\n"
        f"    token-url: {oauth.url}/token\n"
        f"    api-url: {daily.url}\n"
        f"    code-assist-url: {prod.url}\n"
    )
    proxy = start_proxy(config_text(f"auth-dir: {tmp_path}\n", section))
    proxy.clock.advance(T0)
    return daily, prod, proxy


@pytest_twisted.ensureDeferred
async def test_a_rate_limited_daily_host_hands_the_call_to_production_once(
    start_fake, start_proxy, tmp_path
):
    daily, prod, proxy = start_two_hosts(start_fake, start_proxy, tmp_path)
    daily.script_error(429, "Resource has been exhausted (e.g. check quota).")
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash"))
    assert code == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from fake-antigravity"
    assert [r.status for r in daily.requests] == [429]
    assert len(prod.requests) == 1 and prod.last.json == daily.last.json
    # a 503 that is not about capacity is the answer; one about capacity moves too
    daily.script_error(503, "The service is currently unavailable.")
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash"))
    assert code == 503 and len(prod.requests) == 1
    proxy.clock.advance(900)  # the account rests after a 503; let it come back
    daily.script_error(503, "No capacity available for model gemini-3-flash on the server")
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash"))
    assert code == 200 and len(prod.requests) == 2


@pytest_twisted.ensureDeferred
async def test_a_files_own_base_url_has_no_fallback(start_fake, start_proxy, tmp_path):
    own = start_fake(FakeAntigravity)
    daily, prod, proxy = start_two_hosts(start_fake, start_proxy, tmp_path, base_url=own.url)
    own.keys = daily.keys
    own.script_error(429, "Resource has been exhausted (e.g. check quota).")
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash"))
    assert code == 429, raw
    assert len(own.requests) == 1 and daily.requests == [] and prod.requests == []


def test_image_models_are_image_gen_requests_without_a_session():
    from cliproxy.upstream.antigravity import antigravity_payload

    body = {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {"maxOutputTokens": 100, "temperature": 1},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
    }
    payload = antigravity_payload("gemini-3.1-flash-image", body, "p-1")
    assert payload["requestType"] == "image_gen" and payload["project"] == "p-1"
    kind, millis, _uuid, tail = payload["requestId"].split("/")
    assert (kind, tail) == ("image_gen", "12") and millis.isdigit()
    request = payload["request"]
    assert "sessionId" not in request and "safetySettings" not in request
    assert request["generationConfig"] == {"temperature": 1}  # no maxOutputTokens off Claude
    assert body["generationConfig"]["maxOutputTokens"] == 100  # the input is not changed
    same = antigravity_payload("gemini-3-flash", body, "p-1")["request"]["sessionId"]
    again = dict(body, contents=body["contents"] + [{"role": "model", "parts": [{"text": "ok"}]}])
    assert antigravity_payload("gemini-3-flash", again, "p-1")["request"]["sessionId"] == same
