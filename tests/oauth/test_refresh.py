"""Background refresh: due accounts renewed ahead of expiry, failures later, dead ones never."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from cliproxy.config import parse_config
from cliproxy.credentials.authdir import AuthDir, account_proxy, account_services
from cliproxy.credentials.oauth.refresh import RefreshService
from cliproxy.upstream.http import UpstreamHTTP
from tests.fakes import FakeOAuth, Reply
from tests.oauth.kit import T0, claude_file, codex_file, endpoints_yaml, gemini_file, write_file

HOUR = 3600.0


@pytest.fixture
def http():
    client = UpstreamHTTP(reactor)
    yield client
    client.close()


def accounts(tmp_path, claude_oauth, codex_oauth=None):
    clock = task.Clock()
    clock.advance(T0)
    config = parse_config(endpoints_yaml(claude_oauth=claude_oauth, codex_oauth=codex_oauth))
    authdir = AuthDir(lambda: str(tmp_path), clock, lambda: config.oauth_endpoints)
    return authdir, clock


@pytest_twisted.ensureDeferred
async def test_accounts_are_refreshed_by_their_providers_lead(start_fake, tmp_path, http):
    claude = start_fake(FakeOAuth, flavor="claude")
    codex = start_fake(FakeOAuth, flavor="codex")
    for fake in (claude, codex):
        fake.add_refresh_token("rt")
    write_file(tmp_path, "claude-a.json", claude_file("at", "rt", T0 + 5 * HOUR))
    write_file(tmp_path, "codex-a.json", codex_file("at", "rt", T0 + 6 * 86400))
    write_file(tmp_path, "gemini-a.json", gemini_file("at", "rt", T0 + 60))
    authdir, clock = accounts(tmp_path, claude, codex)
    authdir.scan()
    service = RefreshService(authdir.holders, http, clock, interval=30)
    assert service.check() == []  # Claude due in 1 h, Codex in 1 day, Gemini never
    clock.advance(HOUR)
    await defer.gatherResults(service.check())
    assert len(claude.requests) == 1 and codex.requests == []
    clock.advance(86400)
    await defer.gatherResults(service.check())
    assert len(codex.requests) == 1 and len(claude.requests) == 2
    # the fake's 1 h tokens are shorter than Claude's 4 h lead: next try halfway, not at once
    clock.advance(60)
    assert service.check() == []
    clock.advance(1800)
    await defer.gatherResults(service.check())
    assert len(claude.requests) == 3
    # refreshed files were written back; the scan sees nothing new
    assert authdir.scan() is False
    assert all(h.refreshes >= 1 for h in authdir.holders() if h.spec.name != "gemini")


@pytest_twisted.ensureDeferred
async def test_a_failed_refresh_waits_five_minutes(start_fake, tmp_path, http):
    claude = start_fake(FakeOAuth, flavor="claude")
    claude.default("POST", "/v1/oauth/token", Reply(400, json={"error": "invalid_request"}))
    write_file(tmp_path, "claude-a.json", claude_file("at", "rt", T0 + HOUR))
    authdir, clock = accounts(tmp_path, claude)
    authdir.scan()
    service = RefreshService(authdir.holders, http, clock)
    await defer.gatherResults(service.check())
    assert len(claude.requests) == 1
    clock.advance(299)
    assert service.check() == []
    clock.advance(1)
    await defer.gatherResults(service.check())
    assert len(claude.requests) == 2


@pytest_twisted.ensureDeferred
async def test_an_account_that_needs_login_is_never_refreshed_again(start_fake, tmp_path, http):
    claude = start_fake(FakeOAuth, flavor="claude")  # knows no refresh token: invalid_grant
    write_file(tmp_path, "claude-a.json", claude_file("at", "rt", T0 + HOUR))
    authdir, clock = accounts(tmp_path, claude)
    authdir.scan()
    service = RefreshService(authdir.holders, http, clock)
    await defer.gatherResults(service.check())
    assert authdir.accounts()[0].status == "needs-login"
    for _ in range(5):
        clock.advance(3600)
        assert service.check() == []
    assert len(claude.requests) == 1


@pytest_twisted.ensureDeferred
async def test_at_most_the_configured_number_at_once(start_fake, tmp_path, http):
    claude = start_fake(FakeOAuth, flavor="claude")
    for i in range(5):
        claude.add_refresh_token(f"rt{i}")
        write_file(tmp_path, f"claude-{i}.json", claude_file("at", f"rt{i}", T0 + HOUR))
    authdir, clock = accounts(tmp_path, claude)
    authdir.scan()
    service = RefreshService(authdir.holders, http, clock, workers=lambda: 2)
    first = service.check()
    assert len(first) == 2
    assert service.check() == []  # both workers busy
    await defer.gatherResults(first)
    await defer.gatherResults(service.check())
    await defer.gatherResults(service.check())
    assert len(claude.requests) == 5


def test_the_daemon_gets_a_watcher_and_a_refresher(tmp_path):
    config = parse_config("auth-auto-refresh-workers: 3\nproxy-url: socks5://127.0.0.1:1\n")
    authdir = AuthDir(lambda: str(tmp_path), task.Clock(), lambda: config.oauth_endpoints)
    watcher, refresher = account_services(authdir, None, task.Clock(), lambda: config)
    assert (watcher.name, refresher.name) == ("auth-dir-watcher", "token-refresher")
    assert refresher._workers() == 3
    write_file(tmp_path, "claude-a.json", dict(claude_file("a", "r", T0), proxy_url="direct"))
    write_file(tmp_path, "claude-b.json", claude_file("a", "r", T0))
    authdir.scan()
    own, inherited = authdir.holders()
    assert account_proxy(own, config.proxy_url) == "direct"
    assert account_proxy(inherited, config.proxy_url) == "socks5://127.0.0.1:1"
