"""Kimi Code accounts: token file -> KimiExecutor -> a strict fake; refresh at the token URL."""

from __future__ import annotations

import json

import pytest_twisted

from cliproxy.credentials.store import format_time
from tests.fakes.kimi import FakeKimi, FakeKimiAuth
from tests.oauth.kit import T0, config_text, write_file
from tests.oauth.test_serving_oauth import chat, get, post, sse_text


def kimi_file(access, refresh, expires, device="dev-0001"):
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "scope": "kimi-code",
        "device_id": device,
        "expired": format_time(expires),
        "type": "kimi",
    }


def start_kimi(start_fake, start_proxy, tmp_path, expires):
    oauth = start_fake(FakeKimiAuth)
    oauth.add_refresh_token("rt-old")
    kimi = start_fake(FakeKimi)
    oauth.access_tokens.add("at-old")
    kimi.keys = oauth.access_tokens
    write_file(tmp_path, "kimi-user.json", kimi_file("at-old", "rt-old", expires))
    endpoints = (
        f"oauth-endpoints:\n  kimi:\n    token-url: {oauth.url}/api/oauth/token\n"
        f"    api-url: {kimi.url}\n"
    )
    proxy = start_proxy(config_text(f"auth-dir: {tmp_path}\n", endpoints))
    proxy.clock.advance(T0)
    return oauth, kimi, proxy


@pytest_twisted.ensureDeferred
async def test_kimi_account_serves_chat_with_bearer_and_device_headers(
    start_fake, start_proxy, tmp_path
):
    oauth, kimi, proxy = start_kimi(start_fake, start_proxy, tmp_path, T0 + 3600)
    code, raw = await post(proxy, "/v1/chat/completions", chat("kimi-k2"))
    assert code == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello from fake-kimi"
    rec = kimi.last
    assert rec.path == "/v1/chat/completions" and rec.json["model"] == "kimi-k2"
    assert rec.header("authorization") == "Bearer at-old"
    assert rec.header("x-msh-device-id") == "dev-0001"
    assert rec.header("x-msh-platform") == "CLIProxyAPI"
    code, raw = await post(proxy, "/v1/chat/completions", chat("kimi-k2", stream=True))
    assert code == 200 and sse_text(raw) == "hello from fake-kimi"
    assert oauth.requests == []


@pytest_twisted.ensureDeferred
async def test_an_expired_kimi_token_is_refreshed_first(start_fake, start_proxy, tmp_path):
    oauth, kimi, proxy = start_kimi(start_fake, start_proxy, tmp_path, T0 - 60)
    code, raw = await post(proxy, "/v1/chat/completions", chat("kimi-k2.5"))
    assert code == 200, raw
    form = oauth.last.form
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "rt-old"
    assert form["client_id"] == "17e5f671-d194-4dfb-9706-5516cb48c098"
    # the refresh carries the device headers, with the file's device id (as the API calls)
    assert oauth.last.header("x-msh-device-id") == "dev-0001"
    assert oauth.last.header("x-msh-platform") == "CLIProxyAPI"
    assert kimi.last.header("authorization") != "Bearer at-old"
    saved = json.loads((tmp_path / "kimi-user.json").read_text())
    assert saved["type"] == "kimi" and saved["access_token"] != "at-old"
    assert saved["device_id"] == "dev-0001"


@pytest_twisted.ensureDeferred
async def test_kimi_section_is_listed(start_fake, start_proxy, tmp_path):
    _, _, proxy = start_kimi(start_fake, start_proxy, tmp_path, T0 + 3600)
    code, raw = await get(proxy, "/v1/models")
    ids = {m["id"] for m in json.loads(raw)["data"]}
    assert {"kimi-k2", "kimi-k2.5", "kimi-k3"} <= ids
