"""`cliproxy login`: each provider against a fake identity provider, by callback and by paste.

After each login, a request through cliproxy is served from the new account by the
matching executor against a fake provider.
"""

from __future__ import annotations

import json
import os
import re
import stat
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionRefusedError

from cliproxy.config import parse_config
from cliproxy.credentials.oauth.login import LineQueue, LoginOptions, run_login
from cliproxy.credentials.oauth.providers import CLAUDE, CODEX, GEMINI
from cliproxy.upstream.http import UpstreamHTTP
from tests.fakes import (
    FakeClaude,
    FakeCloudCode,
    FakeCodex,
    FakeOAuth,
    pkce_challenge,
)
from tests.oauth.kit import endpoints_yaml, oauth_config
from tests.serving_kit import CLIENT_KEY

SPECS = {"claude": CLAUDE, "codex": CODEX, "gemini": GEMINI}
FLAVORS = {"claude": "claude", "codex": "codex", "gemini": "google"}
PROVIDER_FAKES = {"claude": FakeClaude, "codex": FakeCodex, "gemini": FakeCloudCode}
MODELS = {"claude": "claude-sonnet-4-5-20250929", "codex": "gpt-5.4", "gemini": "gemini-2.5-pro"}


def to_listener(uri: str, output: list[str]) -> str:
    """`uri` (the registered redirect, e.g. localhost:1455) sent to the port the callback
    server really listens on, which the login prints when they differ."""
    ports = [m.group(1) for line in output for m in [_LISTENS.search(line)] if m]
    if not ports:
        return uri
    return urlunsplit(urlsplit(uri)._replace(netloc=f"127.0.0.1:{ports[-1]}"))


_LISTENS = re.compile(r"listens on 127\.0\.0\.1:(\d+)")


class Browser:
    """Grants consent at the fake identity provider, then follows the redirect (or not).

    The redirect names the provider's registered port; like a forwarded port would, the
    browser reaches the callback server where it really listens (`output` says where).
    """

    def __init__(self, follow: bool = True) -> None:
        self.follow = follow
        self.url: str | None = None
        self.location: defer.Deferred = defer.Deferred()
        self.page = ""
        self.output: list[str] = []

    def __call__(self, url: str) -> bool:
        self.url = url
        defer.ensureDeferred(self._visit(url)).addErrback(self.location.errback)
        return True

    async def _visit(self, url: str) -> None:
        consent = await treq.get(url, allow_redirects=False)
        await consent.content()
        location = consent.headers.getRawHeaders("location")[0]
        if self.follow:
            landed = await treq.get(to_listener(location, self.output))
            self.page = (await landed.content()).decode()
        self.location.callback(location)


class Accounts:
    """A fake identity provider and provider for one login, and a config pointing at them."""

    def __init__(self, name, start_fake, tmp_path) -> None:
        self.name = name
        self.spec = SPECS[name]
        self.oauth = start_fake(FakeOAuth, flavor=FLAVORS[name])
        self.oauth.client_id = self.spec.client_id
        if name == "gemini":
            self.oauth.client_secret = self.spec.client_secret
        self.upstream = start_fake(PROVIDER_FAKES[name])
        self.upstream.keys = self.oauth.access_tokens
        self.auth_dir = tmp_path / "auth"
        fakes = self._fakes()
        self.config = parse_config(
            f"auth-dir: {self.auth_dir}\n" + endpoints_yaml(**fakes), "config.yaml"
        )
        self.proxy_config = oauth_config(self.auth_dir, **fakes)
        self.output: list[str] = []

    def _fakes(self):
        if self.name == "claude":
            return {"claude_oauth": self.oauth, "claude_api": self.upstream}
        if self.name == "codex":
            return {"codex_oauth": self.oauth, "codex_api": self.upstream}
        return {"google": self.oauth, "cloudcode": self.upstream}

    def callback(self, uri: str) -> str:
        """The registered redirect `uri`, at the port the callback server listens on."""
        return to_listener(uri, self.output)

    def login(self, **kwargs):
        options = kwargs.pop("options", LoginOptions(callback_port=0))
        if isinstance(kwargs.get("opener"), Browser):
            kwargs["opener"].output = self.output
        http = UpstreamHTTP(reactor)

        async def go():
            try:
                return await run_login(
                    self.spec,
                    config=self.config,
                    reactor=reactor,
                    http=http,
                    out=self.output.append,
                    options=options,
                    **kwargs,
                )
            finally:
                await http.close()

        # a login that went wrong fails the test quickly instead of waiting 5 minutes
        return defer.ensureDeferred(go()).addTimeout(10, reactor)

    def printed_url(self) -> str:
        return next(line.strip() for line in self.output if line.startswith("  http"))


_TOKENS = {"type", "access_token", "refresh_token", "id_token", "email", "expired", "last_refresh"}
EXPECTED_FIELDS = {
    "claude": _TOKENS,
    "codex": _TOKENS | {"account_id"},
    "gemini": {"type", "email", "project_id", "auto", "checked", "token"},
}


def check_file(accounts, result):
    assert os.path.dirname(result.path) == str(accounts.auth_dir)
    assert stat.S_IMODE(os.stat(result.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(accounts.auth_dir).st_mode) == 0o700
    record = json.load(open(result.path))
    assert set(record) == EXPECTED_FIELDS[accounts.name]
    assert record["type"] == accounts.spec.file_type
    assert record["email"] == "user@example.com"
    if accounts.name == "gemini":
        assert os.path.basename(result.path) == "gemini-user@example.com-fake-project-123.json"
        assert record["project_id"] == "fake-project-123"
        token = record["token"]
        assert token["access_token"] in accounts.oauth.access_tokens
        assert token["refresh_token"] in accounts.oauth.refresh_tokens
        assert token["token_uri"] == f"{accounts.oauth.url}/token"
        assert token["client_id"] == GEMINI.client_id
        assert token["expiry"].endswith("Z")
    else:
        assert record["access_token"] in accounts.oauth.access_tokens
        assert record["refresh_token"] in accounts.oauth.refresh_tokens
        assert record["expired"].endswith("Z") and record["last_refresh"].endswith("Z")
    if accounts.name == "claude":
        assert os.path.basename(result.path) == "claude-user@example.com.json"
    if accounts.name == "codex":
        assert os.path.basename(result.path) == "codex-user@example.com-plus.json"
        assert record["account_id"] == "acct-fake-0001"
    # the secrets never reach the terminal
    printed = "\n".join(accounts.output)
    assert accounts.oauth.refresh_tokens.isdisjoint(w for w in printed.split())
    return record


def check_token_request(accounts, browser_url):
    query = parse_qs(urlsplit(browser_url).query)
    spec = accounts.spec
    assert query["client_id"] == [spec.client_id]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) == 32
    exchange = accounts.oauth.received("POST")[0]
    params = exchange.params
    assert params["grant_type"] == "authorization_code"
    assert pkce_challenge(params["code_verifier"]) == query["code_challenge"][0]
    assert len(params["code_verifier"]) == 128
    assert params["redirect_uri"] == query["redirect_uri"][0]
    if accounts.name == "claude":
        assert exchange.header("content-type") == "application/json"
        assert params["state"] == query["state"][0]
    else:
        assert exchange.header("content-type") == "application/x-www-form-urlencoded"


async def request_through_proxy(accounts, start_proxy):
    proxy = start_proxy(accounts.proxy_config)
    body = {"model": MODELS[accounts.name], "messages": [{"role": "user", "content": "hi"}]}
    response = await treq.post(
        proxy.url + "/v1/chat/completions",
        json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"},
    )
    raw = await response.content()
    assert response.code == 200, raw
    text = json.loads(raw)["choices"][0]["message"]["content"]
    assert text == f"hello from {accounts.upstream.name}"
    assert accounts.upstream.last.key in accounts.oauth.access_tokens


@pytest.mark.parametrize("name", ["claude", "codex", "gemini"])
@pytest_twisted.ensureDeferred
async def test_login_through_the_callback_then_serve(name, start_fake, start_proxy, tmp_path):
    accounts = Accounts(name, start_fake, tmp_path)
    browser = Browser(follow=True)
    result = await accounts.login(opener=browser, lines=LineQueue())
    assert "You can close this tab" in browser.page
    check_token_request(accounts, browser.url)
    record = check_file(accounts, result)
    assert "Sign-in received from the browser." in accounts.output
    if name == "gemini":
        assert record["auto"] is True and record["checked"] is True
        assert [r.path for r in accounts.upstream.requests] == ["/v1internal:loadCodeAssist"]
    # single use: the callback server is gone
    with pytest.raises(ConnectionRefusedError):
        await treq.get(accounts.callback(await browser.location), persistent=False)
    await request_through_proxy(accounts, start_proxy)


@pytest.mark.parametrize("name", ["claude", "codex", "gemini"])
@pytest_twisted.ensureDeferred
async def test_login_by_pasting_the_final_address_then_serve(
    name, start_fake, start_proxy, tmp_path
):
    accounts = Accounts(name, start_fake, tmp_path)
    lines = LineQueue()
    done = accounts.login(opener=None, lines=lines, options=LoginOptions(callback_port=0))
    url = accounts.printed_url()  # printed at once; a browser elsewhere opens it
    browser = Browser(follow=False)
    browser(url)
    location = await browser.location
    lines.feed("  not a url at all  ")
    lines.feed(location)
    result = await done
    assert any("That is not the sign-in address" in line for line in accounts.output)
    assert "Sign-in code received." in accounts.output
    check_token_request(accounts, url)
    check_file(accounts, result)
    await request_through_proxy(accounts, start_proxy)
