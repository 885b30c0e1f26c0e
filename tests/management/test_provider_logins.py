"""Management: the Antigravity browser login, the Kimi/xAI device logins, the Vertex import
endpoint and the bound sessions of routing.session-affinity in the auth-files view."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest_twisted
import treq
from twisted.internet import reactor, task

from cliproxy.credentials.oauth.providers import ANTIGRAVITY, XAI
from tests.credentials.test_xai import xai_identity
from tests.fakes import (
    FakeClaude,
    FakeOAuth,
    FakeUpstream,
    Reply,
)
from tests.fakes.antigravity import FakeAntigravity
from tests.fakes.vertex import service_account_json
from tests.management.kit import SECRET, config_file
from tests.oauth.kit import T0, claude_file, write_file
from tests.upstream.test_antigravity import endpoints as antigravity_endpoints


async def _until(check, clock=None, step=0.0):
    """Wait (on the real reactor) until `check()` is true; advances `clock` by `step` first."""
    for _ in range(200):
        if clock is not None and step:
            clock.advance(step)
        if check():
            return True
        await task.deferLater(reactor, 0.02, lambda: None)
    return False


async def _status(s, state):
    found = {}

    async def poll():
        nonlocal found
        found = (await s.call("GET", f"/get-auth-status?state={state}"))[1]

    for _ in range(100):
        await poll()
        if found.get("status") != "wait":
            break
        await task.deferLater(reactor, 0.02, lambda: None)
    return found


@pytest_twisted.ensureDeferred
async def test_antigravity_login_from_the_api(tmp_path, start_fake, served_factory):
    oauth = start_fake(FakeOAuth, flavor="google")
    oauth.client_id, oauth.client_secret = ANTIGRAVITY.client_id, ANTIGRAVITY.client_secret
    upstream = start_fake(FakeAntigravity)
    section = antigravity_endpoints(oauth, upstream)
    section += f"    authorize-url: {oauth.url}/o/oauth2/v2/authorize\n"
    s = served_factory(config_file(tmp_path, section))
    status, body, _ = await s.call("GET", "/antigravity-auth-url")
    assert status == 200 and body["status"] == "ok"
    query = parse_qs(urlsplit(body["url"]).query)
    assert query["client_id"] == [ANTIGRAVITY.client_id]
    assert query["redirect_uri"] == ["http://localhost:51121/oauth-callback"]
    consent = await treq.get(body["url"], allow_redirects=False)
    await consent.content()
    location = consent.headers.getRawHeaders("location")[0]
    posted = await s.call(
        "POST", "/oauth-callback", {"provider": "antigravity", "redirect_url": location}
    )
    assert posted[0] == 200
    assert await _status(s, body["state"]) == {"status": "ok"}
    [saved] = list((tmp_path / "auth").glob("antigravity-*.json"))
    record = json.loads(saved.read_text())
    assert record["type"] == "antigravity" and record["project_id"] == "fake-project-123"
    files = (await s.call("GET", "/auth-files"))[1]["files"]
    assert [(f["name"], f["provider"]) for f in files] == [(saved.name, "antigravity")]


@pytest_twisted.ensureDeferred
async def test_xai_device_login_from_the_api(tmp_path, start_fake, served_factory):
    auth = xai_identity(start_fake, interval=5)
    s = served_factory(
        config_file(tmp_path, f"oauth-endpoints:\n  xai:\n    issuer-url: {auth.url}\n")
    )
    status, body, _ = await s.call("GET", "/xai-auth-url")
    assert status == 200, body
    assert body["flow"] == "device" and body["user_code"] == "GROK-1234"
    assert body["url"] == "https://accounts.x.ai/device?code=GROK-1234"
    assert auth.received("POST", "/oauth2/device/code")[0].form["client_id"] == XAI.client_id
    state = body["state"]
    assert (await s.call("GET", f"/get-auth-status?state={state}"))[1] == {"status": "wait"}
    polls = lambda: len(auth.received("POST", "/oauth2/token"))  # noqa: E731
    assert await _until(lambda: polls() >= 1, s.clock, 5.0)  # the first poll: pending
    assert await _until(lambda: polls() >= 2, s.clock, 5.0)  # approved
    assert await _status(s, state) == {"status": "ok"}
    [saved] = list((tmp_path / "auth").glob("xai-*.json"))
    assert saved.name == "xai-user@example.com.json"
    assert json.loads(saved.read_text())["access_token"] == "at-x"


@pytest_twisted.ensureDeferred
async def test_a_device_endpoint_that_fails_answers_500_and_saves_nothing(
    tmp_path, start_fake, served_factory
):
    kimi = start_fake(FakeUpstream)
    kimi.script("POST", "/device", Reply(status=503, body=b"down"))
    s = served_factory(
        config_file(tmp_path, f"oauth-endpoints:\n  kimi:\n    device-url: {kimi.url}/device\n")
    )
    status, body, _ = await s.call("GET", "/kimi-auth-url")
    assert (status, body) == (500, {"error": "failed to generate authorization url"})
    assert kimi.last.header("x-msh-device-id")
    assert list((tmp_path / "auth").iterdir()) == []


def _multipart(fields: dict[str, tuple[str, bytes] | str]) -> tuple[bytes, str]:
    boundary = "cliproxy-test-boundary"
    out = b""
    for name, value in fields.items():
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, data = value
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/json\r\n\r\n"
            ).encode() + data
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


async def _upload(s, fields):
    body, ctype = _multipart(fields)
    return await s.call("POST", "/vertex/import", raw=body, headers={"Content-Type": ctype})


@pytest_twisted.ensureDeferred
async def test_vertex_import_endpoint(tmp_path, served_factory):
    s = served_factory(config_file(tmp_path))
    sa = service_account_json(project="imp-project")[0]
    key = json.dumps(sa).encode()
    status, body, _ = await _upload(s, {"file": ("key.json", key), "location": "europe-west4"})
    assert status == 200, body
    assert body["status"] == "ok" and body["project_id"] == "imp-project"
    assert body["email"] == sa["client_email"] and body["location"] == "europe-west4"
    saved = tmp_path / "auth" / "vertex-imp-project.json"
    assert body["auth-file"] == str(saved)
    record = json.loads(saved.read_text())
    assert record["type"] == "vertex" and record["service_account"] == sa
    files = (await s.call("GET", "/auth-files"))[1]["files"]
    assert [f["name"] for f in files] == [saved.name]
    # bad input: a clear error, nothing written
    assert (await _upload(s, {"location": "x"}))[:2] == (400, {"error": "file required"})
    assert (await _upload(s, {"file": ("k.json", b"{nope")}))[:2] == (
        400,
        {"error": "invalid json"},
    )
    broken = dict(sa, project_id="other", private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n")
    status, body, _ = await _upload(s, {"file": ("k.json", json.dumps(broken).encode())})
    assert status == 400 and "private_key" in body["error"]
    assert "AAAA" not in body["error"]
    assert sorted(p.name for p in (tmp_path / "auth").iterdir()) == [saved.name]
    assert (await s.call("POST", "/vertex/import", raw=b"", key=None))[0] == 401


@pytest_twisted.ensureDeferred
async def test_auth_files_show_the_sessions_affinity_keeps_on_each_file(
    tmp_path, start_fake, served_factory
):
    claude = start_fake(FakeClaude)
    s = served_factory(
        config_file(
            tmp_path,
            "api-keys: [client-key-1]\nrouting:\n  session-affinity: true\n"
            f"oauth-endpoints:\n  claude:\n    api-url: {claude.url}\n",
        )
    )
    s.clock.advance(T0)
    write_file(tmp_path / "auth", "claude-a@example.com.json", claude_file("at", "rt", T0 + 9e4))
    s.app.authdir.scan()
    files = (await s.call("GET", "/auth-files"))[1]["files"]
    assert files[0]["bound_sessions"] == 0
    for session in ("s-1", "s-2"):
        uid = f"user_{'b' * 64}_account_x_session_{session}"
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"user_id": uid},
        }
        response = await treq.post(
            s.url + "/v1/messages",
            json.dumps(body).encode(),
            headers={"Authorization": "Bearer client-key-1", "Content-Type": "application/json"},
        )
        assert response.code == 200, await response.content()
        await response.content()
    files = (await s.call("GET", "/auth-files"))[1]["files"]
    assert files[0]["bound_sessions"] == 2
    assert SECRET not in json.dumps(files)
