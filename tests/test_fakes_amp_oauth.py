"""`FakeAmp` and `FakeOAuth` over loopback sockets."""

import base64
import gzip
import json
from urllib.parse import parse_qs, urlencode, urlparse

import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from tests.fakes import FakeAmp, FakeOAuth, Reply, pkce_challenge


async def call(method, url, pool, **kwargs):
    response = await treq.request(method, url, pool=pool, unbuffered=True, **kwargs)
    reads = []
    await treq.collect(response, reads.append)
    return response, b"".join(reads)


@pytest_twisted.ensureDeferred
async def test_amp_control_plane_echoes_and_checks_keys(start_fake, http_pool):
    amp = start_fake(FakeAmp, keys={"amp-up"})
    hdr = {"X-Api-Key": "amp-up", "Authorization": "Bearer amp-up"}
    _, raw = await call(
        "POST",
        amp.url + "/api/internal?getUserInfo",
        http_pool,
        headers={**hdr, "Content-Encoding": "gzip"},
        data=gzip.compress(b'{"method":"getUserInfo","params":{}}'),
    )
    answer = json.loads(raw)
    assert answer["ok"] is True and answer["result"]["email"] == "amp-user@example.com"
    assert answer["echo"]["json"] == {"method": "getUserInfo", "params": {}}

    _, raw = await call("GET", amp.url + "/api/threads?limit=2", http_pool, headers=hdr)
    assert json.loads(raw)["echo"]["query"] == {"limit": ["2"]}
    _, raw = await call("DELETE", amp.url + "/api/telemetry/x", http_pool, headers=hdr)
    assert json.loads(raw)["echo"]["method"] == "DELETE"
    _, raw = await call("POST", amp.url + "/api/thread-actors", http_pool, headers=hdr, json={})
    actor = json.loads(raw)
    assert actor["threadId"] == "T-fake-0001" and actor["wsToken"]

    denied, _ = await call("GET", amp.url + "/api/user", http_pool, headers={"X-Api-Key": "x"})
    assert denied.code == 401


@pytest_twisted.ensureDeferred
async def test_amp_provider_routes_speak_each_api(fake_amp, http_pool):
    msg = {"role": "user", "content": "hi"}
    _, raw = await call(
        "POST",
        fake_amp.url + "/api/provider/anthropic/v1/messages",
        http_pool,
        json={"model": "claude-x", "max_tokens": 5, "messages": [msg]},
    )
    assert json.loads(raw)["content"][0]["text"] == "hello from fake-amp"
    _, raw = await call(
        "POST",
        fake_amp.url + "/api/provider/openai/v1/chat/completions",
        http_pool,
        json={"model": "gpt-x", "messages": [msg]},
    )
    assert json.loads(raw)["object"] == "chat.completion"
    path = "/api/provider/google/v1beta1/publishers/google/models/gemini-3-flash:generateContent"
    _, raw = await call(
        "POST",
        fake_amp.url + path,
        http_pool,
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert json.loads(raw)["modelVersion"] == "gemini-3-flash"
    _, raw = await call("GET", fake_amp.url + "/api/provider/anthropic/v1/models", http_pool)
    assert "data" in json.loads(raw)
    page, raw = await call("GET", fake_amp.url + "/threads/T-1", http_pool)
    assert page.code == 200 and b"fake-amp /threads/T-1" in raw


@pytest_twisted.ensureDeferred
async def test_amp_gzip_reply_without_header_can_be_scripted(fake_amp, http_pool):
    fake_amp.script(
        "GET", "/api/user", Reply(json={"upstream": "ok"}, gzip=True, content_encoding=False)
    )
    _, raw = await call("GET", fake_amp.url + "/api/user", http_pool)
    assert json.loads(gzip.decompress(raw)) == {"upstream": "ok"}


@pytest_twisted.ensureDeferred
async def test_amp_gateway_upgrades_to_an_echo_tunnel(fake_amp):
    arrived = defer.Deferred()

    class Client(Protocol):
        buf = b""

        def connectionMade(self):
            self.transport.write(
                b"GET /actors/gateway/threadActor/websocket/?rvt-key=T-1 HTTP/1.1\r\n"
                b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\r\n"
            )

        def dataReceived(self, data):
            if not self.buf:
                self.transport.write(b"ping-bytes")
            self.buf += data
            if self.buf.endswith(b"ping-bytes"):
                arrived.callback(self.buf)

    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", fake_amp.port)
    proto = await connectProtocol(endpoint, Client())
    data = await arrived
    assert data.startswith(b"HTTP/1.1 101 ")
    assert fake_amp.last.upgraded and fake_amp.last.arg("rvt-key") == "T-1"
    proto.transport.loseConnection()
    assert await fake_amp.last.when_done(timeout=1.0) == "client-gone"


VERIFIER = "v" * 64


@pytest_twisted.ensureDeferred
async def test_oauth_code_exchange_checks_pkce_and_accepts_json(start_fake, http_pool):
    oauth = start_fake(FakeOAuth, flavor="claude")
    code = oauth.issue_code(verifier=VERIFIER, redirect_uri="http://localhost:54545/callback")
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": "wrong",
        "redirect_uri": "http://localhost:54545/callback",
    }
    bad, raw = await call("POST", oauth.url + "/v1/oauth/token", http_pool, json=body)
    assert bad.code == 400 and json.loads(raw)["error"] == "invalid_grant"

    code = oauth.issue_code(verifier=VERIFIER, redirect_uri="http://localhost:54545/callback")
    good, raw = await call(
        "POST",
        oauth.url + "/v1/oauth/token",
        http_pool,
        json={**body, "code": code, "code_verifier": VERIFIER},
    )
    tokens = json.loads(raw)
    assert good.code == 200
    assert tokens["account"]["email_address"] == "user@example.com"
    assert tokens["access_token"] in oauth.access_tokens
    again, _ = await call(
        "POST",
        oauth.url + "/v1/oauth/token",
        http_pool,
        json={**body, "code": code, "code_verifier": VERIFIER},
    )
    assert again.code == 400  # codes are single use


@pytest_twisted.ensureDeferred
async def test_oauth_refresh_rotates_and_codex_reports_reuse(start_fake, http_pool):
    oauth = start_fake(FakeOAuth, flavor="codex")
    oauth.add_refresh_token("rt-1")
    form = {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "app"}
    ok, raw = await call(
        "POST",
        oauth.url + "/oauth/token",
        http_pool,
        data=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    tokens = json.loads(raw)
    assert ok.code == 200 and tokens["refresh_token"] != "rt-1"
    claims_b64 = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
    assert claims["https://api.openai.com/auth"]["chatgpt_plan_type"] == "plus"
    assert oauth.last.form["grant_type"] == "refresh_token"

    reused, raw = await call(
        "POST", oauth.url + "/oauth/token", http_pool, data=urlencode(form).encode()
    )
    assert reused.code == 401
    assert json.loads(raw)["error"]["code"] == "refresh_token_reused"


@pytest_twisted.ensureDeferred
async def test_oauth_authorize_redirects_and_google_userinfo(start_fake, http_pool):
    oauth = start_fake(FakeOAuth, flavor="google")
    oauth.client_secret = "secret"
    query = urlencode(
        {
            "redirect_uri": "http://localhost:8085/oauth2callback",
            "state": "s1",
            "client_id": "cid",
        }
    )
    redirect, _ = await call(
        "GET", oauth.url + "/o/oauth2/auth/authorize?" + query, http_pool, allow_redirects=False
    )
    assert redirect.code == 302
    location = urlparse(redirect.headers.getRawHeaders("location")[0])
    params = parse_qs(location.query)
    assert params["state"] == ["s1"]
    form = {
        "grant_type": "authorization_code",
        "code": params["code"][0],
        "redirect_uri": "http://localhost:8085/oauth2callback",
        "client_id": "cid",
        "client_secret": "wrong",
    }
    denied, raw = await call("POST", oauth.url + "/token", http_pool, data=form)
    assert denied.code == 401 and json.loads(raw)["error"] == "invalid_client"
    ok, raw = await call(
        "POST", oauth.url + "/token", http_pool, data={**form, "client_secret": "secret"}
    )
    access = json.loads(raw)["access_token"]
    assert ok.code == 200
    info, raw = await call(
        "GET",
        oauth.url + "/oauth2/v1/userinfo?alt=json",
        http_pool,
        headers={"Authorization": f"Bearer {access}"},
    )
    assert info.code == 200 and json.loads(raw)["email"] == "user@example.com"
    refused, _ = await call("GET", oauth.url + "/oauth2/v1/userinfo", http_pool)
    assert refused.code == 401


@pytest_twisted.ensureDeferred
async def test_oauth_codex_device_flow_then_exchange(fake_oauth, http_pool):
    _, raw = await call(
        "POST", fake_oauth.url + "/api/accounts/deviceauth/usercode", http_pool, json={}
    )
    assert json.loads(raw)["user_code"] == "FAKE-1234"
    url = fake_oauth.url + "/api/accounts/deviceauth/token"
    pending, _ = await call("POST", url, http_pool, json={"device_auth_id": "dev-fake-0001"})
    assert pending.code == 403
    _, raw = await call("POST", url, http_pool, json={"device_auth_id": "dev-fake-0001"})
    grant = json.loads(raw)
    assert pkce_challenge(grant["code_verifier"]) == grant["code_challenge"]
    form = {
        "grant_type": "authorization_code",
        "code": grant["authorization_code"],
        "code_verifier": grant["code_verifier"],
        "redirect_uri": "https://auth.openai.com/deviceauth/callback",
    }
    ok, _ = await call("POST", fake_oauth.url + "/oauth/token", http_pool, data=form)
    assert ok.code == 200
