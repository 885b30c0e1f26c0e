"""`cliproxy login antigravity`: Google sign-in with Antigravity's client and registered
redirect, project lookup at Cloud Code, the token file CLIProxyAPI writes; then served."""

from __future__ import annotations

import json
import os
import stat
from urllib.parse import parse_qs, urlsplit

import pytest_twisted
from twisted.internet import defer, reactor

from cliproxy.config import parse_config
from cliproxy.credentials.oauth.login import LineQueue, LoginOptions, run_login
from cliproxy.credentials.oauth.providers import ANTIGRAVITY
from cliproxy.upstream.http import UpstreamHTTP
from tests.fakes import FakeOAuth
from tests.fakes.antigravity import FakeAntigravity
from tests.oauth.kit import config_text
from tests.oauth.test_login import Browser
from tests.oauth.test_serving_oauth import chat, post
from tests.upstream.test_antigravity import endpoints


async def login(config, opener, lines):
    http = UpstreamHTTP(reactor)
    out: list[str] = []
    if isinstance(opener, Browser):
        opener.output = out
    try:
        result = await defer.ensureDeferred(
            run_login(
                ANTIGRAVITY,
                config=config,
                reactor=reactor,
                http=http,
                out=out.append,
                lines=lines,
                opener=opener,
                options=LoginOptions(callback_port=0),
            )
        ).addTimeout(10, reactor)
    finally:
        await http.close()
    return result, out


@pytest_twisted.ensureDeferred
async def test_antigravity_login_saves_cliproxyapis_file_and_serves(
    start_fake, start_proxy, tmp_path
):
    oauth = start_fake(FakeOAuth, flavor="google")
    oauth.client_id = ANTIGRAVITY.client_id
    oauth.client_secret = ANTIGRAVITY.client_secret
    upstream = start_fake(FakeAntigravity)
    upstream.keys = oauth.access_tokens
    upstream.project = "ag-project-9"
    auth_dir = tmp_path / "auth"
    section = endpoints(oauth, upstream) + f"    authorize-url: {oauth.url}/o/oauth2/v2/authorize\n"
    config = parse_config(f"auth-dir: {auth_dir}\n" + section, "config.yaml")
    browser = Browser(follow=True)
    result, out = await login(config, browser, LineQueue())

    query = parse_qs(urlsplit(browser.url).query)
    assert query["client_id"] == [ANTIGRAVITY.client_id]
    assert query["redirect_uri"] == ["http://localhost:51121/oauth-callback"]
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert "https://www.googleapis.com/auth/cclog" in query["scope"][0].split()
    exchange = oauth.received("POST")[0].params
    assert exchange["client_secret"] == ANTIGRAVITY.client_secret
    assert exchange["redirect_uri"] == "http://localhost:51121/oauth-callback"

    assert os.path.basename(result.path) == "antigravity-user@example.com.json"
    assert stat.S_IMODE(os.stat(result.path).st_mode) == 0o600
    record = json.loads(open(result.path).read())
    assert set(record) == {
        "type",
        "access_token",
        "refresh_token",
        "expires_in",
        "timestamp",
        "expired",
        "email",
        "project_id",
    }
    assert record["type"] == "antigravity" and record["project_id"] == "ag-project-9"
    assert record["access_token"] in oauth.access_tokens
    assert upstream.requests[0].json == {"metadata": {"ideType": "ANTIGRAVITY"}}
    assert not any(record["refresh_token"] in line for line in out)

    proxy = start_proxy(config_text(f"auth-dir: {auth_dir}\n", endpoints(oauth, upstream)))
    code, raw = await post(proxy, "/v1/chat/completions", chat("gemini-3-flash"))
    assert code == 200, raw
    assert upstream.last.json["project"] == "ag-project-9"


def test_cliproxyapis_login_flags_name_antigravity_and_kimi():
    from cliproxy.cli import parse_args

    for argv, provider in (
        (["-antigravity-login", "-no-browser"], "antigravity"),
        (["--kimi-login"], "kimi"),
        (["login", "antigravity"], "antigravity"),
    ):
        args = parse_args(argv)
        assert (args.command, args.provider) == ("login", provider)
