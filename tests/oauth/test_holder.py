"""TokenHolder: lazy refresh, one refresh for many waiters, bounded, never hammering.

Token expiry and retry waits run on a task.Clock; the token endpoint is a FakeOAuth on
loopback.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from cliproxy.config import parse_config
from cliproxy.credentials.oauth.holder import NeedsLogin, RefreshFailed, TokenHolder
from cliproxy.credentials.oauth.providers import CLAUDE, CODEX, GEMINI
from cliproxy.upstream.http import UpstreamHTTP
from tests.fakes import FakeOAuth, Reply, oauth_error_reply
from tests.oauth.kit import T0, claude_file, codex_file, endpoints_yaml, gemini_file

HOUR = 3600.0


@pytest.fixture
def http():
    client = UpstreamHTTP(reactor)
    yield client
    client.close()


def holder_for(oauth, spec=CLAUDE, record=None, **kwargs):
    clock = task.Clock()
    clock.advance(T0)
    which = {"claude": "claude_oauth", "codex": "codex_oauth", "gemini": "google"}[spec.name]
    endpoints = parse_config(endpoints_yaml(**{which: oauth})).oauth_endpoints
    record = record or claude_file("at-old", "rt-old", T0 - 1)
    return TokenHolder(
        spec, record, name="acct.json", clock=clock, endpoints=lambda: endpoints, **kwargs
    )


def started(oauth, flavor="claude", token="rt-old"):
    oauth.add_refresh_token(token)
    return oauth


@pytest_twisted.ensureDeferred
async def test_a_fresh_token_is_used_as_it_is(start_fake, http):
    oauth = started(start_fake(FakeOAuth, flavor="claude"))
    holder = holder_for(oauth, record=claude_file("at-old", "rt-old", T0 + 61))
    assert await holder.token(http) == "at-old"
    holder.clock.advance(2)  # now within Claude's 60 s margin
    assert await holder.token(http) != "at-old"
    assert len(oauth.requests) == 1


@pytest.mark.parametrize(
    "spec, builder, flavor, path",
    [
        (CLAUDE, claude_file, "claude", "/v1/oauth/token"),
        (CODEX, codex_file, "codex", "/oauth/token"),
        (GEMINI, gemini_file, "google", "/token"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_refresh_request_per_provider(spec, builder, flavor, path, start_fake, http):
    oauth = started(start_fake(FakeOAuth, flavor=flavor))
    oauth.client_id = spec.client_id
    saved = []
    holder = holder_for(oauth, spec, builder("at-old", "rt-old", T0 - 1), persist=saved.append)
    token = await holder.token(http)
    rec = oauth.last
    assert rec.path == path
    assert rec.params["grant_type"] == "refresh_token" and rec.params["refresh_token"] == "rt-old"
    if spec is CLAUDE:
        assert rec.header("content-type") == "application/json"
    else:
        assert rec.header("content-type") == "application/x-www-form-urlencoded"
    if spec is CODEX:
        assert rec.params["scope"] == "openid profile email"
    if spec is GEMINI:
        assert rec.params["client_secret"] == GEMINI.client_secret
        assert holder.record["token"]["access_token"] == token
        assert holder.record["access_token"] == token
        assert holder.refresh_token == "rt-old"  # Google does not rotate
    else:
        assert holder.refresh_token != "rt-old"
        assert holder.record["last_refresh"] == "2026-01-01T00:00:00Z"
    assert holder.expiry == T0 + 3600
    assert saved == [holder] and holder.refreshes == 1


@pytest_twisted.ensureDeferred
async def test_one_refresh_for_many_callers_and_a_leaving_caller_stops_nothing(start_fake, http):
    oauth = started(start_fake(FakeOAuth, flavor="claude"))
    oauth_clock = task.Clock()
    oauth.clock = oauth_clock
    oauth.script("POST", "/v1/oauth/token", lambda rec: _later(oauth, rec))
    holder = holder_for(oauth)
    waiters = [defer.ensureDeferred(holder.token(http)) for _ in range(50)]
    await oauth.wait_for(lambda: bool(oauth_clock.getDelayedCalls()))
    assert holder.waiting == 50
    waiters[0].cancel()  # that client went away
    with pytest.raises(defer.CancelledError):
        await waiters[0]
    oauth_clock.advance(1)
    tokens = await defer.gatherResults(waiters[1:])
    assert len(set(tokens)) == 1 and tokens[0] != "at-old"
    assert len(oauth.requests) == 1


def _later(oauth, rec):
    import dataclasses

    return dataclasses.replace(oauth._token(rec, None), delay=1.0)


@pytest_twisted.ensureDeferred
async def test_transient_failures_are_retried_then_paused(start_fake, http):
    oauth = started(start_fake(FakeOAuth, flavor="claude"))
    oauth.default("POST", "/v1/oauth/token", Reply(503, json={"error": "temporarily_unavailable"}))
    holder = holder_for(oauth)
    d = defer.ensureDeferred(holder.token(http))
    # the refresh deadline and the first retry wait are both pending
    await oauth.wait_for(lambda: len(holder.clock.getDelayedCalls()) == 2)
    assert len(oauth.requests) == 1
    holder.clock.advance(1)
    await oauth.wait_requests(2)
    await oauth.wait_for(lambda: len(holder.clock.getDelayedCalls()) == 2)
    holder.clock.advance(2)
    with pytest.raises(RefreshFailed) as info:
        await d
    assert len(oauth.requests) == 3
    assert "HTTP 503 (temporarily_unavailable)" in info.value.message
    assert holder.status == "refresh-failed"
    # paused: callers fail at once, without calling the endpoint
    with pytest.raises(RefreshFailed, match="paused for 30s"):
        await holder.token(http)
    assert len(oauth.requests) == 3
    holder.clock.advance(30)
    oauth.default("POST", "/v1/oauth/token", None)
    assert await holder.token(http) != "at-old"
    assert holder.status == "ok"


@pytest_twisted.ensureDeferred
async def test_a_rate_limited_refresh_waits_for_retry_after(start_fake, http):
    oauth = started(start_fake(FakeOAuth, flavor="claude"))
    oauth.script("POST", "/v1/oauth/token", oauth_error_reply(429, "rate_limited", retry_after=120))
    holder = holder_for(oauth)
    with pytest.raises(RefreshFailed):
        await holder.token(http)
    assert len(oauth.requests) == 1
    assert holder.blocked_until() == T0 + 120


@pytest.mark.parametrize("flavor, spec", [("claude", CLAUDE), ("codex", CODEX)])
@pytest_twisted.ensureDeferred
async def test_a_dead_refresh_token_needs_a_new_login_and_is_left_alone(
    flavor, spec, start_fake, http
):
    oauth = start_fake(FakeOAuth, flavor=flavor)
    if flavor == "codex":  # Codex says refresh_token_reused for a token spent elsewhere
        oauth.used_refresh_tokens.add("rt-old")
        record = codex_file("at-old", "rt-old", T0 - 1)
    else:
        record = claude_file("at-old", "rt-old", T0 - 1)
    holder = holder_for(oauth, spec, record)
    with pytest.raises(NeedsLogin) as info:
        await holder.token(http)
    assert f"run `cliproxy login {spec.name}`" in info.value.message
    assert holder.needs_login
    assert ("invalid_grant" if flavor == "claude" else "refresh_token_reused") in holder.last_error
    for _ in range(3):
        with pytest.raises(NeedsLogin):
            await holder.token(http)
        with pytest.raises(NeedsLogin):
            await holder.refresh(http)
    assert len(oauth.requests) == 1
    # a new login on disk revives it
    holder.replace_record(claude_file("at-new", "rt-new", T0 + HOUR))
    assert holder.status == "ok" and await holder.token(http) == "at-new"


@pytest_twisted.ensureDeferred
async def test_a_token_refreshed_elsewhere_is_taken_from_disk(start_fake, http):
    oauth = start_fake(FakeOAuth, flavor="codex")
    oauth.used_refresh_tokens.add("rt-old")  # CLIProxyAPI refreshed the same file first
    oauth.add_refresh_token("rt-disk")
    disk = codex_file("at-disk", "rt-disk", T0 + 9 * 86400)
    holder = holder_for(oauth, CODEX, codex_file("at-old", "rt-old", T0 - 1), reread=lambda: disk)
    assert await holder.token(http) == "at-disk"
    assert holder.status == "ok" and len(oauth.requests) == 1


@pytest_twisted.ensureDeferred
async def test_a_refresh_that_hangs_ends_at_the_deadline(start_fake, http):
    oauth = started(start_fake(FakeOAuth, flavor="claude"))
    oauth.script("POST", "/v1/oauth/token", Reply(hang=True))
    holder = holder_for(oauth)
    d = defer.ensureDeferred(holder.token(http))
    await oauth.wait_requests(1)
    holder.clock.advance(60)
    with pytest.raises(RefreshFailed, match="took too long"):
        await d
    assert holder.last_error == "no answer within 60s"
    assert not holder.refreshing


def test_background_due_times_follow_each_providers_lead():
    clock = task.Clock()
    clock.advance(T0)
    from cliproxy.config import OAuthEndpoints

    def due(spec, record):
        return TokenHolder(spec, record, name="x", clock=clock, endpoints=OAuthEndpoints).due_at()

    assert due(CLAUDE, claude_file("a", "r", T0 + 8 * HOUR)) == T0 + 4 * HOUR
    assert due(CODEX, codex_file("a", "r", T0 + 10 * 86400)) == T0 + 5 * 86400
    assert due(GEMINI, gemini_file("a", "r", T0 + HOUR)) is None  # lazy only
    forced = dict(gemini_file("a", "r", T0 + HOUR), refresh_interval_seconds=600)
    forced["last_refresh"] = "2026-01-01T00:00:00Z"
    assert due(GEMINI, forced) == T0 + 600
    no_expiry = {"type": "claude", "access_token": "a", "refresh_token": "r"}
    assert due(CLAUDE, no_expiry) == T0
    assert due(CLAUDE, dict(no_expiry, refresh_token="")) is None
    assert json.dumps(no_expiry)  # records stay plain JSON


@pytest_twisted.ensureDeferred
async def test_a_nearly_expired_token_is_still_used_when_refreshing_fails(start_fake, http):
    oauth = started(start_fake(FakeOAuth, flavor="claude"))
    oauth.script("POST", "/v1/oauth/token", Reply(400, json={"error": "invalid_request"}))
    holder = holder_for(oauth, record=claude_file("at-old", "rt-old", T0 + 10))
    assert await holder.token(http) == "at-old"  # 10 s left: refresh tried, old one used
    assert holder.status == "refresh-failed" and len(oauth.requests) == 1
    holder.clock.advance(11)
    with pytest.raises(RefreshFailed):
        await holder.token(http)  # expired now, and refreshes are paused
    assert len(oauth.requests) == 1


@pytest_twisted.ensureDeferred
async def test_a_refreshed_token_that_could_not_be_saved_is_retried_until_saved(start_fake, http):
    from twisted.logger import capturedLogs

    from cliproxy.credentials.oauth.holder import OK, SAVE_RETRY, UNSAVED

    oauth = started(start_fake(FakeOAuth, flavor="claude"))
    outcomes = [OSError(28, "No space left on device"), OSError(28, "No space left on device")]
    saved = []

    def persist(holder):
        if outcomes:
            raise outcomes.pop(0)
        saved.append(holder.refresh_token)

    holder = holder_for(oauth, persist=persist)
    with capturedLogs() as events:
        await holder.token(http)
    assert holder.status == UNSAVED and saved == []
    assert "could not be saved" in holder.last_error and "No space left" in holder.last_error
    assert "free disk space" in holder.last_error
    assert any("could not be saved" in str(e.get("why", "")) for e in events)
    holder.clock.advance(SAVE_RETRY)
    assert holder.status == UNSAVED and saved == []
    holder.clock.advance(SAVE_RETRY)
    assert holder.status == OK and holder.last_error == ""
    assert saved == [holder.refresh_token] and holder.refresh_token != "rt-old"
    holder.clock.advance(SAVE_RETRY * 10)
    assert len(saved) == 1  # no more attempts once saved
