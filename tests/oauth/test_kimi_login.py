"""`cliproxy login kimi`: the device flow against a loopback fake of auth.kimi.com."""

from __future__ import annotations

import json
import os
import stat

import pytest
import pytest_twisted
from twisted.internet import reactor

from cliproxy.config.model import KimiEndpoints
from cliproxy.credentials.oauth.device import DEVICE_GRANT
from cliproxy.credentials.oauth.kimi_login import KimiLoginError, kimi_device_login
from cliproxy.upstream.http import UpstreamHTTP
from tests.fakes import FakeUpstream, Reply, oauth_error_reply


def start_kimi_auth(start_fake, *token_replies):
    auth = start_fake(FakeUpstream)
    auth.script(
        "POST",
        "/api/oauth/device_authorization",
        Reply(
            json={
                "device_code": "dc-1",
                "user_code": "ABCD-1234",
                "verification_uri_complete": "https://www.kimi.com/code/authorize?user_code=ABCD-1234",
                "expires_in": 600,
                "interval": 0,
            }
        ),
    )
    auth.script("POST", "/api/oauth/token", *token_replies)
    return auth, KimiEndpoints(
        device_url=auth.url + "/api/oauth/device_authorization",
        token_url=auth.url + "/api/oauth/token",
    )


@pytest_twisted.ensureDeferred
async def test_device_login_polls_until_approved_and_saves_the_file(start_fake, tmp_path):
    tokens = {"access_token": "at-k", "refresh_token": "rt-k", "expires_in": 3600, "scope": "s"}
    auth, endpoints = start_kimi_auth(
        start_fake, oauth_error_reply(400, "authorization_pending"), Reply(json=tokens)
    )
    printed: list[str] = []
    http = UpstreamHTTP(reactor)
    try:
        path = await kimi_device_login(
            http, reactor, endpoints, str(tmp_path), printed.append, min_interval=0.01
        )
    finally:
        await http.close()
    assert "ABCD-1234" in "\n".join(printed)
    polls = [r for r in auth.requests if r.path == "/api/oauth/token"]
    assert len(polls) == 2 and polls[0].form["grant_type"] == DEVICE_GRANT
    assert polls[0].form["device_code"] == "dc-1"
    device = polls[0].header("x-msh-device-id")
    assert device and auth.requests[0].header("x-msh-device-id") == device
    record = json.loads(open(path).read())
    assert record["type"] == "kimi" and record["access_token"] == "at-k"
    assert record["device_id"] == device and "expired" in record
    assert os.path.basename(path).startswith("kimi-")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest_twisted.ensureDeferred
async def test_a_refused_login_saves_nothing(start_fake, tmp_path):
    _, endpoints = start_kimi_auth(start_fake, oauth_error_reply(400, "access_denied"))
    http = UpstreamHTTP(reactor)
    try:
        with pytest.raises(KimiLoginError, match="access denied"):
            await kimi_device_login(
                http, reactor, endpoints, str(tmp_path), lambda _: None, min_interval=0.01
            )
    finally:
        await http.close()
    assert list(tmp_path.iterdir()) == []
