"""OAuth logins started from the management API, against a fake identity provider."""

from __future__ import annotations

import json

import pytest_twisted
import treq
from twisted.internet import reactor, task

from cliproxy.credentials.oauth.providers import CLAUDE
from tests.fakes import FakeOAuth
from tests.management.kit import config_file
from tests.oauth.kit import endpoints_yaml


async def _status(s, state):
    for _ in range(100):
        code, body, _ = await s.call("GET", f"/get-auth-status?state={state}")
        if body.get("status") != "wait":
            return code, body
        await task.deferLater(reactor, 0.05, lambda: None)
    return code, body


def _claude(tmp_path, start_fake, served_factory):
    oauth = start_fake(FakeOAuth, flavor="claude")
    oauth.client_id = CLAUDE.client_id
    s = served_factory(config_file(tmp_path, endpoints_yaml(claude_oauth=oauth)))
    return oauth, s


@pytest_twisted.ensureDeferred
async def test_a_login_started_from_the_api_saves_the_account(tmp_path, start_fake, served_factory):
    oauth, s = _claude(tmp_path, start_fake, served_factory)
    status, body, _ = await s.call("GET", "/anthropic-auth-url?is_webui=true")
    assert status == 200 and body["status"] == "ok" and body["url"].startswith(oauth.url)
    state = body["state"]
    assert (await s.call("GET", f"/get-auth-status?state={state}"))[1] == {"status": "wait"}
    consent = await treq.get(body["url"], allow_redirects=False)
    await consent.content()
    location = consent.headers.getRawHeaders("location")[0]
    assert f"state={state}" in location
    status, body, _ = await s.call(
        "POST", "/oauth-callback", {"provider": "anthropic", "redirect_url": location}
    )
    assert (status, body) == (200, {"status": "ok"})
    assert await _status(s, state) == (200, {"status": "ok"})
    [saved] = list((tmp_path / "auth").glob("claude-*.json"))
    assert json.loads(saved.read_text())["type"] == "claude"
    files = (await s.call("GET", "/auth-files"))[1]["files"]
    assert [f["name"] for f in files] == [saved.name]
    again = await s.call(
        "POST", "/oauth-callback", {"provider": "claude", "redirect_url": location}
    )
    assert again[0] == 409


@pytest_twisted.ensureDeferred
async def test_bad_callbacks_and_unknown_states(tmp_path, start_fake, served_factory):
    _, s = _claude(tmp_path, start_fake, served_factory)
    unknown = {"provider": "codex", "code": "c", "state": "nope"}
    assert (await s.call("POST", "/oauth-callback", unknown))[0] == 404
    assert (await s.call("POST", "/oauth-callback", {"provider": "x", "code": "c"}))[0] == 400
    assert (await s.call("POST", "/oauth-callback", raw=b"not json"))[0] == 400
    assert (await s.call("GET", "/get-auth-status?state=nope"))[0] == 404
    state = (await s.call("GET", "/anthropic-auth-url"))[1]["state"]
    denied = {"provider": "anthropic", "state": state, "error": "access_denied"}
    assert (await s.call("POST", "/oauth-callback", denied))[0] == 200
    code, body = await _status(s, state)
    assert body["status"] == "error" and "denied" in body["error"]
    assert list((tmp_path / "auth").iterdir()) == []
