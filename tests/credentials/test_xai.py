"""xAI accounts: token files (CLIProxyAPI's `xai-*.json`) served through the Grok CLI chat
proxy or the API, refreshed at their token endpoint, and `cliproxy login xai`."""

from __future__ import annotations

import json
import os
import stat

import pytest_twisted
from twisted.internet import reactor

from cliproxy.config import parse_config
from cliproxy.config.model import OAuthEndpoints
from cliproxy.credentials.oauth.device import DEVICE_GRANT
from cliproxy.credentials.oauth.providers import XAI
from cliproxy.credentials.oauth.refresh_rules import XAI_TOKEN_URL, refresh_url
from cliproxy.credentials.oauth.xai_login import xai_device_login
from cliproxy.credentials.store import format_time
from cliproxy.upstream.http import UpstreamHTTP
from tests.fakes import FakeOAuth, FakeUpstream, Reply, oauth_error_reply, unsigned_jwt
from tests.fakes.xai import FakeGrokChatProxy, FakeXAI
from tests.oauth.kit import T0, config_text, write_file
from tests.oauth.test_serving_oauth import get, post

FILE = "xai-user@example.com.json"


def xai_file(access, refresh, expires, **extra):
    return {
        "type": "xai",
        "auth_kind": "oauth",
        "access_token": access,
        "refresh_token": refresh,
        "expired": format_time(expires),
        "email": "user@example.com",
        "base_url": "https://api.x.ai/v1",
        "token_endpoint": "https://auth.x.ai/oauth2/token",
        **extra,
    }


def responses(model, text="hi"):
    return {"model": model, "input": text}


def start(start_fake, start_proxy, tmp_path, expires, fake=FakeGrokChatProxy, **fields):
    oauth = start_fake(FakeOAuth, flavor="generic")
    oauth.client_id = XAI.client_id
    oauth.add_refresh_token("rt-old")
    oauth.access_tokens.add("at-old")
    upstream = start_fake(fake)
    upstream.keys = oauth.access_tokens
    if fake is FakeXAI:
        fields.setdefault("base_url", upstream.url + "/v1")
    write_file(tmp_path, FILE, xai_file("at-old", "rt-old", expires, **fields))
    section = (
        f"oauth-endpoints:\n  xai:\n    token-url: {oauth.url}/oauth2/token\n"
        f"    api-url: {upstream.url}/v1\n"
    )
    proxy = start_proxy(config_text(f"auth-dir: {tmp_path}\n", section))
    proxy.clock.advance(T0)
    return oauth, upstream, proxy


@pytest_twisted.ensureDeferred
async def test_an_xai_file_chats_through_the_grok_cli_proxy(start_fake, start_proxy, tmp_path):
    oauth, proxy_fake, proxy = start(start_fake, start_proxy, tmp_path, T0 + 3600)
    code, raw = await post(proxy, "/v1/responses", responses("grok-4.3"))
    assert code == 200, raw
    assert json.loads(raw)["status"] == "completed"
    rec = proxy_fake.last
    assert rec.path == "/v1/responses" and rec.json["stream"] is True
    assert rec.header("authorization") == "Bearer at-old"
    assert rec.header("x-xai-token-auth") == "xai-grok-cli"
    assert rec.header("user-agent").startswith("xai-grok-workspace/")
    assert oauth.requests == []
    code, raw = await get(proxy, "/v1/models")
    assert "grok-4.3" in {m["id"] for m in json.loads(raw)["data"]}


@pytest_twisted.ensureDeferred
async def test_using_api_sends_to_the_api_without_the_cli_headers(
    start_fake, start_proxy, tmp_path
):
    _, api, proxy = start(start_fake, start_proxy, tmp_path, T0 + 3600, FakeXAI, using_api=True)
    code, raw = await post(proxy, "/v1/responses", responses("grok-3-mini"))
    assert code == 200, raw
    assert api.last.header("authorization") == "Bearer at-old"
    assert api.last.header("x-xai-token-auth") is None


@pytest_twisted.ensureDeferred
async def test_an_expired_xai_token_is_refreshed_and_saved(start_fake, start_proxy, tmp_path):
    oauth, proxy_fake, proxy = start(start_fake, start_proxy, tmp_path, T0 - 60)
    code, raw = await post(proxy, "/v1/responses", responses("grok-4.3"))
    assert code == 200, raw
    form = oauth.last.form
    assert form == {
        "client_id": XAI.client_id,
        "grant_type": "refresh_token",
        "refresh_token": "rt-old",
    }
    assert proxy_fake.last.header("authorization") != "Bearer at-old"
    saved = json.loads((tmp_path / FILE).read_text())
    assert saved["type"] == "xai" and saved["access_token"] != "at-old"
    assert saved["refresh_token"] != "rt-old"  # rotated
    assert saved["token_endpoint"] == "https://auth.x.ai/oauth2/token"


def test_a_token_endpoint_off_x_ai_in_a_file_is_not_used():
    record = {"token_endpoint": "https://evil.example/oauth/token"}
    assert refresh_url(XAI, OAuthEndpoints(), record) == XAI_TOKEN_URL
    record = {"token_endpoint": "https://auth.x.ai/oauth2/token2"}
    assert refresh_url(XAI, OAuthEndpoints(), record) == "https://auth.x.ai/oauth2/token2"


def xai_identity(start_fake, interval=0):
    """A fake auth.x.ai: discovery, a device code, one pending poll, then tokens."""
    auth = start_fake(FakeUpstream)
    auth.script(
        "GET",
        "/.well-known/openid-configuration",
        Reply(
            json={
                "device_authorization_endpoint": auth.url + "/oauth2/device/code",
                "token_endpoint": auth.url + "/oauth2/token",
            }
        ),
    )
    code = {
        "device_code": "dc-x",
        "user_code": "GROK-1234",
        "verification_uri": "https://accounts.x.ai/device",
        "verification_uri_complete": "https://accounts.x.ai/device?code=GROK-1234",
        "expires_in": 600,
        "interval": interval,
    }
    auth.script("POST", "/oauth2/device/code", Reply(json=code))
    tokens = {
        "access_token": "at-x",
        "refresh_token": "rt-x",
        "id_token": unsigned_jwt({"email": "user@example.com", "sub": "u-1"}),
        "expires_in": 3600,
        "token_type": "Bearer",
    }
    auth.script(
        "POST", "/oauth2/token", oauth_error_reply(400, "authorization_pending"), Reply(json=tokens)
    )
    return auth


@pytest_twisted.ensureDeferred
async def test_xai_device_login_discovers_polls_and_saves(start_fake, start_proxy, tmp_path):
    auth = xai_identity(start_fake)
    config = parse_config(
        f"auth-dir: {tmp_path}\noauth-endpoints:\n  xai:\n    issuer-url: {auth.url}\n", "c.yaml"
    )
    printed: list[str] = []
    http = UpstreamHTTP(reactor)
    try:
        path = await xai_device_login(
            http,
            reactor,
            config.oauth_endpoints.xai,
            str(tmp_path),
            printed.append,
            min_interval=0.01,
        )
    finally:
        await http.close()
    assert "GROK-1234" in "\n".join(printed)
    device = auth.received("POST", "/oauth2/device/code")[0].form
    assert device["client_id"] == XAI.client_id and "grok-cli:access" in device["scope"]
    polls = auth.received("POST", "/oauth2/token")
    assert len(polls) == 2 and polls[0].form["grant_type"] == DEVICE_GRANT
    assert os.path.basename(path) == FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    record = json.loads(open(path).read())
    assert record["type"] == "xai" and record["auth_kind"] == "oauth"
    assert record["access_token"] == "at-x" and record["sub"] == "u-1"
    assert record["token_endpoint"] == auth.url + "/oauth2/token"
    assert "rt-x" not in "\n".join(printed)


def test_cliproxyapis_xai_login_flag():
    from cliproxy.cli import parse_args

    args = parse_args(["-xai-login"])
    assert (args.command, args.provider) == ("login", "xai")
