"""Several cliproxy instances (in-process Apps) on one real PostgreSQL store."""

from __future__ import annotations

import json
import time

import psycopg2
import pytest_twisted
from twisted.internet import defer, reactor, task, threads

from cliproxy.app import build_app
from cliproxy.config import parse_config
from cliproxy.store._schema import migrate
from cliproxy.store.database import open_store
from tests.fakes import FakeClaude, FakeOAuth
from tests.oauth.kit import claude_file, oauth_config
from tests.oauth.test_serving_oauth import chat, post

ACCOUNT = "claude-user@example.com.json"
MODEL = "claude-sonnet-4-5-20250929"
SECRET = "mgmt-secret-store-2"


class Instance:
    def __init__(self, dsn, auth_dir, oauth, claude):
        auth_dir.mkdir(exist_ok=True)
        store = f"store:\n  type: postgres\n  dsn: '{dsn}'\n"
        mgmt = f"remote-management:\n  secret-key: {SECRET}\n"
        text = oauth_config(auth_dir, store, mgmt, claude_oauth=oauth, claude_api=claude)
        config = parse_config(text)
        self.shared = open_store(config, reactor, {})
        self.app = build_app(config, reactor, shared=self.shared)
        self.shared.startService()
        self.port = reactor.listenTCP(0, self.app.site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    async def stop(self):
        await self.port.stopListening()
        for channel in list(self.app.site.channels):
            if channel.transport is not None:
                channel.transport.abortConnection()
        await self.app.http.close()
        await self.shared.stopService()

    def benched_until(self):
        return max((s.until for s in self.app.pool.states()), default=0.0)


def _seed(dsn, record):
    conn = psycopg2.connect(dsn)
    migrate(conn)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO cliproxy_auth VALUES (%s, %s)", (ACCOUNT, json.dumps(record)))
    conn.commit()
    conn.close()


async def stop_all(instances):
    for i in instances:
        await i.stop()


async def _until(check, seconds=3.0):
    deadline = time.time() + seconds
    while not check():
        assert time.time() < deadline, "condition not reached in time"
        await task.deferLater(reactor, 0.02, lambda: None)


def _start(start_fake, pg_dsn, tmp_path, expires, n=3):
    oauth = start_fake(FakeOAuth, flavor="claude")
    oauth.add_refresh_token("rt-old")
    oauth.access_tokens.add("at-old")
    claude = start_fake(FakeClaude)
    claude.keys = oauth.access_tokens
    _seed(pg_dsn, claude_file("at-old", "rt-old", expires))
    instances = [Instance(pg_dsn, tmp_path / f"i{i}", oauth, claude) for i in range(n)]
    return oauth, claude, instances


@pytest_twisted.ensureDeferred
async def test_three_instances_refresh_an_expired_token_once_and_all_requests_succeed(
    start_fake, pg_dsn, tmp_path
):
    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() - 60)
    try:
        calls = [post(i, "/v1/chat/completions", chat(MODEL)) for i in instances for _ in range(50)]
        results = await defer.gatherResults([defer.ensureDeferred(c) for c in calls])
        assert [code for code, _ in results] == [200] * 150, results[0]
        assert len(oauth.received("POST")) == 1
        assert not oauth.used_refresh_tokens - {"rt-old"}
        conn = psycopg2.connect(pg_dsn)
        with conn.cursor() as cur:
            cur.execute("SELECT content FROM cliproxy_auth WHERE id = %s", (ACCOUNT,))
            stored = json.loads(cur.fetchone()[0])
        conn.close()
        assert stored["refresh_token"] in oauth.refresh_tokens
    finally:
        await stop_all(instances)


@pytest_twisted.ensureDeferred
async def test_a_429_on_one_instance_cools_the_credential_on_all_and_survives_a_restart(
    start_fake, pg_dsn, tmp_path
):
    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() + 8 * 3600)
    try:
        await task.deferLater(reactor, 0.3, lambda: None)  # the listeners connect
        claude.script_error(429, "slow down", retry_after=300)
        code, _ = await post(instances[0], "/v1/chat/completions", chat(MODEL))
        assert code == 429
        soon = time.time() + 250
        await _until(lambda: all(i.benched_until() > soon for i in instances), seconds=1.0)
        await instances[1].stop()
        instances[1] = Instance(pg_dsn, tmp_path / "i1", oauth, claude)
        await _until(lambda: instances[1].benched_until() > soon, seconds=2.0)
        served = len(claude.requests)
        code, _ = await post(instances[1], "/v1/chat/completions", chat(MODEL))
        assert code == 429 and len(claude.requests) == served  # benched: not even tried
    finally:
        await stop_all(instances)


@pytest_twisted.ensureDeferred
async def test_a_429_while_the_database_is_down_reaches_the_others_when_it_returns(
    start_fake, pg_dsn, pg_cluster, tmp_path
):
    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() + 8 * 3600, n=2)
    try:
        await _until(lambda: all(i.shared.listener.connected for i in instances))
        await threads.deferToThread(pg_cluster.stop, "immediate")
        try:
            claude.script_error(429, "slow down", retry_after=300)
            code, _ = await post(instances[0], "/v1/chat/completions", chat(MODEL))
            assert code == 429
            await _until(lambda: not instances[0].shared.listener.connected)
        finally:
            await threads.deferToThread(pg_cluster.resume)
        soon = time.time() + 250
        await _until(lambda: instances[1].benched_until() > soon, seconds=15.0)
    finally:
        await stop_all(instances)


@pytest_twisted.ensureDeferred
async def test_a_quota_reason_reaches_the_other_instances_and_survives_a_restart(
    start_fake, pg_dsn, tmp_path
):
    """The provider's reason for a quota bench crosses instances with the bench, so every
    instance's cooling-down 429 names it (and the reset time)."""
    from tests.fakes.claude import claude_error_reply

    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() + 8 * 3600, n=2)
    try:
        await _until(lambda: all(i.shared.listener.connected for i in instances))
        reply = claude_error_reply(429, "rate limited", type="rate_limit_error")
        reply.headers = {
            "anthropic-ratelimit-unified-5h-status": "rejected",
            "anthropic-ratelimit-unified-5h-reset": str(int(time.time()) + 3600),
        }
        claude.script("POST", claude.generation_path, reply)
        code, _ = await post(instances[0], "/v1/chat/completions", chat(MODEL))
        assert code == 429
        soon = time.time() + 3000
        await _until(lambda: instances[1].benched_until() > soon, seconds=2.0)
        for other in (instances[1], None):
            if other is None:  # a restarted instance reads the reason from the table
                await instances[1].stop()
                instances[1] = other = Instance(pg_dsn, tmp_path / "i1", oauth, claude)
                await _until(lambda: instances[1].benched_until() > soon, seconds=2.0)
            served = len(claude.requests)
            code, body = await post(other, "/v1/chat/completions", chat(MODEL))
            message = json.loads(body)["error"]["message"]
            assert code == 429 and len(claude.requests) == served
            assert "Anthropic 5h limit resets" in message, message
            assert "UTC" in message, message
    finally:
        await stop_all(instances)
