"""Subscription accounts end to end: token file -> cliproxy -> the matching executor -> fake.

Time for token expiry is the proxy's `task.Clock` (set to T0); the network is loopback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, task

from cliproxy.credentials.authdir import AuthDirWatcher
from tests.fakes import FakeClaude, FakeCloudCode, FakeCodex, FakeOAuth
from tests.oauth.kit import T0, claude_file, codex_file, gemini_file, oauth_config, write_file
from tests.serving_kit import CLIENT_KEY

HOUR = 3600.0


async def post(proxy, path, body, headers=None):
    h = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    h.update(headers or {})
    response = await treq.post(proxy.url + path, json.dumps(body).encode(), headers=h)
    return response.code, await response.content()


async def get(proxy, path):
    response = await treq.get(proxy.url + path, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    return response.code, await response.content()


def chat(model, stream=False, text="hi"):
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}


def sse_text(raw: bytes) -> str:
    out = []
    for line in raw.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:]).get("choices") or ():
                out.append(choice.get("delta", {}).get("content") or "")
    return "".join(out)


# -- one account per provider ------------------------------------------------------------

CASES = {
    # provider: (oauth flavor, provider fake, file builder, file name, model, endpoints kwargs)
    "claude": (
        "claude",
        FakeClaude,
        claude_file,
        "claude-user@example.com.json",
        "claude-sonnet-4-5-20250929",
        "claude",
    ),
    "codex": (
        "codex",
        FakeCodex,
        codex_file,
        "codex-user@example.com-plus.json",
        "gpt-5.4",
        "codex",
    ),
    "gemini-cli": (
        "google",
        FakeCloudCode,
        gemini_file,
        "gemini-user@example.com-fake-project-123.json",
        "gemini-2.5-pro",
        "gemini",
    ),
}


def start_account(
    case, start_fake, start_proxy, tmp_path, *, expires, access="at-old", refresh="rt-old"
):
    flavor, fake_cls, builder, name, model, which = CASES[case]
    oauth = start_fake(FakeOAuth, flavor=flavor)
    oauth.add_refresh_token(refresh)
    upstream = start_fake(fake_cls)
    # the provider accepts exactly the tokens the identity provider issued (plus the first)
    oauth.access_tokens.add(access)
    upstream.keys = oauth.access_tokens
    write_file(tmp_path, name, builder(access, refresh, expires))
    if which == "claude":
        fakes = {"claude_oauth": oauth, "claude_api": upstream}
    elif which == "codex":
        fakes = {"codex_oauth": oauth, "codex_api": upstream}
    else:
        fakes = {"google": oauth, "cloudcode": upstream}
    proxy = start_proxy(oauth_config(tmp_path, **fakes))
    proxy.clock.advance(T0)
    return oauth, upstream, proxy, name, model


@pytest_twisted.ensureDeferred
async def test_claude_account_sends_bearer_betas_and_claude_code_system(
    start_fake, start_proxy, tmp_path
):
    oauth, claude, proxy, _, model = start_account(
        "claude", start_fake, start_proxy, tmp_path, expires=T0 + 8 * HOUR
    )
    body = chat(model)
    body["messages"].insert(0, {"role": "system", "content": "Answer in French."})
    code, raw = await post(proxy, "/v1/chat/completions", body)
    assert code == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from fake-claude"
    rec = claude.last
    assert rec.header("authorization") == "Bearer at-old"
    assert rec.header("x-api-key") is None
    assert rec.header("anthropic-dangerous-direct-browser-access") is None
    betas = rec.header("anthropic-beta").split(",")
    assert "oauth-2025-04-20" in betas and "claude-code-20250219" in betas
    assert rec.json["system"] == [
        {
            "type": "text",
            "text": "You are Claude Code, Anthropic's official CLI for Claude.",
            "cache_control": {"type": "ephemeral"},
        }
    ]
    first = rec.json["messages"][0]
    assert first["role"] == "user"
    assert first["content"][0]["text"] == "<system-reminder>\nAnswer in French.\n</system-reminder>"
    assert rec.json["metadata"]["user_id"].startswith("user_")
    assert oauth.requests == []  # a fresh token needs no refresh


@pytest_twisted.ensureDeferred
async def test_codex_account_streams_upstream_and_aggregates_for_a_plain_client(
    start_fake, start_proxy, tmp_path
):
    _, codex, proxy, _, model = start_account(
        "codex", start_fake, start_proxy, tmp_path, expires=T0 + 9 * 86400
    )
    code, raw = await post(proxy, "/v1/chat/completions", chat(model))
    assert code == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from fake-codex"
    rec = codex.last
    assert rec.path == "/backend-api/codex/responses"
    assert rec.json["stream"] is True and rec.json["store"] is False
    assert rec.header("authorization") == "Bearer at-old"
    assert rec.header("chatgpt-account-id") == "acct-fake-0001"
    assert rec.header("originator") == "codex-tui"
    code, raw = await post(proxy, "/v1/chat/completions", chat(model, stream=True))
    assert code == 200 and sse_text(raw) == "hello from fake-codex"


@pytest_twisted.ensureDeferred
async def test_gemini_cli_account_wraps_requests_and_unwraps_answers(
    start_fake, start_proxy, tmp_path
):
    _, cloud, proxy, _, model = start_account(
        "gemini-cli", start_fake, start_proxy, tmp_path, expires=T0 + HOUR
    )
    code, raw = await post(proxy, "/v1/chat/completions", chat(model))
    assert code == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from fake-gemini-cli"
    rec = cloud.last
    assert rec.path == "/v1internal:generateContent"
    assert rec.json["project"] == "fake-project-123" and rec.json["model"] == model
    assert rec.json["request"]["contents"][0]["role"] == "user"
    assert rec.header("user-agent").startswith(f"GeminiCLI/0.34.0/{model} (")
    assert rec.header("authorization") == "Bearer at-old"
    # streamed, and through the Gemini client API too
    code, raw = await post(proxy, "/v1/chat/completions", chat(model, stream=True))
    assert code == 200 and sse_text(raw) == "hello from fake-gemini-cli"
    assert cloud.last.path == "/v1internal:streamGenerateContent"
    assert cloud.last.arg("alt") == "sse"
    gemini_body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    code, raw = await post(proxy, f"/v1beta/models/{model}:generateContent", gemini_body)
    assert code == 200, raw
    answer = json.loads(raw)
    assert "response" not in answer
    assert answer["candidates"][0]["content"]["parts"][0]["text"] == "hello from fake-gemini-cli"


# -- refresh ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
@pytest_twisted.ensureDeferred
async def test_expired_token_is_refreshed_once_while_50_requests_wait(
    case, start_fake, start_proxy, tmp_path
):
    oauth, upstream, proxy, name, model = start_account(
        case, start_fake, start_proxy, tmp_path, expires=T0 - 60
    )
    # hold the token answer until every request waits on it
    oauth_clock = task.Clock()
    oauth.clock = oauth_clock
    oauth.script("POST", _token_path(case), _delayed(oauth, 1.0))
    holder = proxy.app.authdir.holders()[0]
    requests = [
        defer.ensureDeferred(post(proxy, "/v1/chat/completions", chat(model, text=f"n{i}")))
        for i in range(50)
    ]
    # every request waits, and the one token answer is held by the identity provider
    await upstream.wait_for(
        lambda: holder.waiting == 50 and bool(oauth_clock.getDelayedCalls()), timeout=5
    )
    assert upstream.requests == []
    oauth_clock.advance(1.0)
    results = await defer.gatherResults(requests)
    assert [code for code, _ in results] == [200] * 50
    assert len(oauth.received("POST")) == 1
    assert oauth.last.params["grant_type"] == "refresh_token"
    assert oauth.last.params["refresh_token"] == "rt-old"
    assert len(upstream.requests) == 50
    new_token = upstream.last.key
    assert new_token != "at-old" and {r.key for r in upstream.requests} == {new_token}
    # the new token is on disk, private, and reading it back changes nothing
    path = os.path.join(tmp_path, name)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert new_token in open(path).read()
    registry = proxy.app.registry
    assert proxy.app.authdir.scan() is False
    assert proxy.app.registry is registry


def _token_path(case):
    return (
        "/token"
        if case == "gemini-cli"
        else ("/v1/oauth/token" if case == "claude" else "/oauth/token")
    )


def _delayed(oauth, seconds):
    def respond(rec):
        return dataclasses.replace(oauth._token(rec, None), delay=seconds)

    return respond


@pytest_twisted.ensureDeferred
async def test_a_401_on_a_valid_looking_token_refreshes_once_and_retries(
    start_fake, start_proxy, tmp_path
):
    oauth, claude, proxy, _, model = start_account(
        "claude", start_fake, start_proxy, tmp_path, expires=T0 + 8 * HOUR
    )
    oauth.access_tokens.discard("at-old")  # revoked upstream before its expiry
    code, raw = await post(proxy, "/v1/chat/completions", chat(model))
    assert code == 200, raw
    assert [r.status for r in claude.requests] == [401, 200]
    assert len(oauth.received("POST")) == 1
    assert claude.last.key != "at-old"


@pytest_twisted.ensureDeferred
async def test_invalid_grant_marks_needs_login_and_is_never_hammered(
    start_fake, start_proxy, tmp_path
):
    oauth, claude, proxy, name, model = start_account(
        "claude", start_fake, start_proxy, tmp_path, expires=T0 - 60
    )
    oauth.refresh_tokens.clear()  # the refresh token was revoked
    for _ in range(3):
        code, raw = await post(proxy, "/v1/chat/completions", chat(model))
        assert code == 401, raw
        assert "needs a new login" in raw.decode() and "cliproxy login claude" in raw.decode()
        proxy.clock.advance(3600)  # even after the 30-minute bench ends
    assert len(oauth.received("POST")) == 1
    assert claude.requests == []
    [account] = proxy.app.authdir.accounts()
    assert account.status == "needs-login" and "invalid_grant" in account.last_error
    code, raw = await get(proxy, "/v1/models")
    assert model not in raw.decode()
    # a new login (a new file content) brings it back
    write_file(tmp_path, name, claude_file("at-new", "rt-new", T0 + 20 * HOUR))
    oauth.access_tokens.add("at-new")
    proxy.app.authdir.scan()
    code, raw = await post(proxy, "/v1/chat/completions", chat(model))
    assert code == 200, raw


# -- the auth-dir, live ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_cliproxyapi_file_dropped_in_is_served_and_removing_it_removes_the_account(
    start_fake, start_proxy, tmp_path
):
    codex = start_fake(FakeCodex, keys={"at-cpa"})
    proxy = start_proxy(oauth_config(tmp_path, codex_api=codex))
    proxy.clock.advance(T0)
    watcher = AuthDirWatcher(proxy.app.authdir, proxy.clock, interval=0.5, debounce=1.0)
    watcher.startService()
    try:
        code, _ = await post(proxy, "/v1/chat/completions", chat("gpt-5.4"))
        assert code == 503
        # exactly the bytes CLIProxyAPI writes (Go's json.MarshalIndent, 0600)
        record = codex_file("at-cpa", "rt-cpa", T0 + 9 * 86400)
        path = os.path.join(tmp_path, "codex-user@example.com-plus.json")
        with open(path, "w") as f:
            f.write(json.dumps(record, indent="  "))
        os.chmod(path, 0o600)
        proxy.clock.advance(0.5)  # seen
        code, _ = await post(proxy, "/v1/chat/completions", chat("gpt-5.4"))
        assert code == 503  # not yet: changes settle for a second first
        proxy.clock.advance(1.0)
        code, raw = await post(proxy, "/v1/chat/completions", chat("gpt-5.4"))
        assert code == 200, raw
        assert codex.last.header("chatgpt-account-id") == "acct-fake-0001"
        os.unlink(path)
        proxy.clock.pump([0.5, 0.5, 0.5])
        code, _ = await post(proxy, "/v1/chat/completions", chat("gpt-5.4"))
        assert code == 503
    finally:
        watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_a_gemini_file_without_a_project_finds_one_before_its_first_request(
    start_fake, start_proxy, tmp_path
):
    cloud = start_fake(FakeCloudCode, keys={"at-g"})
    cloud.project = "found-proj-7"
    write_file(
        tmp_path, "gemini-user@example.com-auto.json", gemini_file("at-g", "rt", T0 + HOUR, "")
    )
    proxy = start_proxy(oauth_config(tmp_path, cloudcode=cloud))
    proxy.clock.advance(T0)
    for _ in range(2):
        code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-2.5-flash"))
        assert code == 200, raw
    paths = [r.path for r in cloud.requests]
    assert paths == [
        "/v1internal:loadCodeAssist",
        "/v1internal:generateContent",
        "/v1internal:generateContent",
    ]
    assert cloud.last.json["project"] == "found-proj-7"
